"""The training loop: `train(config, workdir, task)`.

One call trains one task for `config.total_steps` steps in `workdir` (or `workdir/<stage_name>`),
resuming from the newest readable checkpoint there; a finished stage is detected and skipped, so a
multi-stage method can simply call `train` for each stage again after an interruption.

Three parts: `restore_or_init` (the train state from the newest readable checkpoint, else from
`task.init`), `make_step_fn` (one jitted step: the next batch, assembled into a global array
sharded over the mesh's "data" axis, with the train state donated) and `PERIODIC_ACTIONS`, run in
order after every step when due: the NaN/Inf check (a non-finite loss or updated state, or,
before a save, a non-finite output of the weights to be saved, stops training before anything is
saved, so the last checkpoint stays the last good one), validation, logging (stdout or
tqdm, metrics.jsonl, TensorBoard), the progress bar, and the checkpoint. SIGTERM/SIGINT: save a
checkpoint and raise `TrainingInterrupted`.
"""
import dataclasses
import pathlib
import signal
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.evaluation import validation
from memsr_jax.train import config_lib
from memsr_jax.train import data as data_lib
from memsr_jax.train import optim
from memsr_jax.train import sharding
from memsr_jax.train import state as state_lib
from memsr_jax.train.metrics_log import MetricsWriter
from memsr_jax.train.signals import SignalCatcher
from memsr_jax.train.signals import TrainingInterrupted
from memsr_jax.train.signals import all_processes_agree
from memsr_jax.train.task import Task
from memsr_jax.utils import cli
from memsr_jax.utils import console
from memsr_jax.utils import jsonio
from memsr_jax.utils import precision

PyTree = Any
__all__ = ["NonFiniteLossError", "TrainingInterrupted", "train"]


class NonFiniteLossError(FloatingPointError):
  """The loss, the weights or the model's output became NaN/Inf; training stopped and kept the
  last good checkpoint."""


@dataclasses.dataclass
class Run:
  """One stage's training as the periodic actions see it: what they read and what they update."""
  config: ml_collections.ConfigDict
  task: Task
  workdir: pathlib.Path
  stage_name: str | None
  ckpt: ckpt_lib.TrainCheckpointer
  state: PyTree
  extras: dict
  data_source: Any = None
  validator: validation.Validator | None = None
  writer: MetricsWriter | None = None
  bar: Any = None
  bicubic_psnr: float | None = None  # validation set's bicubic Y-PSNR, until it is logged
  last_saved: int | None = None
  last_val: dict | None = None
  val_step: int = -1  # the step `last_val` was measured at
  t_last: float = 0.0
  s_last: int = 0

  @property
  def tag(self) -> str:
    return f"[{self.stage_name}] " if self.stage_name else ""

  @property
  def is_main(self) -> bool:
    return jax.process_index() == 0


@dataclasses.dataclass
class Tick:
  """One finished step: its number, whether it is the last, whether to stop, its metrics."""
  step: int
  final: bool
  stop: bool
  metrics: dict
  _host: dict | None = None

  def host_metrics(self) -> dict[str, float]:
    if self._host is None:
      self._host = {k: float(v) for k, v in jax.device_get(self.metrics).items()}
    return self._host


# ----------------------------------------------------------------------------- restore or init


def restore_or_init(config, task: Task, workdir: pathlib.Path, tx, mesh, tag: str = ""):
  """(state, extras, checkpointer, data iterator state or None): the newest readable checkpoint
  of `workdir`, else the task's init; replicated over `mesh`."""
  ema = float(config.optim.ema_decay) > 0
  init_rng, _ = jax.random.split(jax.random.key(config.seed))
  params, extras = task.init(init_rng)
  state = sharding.replicate(state_lib.create_train_state(params, tx, ema=ema), mesh)
  extras = sharding.replicate(dict(extras or {}), mesh)
  ckpt = ckpt_lib.TrainCheckpointer(workdir, keep=config.keep_ckpts, keep_best=config.keep_best,
                                    async_save=config.async_ckpt)
  restored = ckpt.restore_latest(ckpt_lib.abstract_tree(state), ckpt_lib.abstract_tree(extras))
  if restored is None:
    return state, extras, ckpt, None
  state, extras, meta = restored
  if jax.process_index() == 0:
    console.say(f"{tag}resuming from the checkpoint at step {int(state.step)} in {ckpt.directory}")
  return state, extras, ckpt, meta.get("data_state")


# ----------------------------------------------------------------------------- the step


def make_step_fn(config, task: Task, tx, schedule, mesh, state, step_extras
                 ) -> tuple[Callable, Any]:
  """(step_fn(state, step_extras, batch, rng) -> (state, metrics), the replicated rng key data).

  `step_extras` is `task.step_extras(extras)`: checkpoint-only extras are no argument of the step.
  """
  repl = sharding.replicated(mesh)
  state_sh = jax.tree.map(lambda _: repl, state)
  extras_sh = jax.tree.map(lambda _: repl, step_extras)
  train_step = state_lib.make_train_step(task, tx, schedule, float(config.optim.ema_decay),
                                         precision.compute_dtype(config.get("dtype", "float32")),
                                         bool(config.optim.ema_warmup))
  # The rng travels as raw key data: a host array that every process can place replicated.
  step_fn = jax.jit(lambda st, ex, b, kd: train_step(st, ex, b, jax.random.wrap_key_data(kd)),
                    in_shardings=(state_sh, extras_sh, sharding.batch_sharding(mesh), repl),
                    out_shardings=(state_sh, repl), donate_argnums=(0,))
  _, train_rng = jax.random.split(jax.random.key(config.seed))
  return step_fn, sharding.replicate(np.asarray(jax.random.key_data(train_rng)), mesh)


# ----------------------------------------------------------------------------- periodic actions


def _nan_every(config) -> int:
  return config.nan_check_every or config.log_every


def _log_due(run: Run, t: Tick) -> bool:
  return t.step % run.config.log_every == 0 or t.final


def _ckpt_due(run: Run, t: Tick) -> bool:
  return t.final or t.step % run.config.ckpt_every == 0 or t.stop


def _finite_due(run: Run, t: Tick) -> bool:
  return _log_due(run, t) or t.step % _nan_every(run.config) == 0 or _ckpt_due(run, t)


def _val_due(run: Run, t: Tick) -> bool:
  every = run.config.val.every_steps
  return run.validator is not None and (t.final or bool(every and t.step % every == 0))


def check_finite(run: Run, t: Tick) -> None:
  """Stops training on a non-finite loss or updated state and, before a checkpoint is saved, on
  a non-finite output of the weights to be saved: only a finite model is ever checkpointed."""
  metrics = t.host_metrics()
  loss = metrics["loss"]
  if not np.isfinite(loss):
    _stop_non_finite(run, f"loss is {loss} at step {t.step}")
  if not metrics.get(state_lib.STATE_FINITE, 1.0):
    _stop_non_finite(run, f"the weights (or optimizer state) hold NaN/Inf after step {t.step}")
  if _ckpt_due(run, t) and not _output_finite(run):
    _stop_non_finite(run, f"the model outputs NaN/Inf after step {t.step}")


def _output_finite(run: Run) -> bool:
  """Whether the evaluation weights give a finite output on a fixed random LR patch (run op by
  op: each op's compiled kernel is cached across runs, a jitted probe would compile per run)."""
  side = int(run.config.data.lr_patch)
  x = np.random.default_rng(0).uniform(0, 255, (1, side, side, 3)).astype(np.float32)
  out = run.task.predict(sharding.to_host(run.state.eval_params()), sharding.to_host(run.extras), x)
  return bool(jnp.all(jnp.isfinite(out)))


def _stop_non_finite(run: Run, what: str) -> None:
  run.ckpt.wait()
  keep = run.ckpt.latest_step()
  kept = (f"the last good checkpoint (step {keep}) is kept in {run.ckpt.directory}"
          if keep is not None else "no checkpoint was written")
  raise NonFiniteLossError(
      f"{run.tag}{what}: training stopped; {kept}. Lower the learning rate "
      "(config.schedule.lr) or clip gradients (config.optim.grad_clip_norm)")


def validate(run: Run, t: Tick) -> None:
  # The device-resident (replicated) params and the extras predict reads: no host copy.
  run.last_val = run.validator(run.state.eval_params(), run.task.step_extras(run.extras))
  run.val_step = t.step
  if run.is_main:
    console.say(f"{run.tag}step {t.step}: validation {run.config.val.dataset} Y-PSNR "
                f"{run.last_val['val_psnr']:.3f} dB")
  row = dict(run.last_val)
  if run.bicubic_psnr is not None:  # the baseline, logged with the first validation of a run
    row["bicubic_psnr"], run.bicubic_psnr = run.bicubic_psnr, None
  run.writer.write(t.step, {f"val/{k}": v for k, v in row.items()})


def log_metrics(run: Run, t: Tick) -> None:
  now = time.time()
  rate = (t.step - run.s_last) / max(now - run.t_last, 1e-9)
  run.t_last, run.s_last = now, t.step
  row = dict({k: v for k, v in t.host_metrics().items() if k != state_lib.STATE_FINITE},
             steps_per_sec=rate,
             images_per_sec=rate * run.config.data.batch_size)
  run.writer.write(t.step, {f"train/{k}": v for k, v in row.items()})
  if run.bar is not None:
    run.bar.set_postfix(**{"loss": f"{row['loss']:.4g}", "steps/s": f"{rate:.2f}"})


def advance_bar(run: Run, t: Tick) -> None:
  del t
  if run.bar is not None:
    run.bar.update(1)


def save_checkpoint(run: Run, t: Tick) -> None:
  """Saves step `t.step` (once); its validation PSNR when validation ran at this very step.

  Orbax writes the device-resident arrays (state, extras, export params) itself; only what the
  JSON metadata reads comes to the host.
  """
  if run.last_saved == t.step:
    return
  meta, export = _meta(run, run.state.eval_params(), run.extras, finished=t.final)
  val_psnr = (run.last_val or {}).get("val_psnr") if run.val_step == t.step else None
  run.ckpt.save(t.step, run.state, run.extras, meta, export, val_psnr=val_psnr)
  run.last_saved = t.step


# (name, due(run, tick), action(run, tick)), run in this order after every step.
PERIODIC_ACTIONS: tuple[tuple[str, Callable, Callable], ...] = (
    ("check_finite", _finite_due, check_finite),
    ("validate", _val_due, validate),
    ("log", _log_due, log_metrics),
    ("progress_bar", lambda run, t: True, advance_bar),
    ("checkpoint", _ckpt_due, save_checkpoint),
)


def _meta(run: Run, eval_params, extras, finished: bool) -> tuple[dict, PyTree]:
  config, task = run.config, run.task
  model_name, model_kwargs, export_params = task.export(eval_params, extras)
  meta = {"kind": "train", "config": config_lib.to_json_dict(config),
          "model": model_name, "model_kwargs": jsonio.to_jsonable(dict(model_kwargs)),
          "scale": int(config.scale),
          "data_state": jsonio.to_jsonable(run.data_source.get_state()),
          "task": task.display_name(), "stage": run.stage_name,
          "method": jsonio.to_jsonable(task.metadata(eval_params, extras)), "finished": finished,
          "total_steps": int(config.total_steps), "val": run.last_val or {}}
  return meta, export_params


# ----------------------------------------------------------------------------- train


def train(config: ml_collections.ConfigDict, workdir, task: Task, *, stage_name: str | None = None,
          data_source=None, mesh=None) -> tuple[PyTree, dict[str, PyTree]]:
  """Trains `task` and returns (final params, extras) as host NumPy pytrees.

  The params returned are the evaluation weights (the EMA when config.optim.ema_decay > 0).
  `data_source` overrides the config's data (any object with next/get_state/set_state giving this
  process's share of the batch); `mesh` overrides config.mesh (e.g. a subset of devices).
  Raises TrainingInterrupted after a signal (checkpoint saved), NonFiniteLossError on NaN/Inf
  loss (last good checkpoint kept).
  """
  config_lib.validate(config)
  workdir = pathlib.Path(workdir) / (stage_name or "")
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
  try:  # config.mesh and config.data.batch_size against the devices there are
    if mesh is None:
      mesh = sharding.make_mesh(config.mesh.data, config.mesh.model)
    sharding.check_batch_size(config.data.batch_size, mesh)
  except ValueError as e:
    raise cli.UsageError(str(e)) from None
  tx, schedule = optim.make_optimizer(config, task.optimizers())
  tag = f"[{stage_name}] " if stage_name else ""
  state, extras, ckpt, data_state = restore_or_init(config, task, workdir, tx, mesh, tag)
  run = Run(config, task, workdir, stage_name, ckpt, state, extras)
  start_step = int(jax.device_get(sharding.to_host(state.step)))
  if start_step >= config.total_steps:
    if run.is_main:
      console.say(f"{tag}stage already finished (step {start_step} of {config.total_steps}); "
                  "skipping")
    ckpt.close()
    return sharding.to_host(state.eval_params()), sharding.to_host(extras)

  if data_source is None:
    data_source = data_lib.make_source(
        config, local_batch_size=sharding.local_batch_size(config.data.batch_size),
        process_index=jax.process_index(), process_count=jax.process_count())
  if data_state is not None:
    data_source.set_state(data_state)
  run.data_source = data_source
  if config.val.dataset:
    pairs = validation.load_val_pairs(config.val.dataset, config.val.root, config.scale,
                                      config.val.max_images)
    run.validator = validation.Validator(task.predict, pairs, config.scale,
                                         devices=[d for d in mesh.devices.flat
                                                  if d.process_index == jax.process_index()])
    run.bicubic_psnr = validation.bicubic_psnr(pairs, config.scale) if run.is_main else None
  step_fn, train_rng = make_step_fn(config, task, tx, schedule, mesh, state,
                                    task.step_extras(extras))
  run.writer = MetricsWriter(workdir, run.is_main, config.tensorboard, start_step)
  run.bar = console.progress(config.total_steps, desc=tag.strip(), unit="step",
                             initial=start_step, enabled=run.is_main and config.progress)
  run.last_saved = ckpt.latest_step()
  run.t_last, run.s_last = time.time(), start_step
  try:
    _run_steps(run, step_fn, train_rng, mesh, start_step)
  finally:
    if run.bar is not None:
      run.bar.close()
    run.writer.close()
    ckpt.close()
    if hasattr(data_source, "close"):  # stop the loader's prefetch threads/processes
      data_source.close()
  if run.is_main:
    console.say(f"{tag}finished {config.total_steps} steps; checkpoints in {ckpt.directory}")
  return sharding.to_host(run.state.eval_params()), sharding.to_host(run.extras)


def _run_steps(run: Run, step_fn, train_rng, mesh, start_step: int) -> None:
  """Steps from `start_step` to config.total_steps, each followed by the due periodic actions."""
  config = run.config
  step_extras = run.task.step_extras(run.extras)
  with SignalCatcher() as signals:
    step = start_step
    while step < config.total_steps:
      run.ckpt.check_errors()  # a failed background save stops training now, not steps later
      batch = sharding.shard_batch(next(run.data_source), mesh)
      run.state, metrics = step_fn(run.state, step_extras, batch, train_rng)
      step += 1
      final = step == config.total_steps
      log_now = step % config.log_every == 0 or final
      stop = all_processes_agree(signals.signum is not None) if (
          log_now or jax.process_count() == 1) else False
      tick = Tick(step, final, stop, metrics)
      for _, due, action in PERIODIC_ACTIONS:
        if due(run, tick):
          action(run, tick)
      if stop and not final:
        run.ckpt.wait()
        raise TrainingInterrupted(signals.signum or signal.SIGTERM, step, run.workdir)
  run.ckpt.wait()
