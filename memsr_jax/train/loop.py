"""The training loop: `train(config, workdir, task)`.

One call trains one task for `config.total_steps` steps in `workdir` (or `workdir/<stage_name>`),
resuming from the newest readable checkpoint there; a finished stage is detected and skipped, so a
multi-stage method can simply call `train` for each stage again after an interruption.

Per step: next batch from the data source (a per-process slice of the global batch), assembled
into a global array sharded over the mesh's "data" axis, and one jitted step with the train state
donated. Every `log_every` steps: metrics to stdout/tqdm, `metrics.jsonl` and TensorBoard, and a
NaN/Inf check (a non-finite loss stops training before anything is saved, so the last checkpoint
stays the last good one). SIGTERM/SIGINT: save a checkpoint and raise `TrainingInterrupted`.
"""
import json
import logging
import pathlib
import signal
import threading
import time
from typing import Any

import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax import jsonio
from memsr_jax import precision
from memsr_jax.evaluation import validation
from memsr_jax.train import config_lib
from memsr_jax.train import data as data_lib
from memsr_jax.train import optim
from memsr_jax.train import sharding
from memsr_jax.train import state as state_lib
from memsr_jax.train.task import Task

log = logging.getLogger(__name__)
PyTree = Any


class TrainingInterrupted(RuntimeError):
  """SIGTERM/SIGINT arrived; a checkpoint was saved. Rerun the same command to resume."""

  def __init__(self, signum: int, step: int, workdir: pathlib.Path):
    self.signum, self.step, self.workdir = signum, step, workdir
    super().__init__(f"{signal.Signals(signum).name} received: saved a checkpoint at step {step} "
                     f"in {workdir}; rerun the same command to resume")


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN/Inf; training stopped and kept the last good checkpoint."""


# ----------------------------------------------------------------------------- logging


class MetricsWriter:
  """metrics.jsonl (one JSON object per logged step) and TensorBoard events; process 0 only.

  `start_step`: the step training (re)starts from. Rows after it (logged after the checkpoint that
  was restored, so about to be logged again) and a torn last line are dropped, so a resumed run's
  metrics.jsonl has each step once.
  """

  def __init__(self, workdir: pathlib.Path, enabled: bool, tensorboard: bool,
               start_step: int = 0):
    self.enabled = enabled
    self._jsonl = None
    self._tb = None
    if not enabled:
      return
    workdir.mkdir(parents=True, exist_ok=True)
    _truncate_metrics(workdir / "metrics.jsonl", start_step)
    self._jsonl = open(workdir / "metrics.jsonl", "a")
    if tensorboard:
      try:
        from tensorboardX import SummaryWriter
        # A resumed run hides the events a killed run wrote after its last checkpoint (TensorBoard
        # drops steps ≥ purge_step of the older event files), as metrics.jsonl drops those rows.
        self._tb = SummaryWriter(str(workdir / "tb"),
                                 purge_step=start_step + 1 if start_step > 0 else None)
      except ImportError:
        log.warning("tensorboardX is not installed: no TensorBoard events")

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self.enabled:
      return
    row = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
    self._jsonl.write(json.dumps(row) + "\n")
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in metrics.items():
        self._tb.add_scalar(k, float(v), int(step))
      self._tb.flush()

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()


def _truncate_metrics(path: pathlib.Path, start_step: int) -> None:
  """Keeps the rows of metrics.jsonl up to `start_step` (rewritten atomically)."""
  if not path.is_file():
    return
  keep, changed = [], False
  for line in path.read_text().splitlines():
    try:
      ok = int(json.loads(line)["step"]) <= start_step
    except (ValueError, KeyError, TypeError):  # a line torn by a kill
      ok = False
    if ok:
      keep.append(line)
    changed |= not ok
  if changed:
    from memsr_jax import safe_io
    safe_io.atomic_write_text(path, "".join(l + "\n" for l in keep))


class _SignalCatcher:
  """Turns SIGTERM/SIGINT into a flag the loop checks (handlers restored on exit)."""

  def __init__(self):
    self.signum = None
    self._old = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for s in (signal.SIGTERM, signal.SIGINT):
        self._old[s] = signal.signal(s, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None and signum == signal.SIGINT:  # second Ctrl-C: stop right away
      raise KeyboardInterrupt
    self.signum = signum
    print(f"\n{signal.Signals(signum).name} received: saving a checkpoint and stopping…",
          flush=True)

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)


def _all_processes_agree(flag: bool) -> bool:
  """True when `flag` holds on any process (collective: every process must call it)."""
  if jax.process_count() == 1:
    return flag
  return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.int32))))


# ----------------------------------------------------------------------------- the loop


def _progress_bar(total: int, initial: int, enabled: bool):
  if not enabled:
    return None
  try:
    from tqdm import tqdm
  except ImportError:
    return None
  return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=1.0)


def _meta(config, task, eval_params, extras, step: int, data_state, stage_name, finished: bool,
          val: dict | None) -> tuple[dict, PyTree]:
  model_name, model_kwargs, export_params = task.export(eval_params, extras)
  method_meta = task.metadata(eval_params, extras)
  meta = {"kind": "train", "config": config_lib.to_json_dict(config),
          "model": model_name, "model_kwargs": jsonio.to_jsonable(dict(model_kwargs)),
          "scale": int(config.scale), "data_state": jsonio.to_jsonable(data_state),
          "task": task.display_name(), "stage": stage_name,
          "method": jsonio.to_jsonable(method_meta), "finished": finished,
          "total_steps": int(config.total_steps), "val": val or {}}
  return meta, export_params


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
  workdir = pathlib.Path(workdir)
  if stage_name:
    workdir = workdir / stage_name
  is_main = jax.process_index() == 0
  if is_main:
    workdir.mkdir(parents=True, exist_ok=True)
  tag = f"[{stage_name}] " if stage_name else ""

  if mesh is None:
    mesh = sharding.make_mesh(config.mesh.data, config.mesh.model)
  sharding.check_batch_size(config.data.batch_size, mesh)
  tx, schedule = optim.make_optimizer(config, task.optimizers())
  ema_decay = float(config.optim.ema_decay)

  root_rng = jax.random.key(config.seed)
  init_rng, train_rng = jax.random.split(root_rng)
  params, extras = task.init(init_rng)
  extras = dict(extras or {})
  state = state_lib.create_train_state(params, tx, ema=ema_decay > 0)
  state = sharding.replicate(state, mesh)
  extras = sharding.replicate(extras, mesh)
  repl = sharding.replicated(mesh)

  ckpt = ckpt_lib.TrainCheckpointer(workdir, keep=config.keep_ckpts, keep_best=config.keep_best,
                                    async_save=config.async_ckpt)
  restored = ckpt.restore_latest(ckpt_lib.abstract_tree(state), ckpt_lib.abstract_tree(extras))
  data_state = None
  if restored is not None:
    state, extras, meta = restored
    data_state = meta.get("data_state")
    if is_main:
      print(f"{tag}resuming from the checkpoint at step {int(state.step)} in {ckpt.directory}",
            flush=True)
  start_step = int(jax.device_get(sharding.to_host(state.step)))

  if start_step >= config.total_steps:
    if is_main:
      print(f"{tag}stage already finished (step {start_step} of {config.total_steps}); skipping",
            flush=True)
    ckpt.close()
    return sharding.to_host(state.eval_params()), sharding.to_host(extras)

  if data_source is None:
    data_source = data_lib.make_source(
        config, local_batch_size=sharding.local_batch_size(config.data.batch_size),
        process_index=jax.process_index(), process_count=jax.process_count())
  if data_state is not None:
    data_source.set_state(data_state)

  validator = None
  if config.val.dataset:
    pairs = validation.load_val_pairs(config.val.dataset, config.val.root, config.scale,
                                      config.val.max_images)
    validator = validation.Validator(task.predict, pairs, config.scale)

  state_sh = jax.tree.map(lambda _: repl, state)
  extras_sh = jax.tree.map(lambda _: repl, extras)
  train_step = state_lib.make_train_step(task, tx, schedule, ema_decay,
                                         precision.compute_dtype(config.get("dtype", "float32")))
  # The rng travels as raw key data: a host array that every process can place replicated.
  step_fn = jax.jit(lambda st, ex, b, kd: train_step(st, ex, b, jax.random.wrap_key_data(kd)),
                    in_shardings=(state_sh, extras_sh, sharding.batch_sharding(mesh), repl),
                    out_shardings=(state_sh, repl), donate_argnums=(0,))
  train_rng = sharding.replicate(np.asarray(jax.random.key_data(train_rng)), mesh)

  writer = MetricsWriter(workdir, is_main, config.tensorboard, start_step)
  bar = _progress_bar(config.total_steps, start_step, is_main and config.progress)
  last_saved = ckpt.latest_step()
  last_val: dict | None = None
  nan_every = config.nan_check_every or config.log_every

  def save(step: int, finished: bool = False):
    nonlocal last_saved
    if last_saved == step:
      return
    eval_params = sharding.to_host(state.eval_params())
    host_extras = sharding.to_host(extras)
    meta, export = _meta(config, task, eval_params, host_extras, step, data_source.get_state(),
                         stage_name, finished, last_val)
    ckpt.save(step, state, extras, meta, export,
              val_psnr=(last_val or {}).get("val_psnr") if val_now_step == step else None)
    last_saved = step

  def check_finite(step: int, metrics: dict):
    loss = float(metrics["loss"])
    if not np.isfinite(loss):
      ckpt.wait()
      keep = ckpt.latest_step()
      kept = (f"the last good checkpoint (step {keep}) is kept in {ckpt.directory}"
              if keep is not None else "no checkpoint was written")
      raise NonFiniteLossError(
          f"{tag}loss is {loss} at step {step}: training stopped; {kept}. Lower the learning "
          "rate (config.schedule.lr) or clip gradients (config.optim.grad_clip_norm)")

  val_now_step = -1
  t_last, s_last = time.time(), start_step
  try:
    with _SignalCatcher() as signals:
      step = start_step
      while step < config.total_steps:
        ckpt.check_errors()  # a failed background save stops training now, not steps later
        batch = sharding.shard_batch(next(data_source), mesh)
        state, metrics = step_fn(state, extras, batch, train_rng)
        step += 1
        final = step == config.total_steps
        do_log = step % config.log_every == 0 or final
        do_nan = step % nan_every == 0
        do_val = validator is not None and (
            final or (config.val.every_steps and step % config.val.every_steps == 0))
        do_ckpt = final or step % config.ckpt_every == 0
        stop = _all_processes_agree(signals.signum is not None) if (
            do_log or jax.process_count() == 1) else False

        host_metrics = None
        if do_log or do_nan or do_ckpt or stop:
          host_metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
          check_finite(step, host_metrics)
        if do_val:
          last_val = validator(sharding.to_host(state.eval_params()), sharding.to_host(extras))
          val_now_step = step
          if is_main:
            print(f"{tag}step {step}: validation {config.val.dataset} Y-PSNR "
                  f"{last_val['val_psnr']:.3f} dB", flush=True)
          writer.write(step, {f"val/{k}": v for k, v in last_val.items()})
        if do_log:
          now = time.time()
          rate = (step - s_last) / max(now - t_last, 1e-9)
          t_last, s_last = now, step
          row = dict(host_metrics, steps_per_sec=rate,
                     images_per_sec=rate * config.data.batch_size)
          writer.write(step, {f"train/{k}": v for k, v in row.items()})
          if bar is not None:
            bar.set_postfix(loss=f"{row['loss']:.4g}", steps_s=f"{rate:.2f}", refresh=False)
          elif is_main:
            print(f"{tag}step {step}/{config.total_steps} loss {row['loss']:.4g} "
                  f"{rate:.2f} steps/s", flush=True)
        if bar is not None:
          bar.update(1)
        if do_ckpt or stop:
          save(step, finished=final)
        if stop and not final:
          ckpt.wait()
          raise TrainingInterrupted(signals.signum or signal.SIGTERM, step, workdir)
    ckpt.wait()
  finally:
    if bar is not None:
      bar.close()
    writer.close()
    ckpt.close()
    if hasattr(data_source, "close"):  # stop the loader's prefetch threads/processes
      data_source.close()
  if is_main:
    print(f"{tag}finished {config.total_steps} steps; checkpoints in {ckpt.directory}",
          flush=True)
  return sharding.to_host(state.eval_params()), sharding.to_host(extras)
