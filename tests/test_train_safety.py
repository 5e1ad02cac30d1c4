"""Training never loses data: damaged checkpoints fall back, a failed save stops at once, resumed
metrics have each step once, one run per workdir (tests/test_cli_safety.py: the command line)."""
import errno
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
import tiny_configs

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.models import registry
from memsr_jax.train import config_lib
from memsr_jax.train import loop
from memsr_jax.train import metrics_log
from memsr_jax.train import state as state_lib
from memsr_jax.train.supervised import SupervisedTask


def _steps(workdir) -> list[int]:
  d = pathlib.Path(workdir) / "checkpoints"
  return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


def truncate_arrays(step_dir: pathlib.Path) -> None:
  """Cuts every array data file of a saved step to half its length (a torn copy / bad disk)."""
  files = [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]
  assert files
  for p in files:
    p.write_bytes(p.read_bytes()[:max(1, p.stat().st_size // 2)])


def _logged_steps(workdir) -> list[int]:
  return [json.loads(l)["step"] for l in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_truncated_latest_checkpoint_falls_back_everywhere(tmp_path, capsys):
  cfg = tiny_configs.tiny_config()  # 6 steps, a checkpoint every 2, the last 3 kept
  cfg.total_steps = 4
  loop.train(cfg, tmp_path, SupervisedTask(cfg))
  assert _steps(tmp_path) == [2, 4]
  truncate_arrays(tmp_path / "checkpoints" / "4")
  capsys.readouterr()

  # eval/upscale (read-only): the damaged step is skipped with a warning and left in place.
  _, params, meta = ckpt_lib.load_model_checkpoint(tmp_path)
  assert meta["step"] == 2 and all(np.isfinite(p).all() for p in jax.tree.leaves(params))
  assert "checkpoint at step 4" in capsys.readouterr().err and _steps(tmp_path) == [2, 4]

  # train: the damaged step is moved to checkpoints_corrupt/ and training resumes from step 2.
  cfg.total_steps = 6
  loop.train(cfg, tmp_path, SupervisedTask(cfg))
  out = "".join(capsys.readouterr())  # our lines go to stderr
  assert "checkpoint at step 4" in out and "checkpoints_corrupt" in out
  assert "resuming from the checkpoint at step 2" in out
  assert [p.name.split("_")[0] for p in (tmp_path / "checkpoints_corrupt").iterdir()] == ["4"]
  assert _steps(tmp_path) == [2, 4, 6]
  # Steps 3 and 4 were logged twice (before and after the fallback); the file has them once.
  assert _logged_steps(tmp_path) == [1, 2, 3, 4, 5, 6]


def test_every_step_damaged_is_one_clear_error(tmp_path):
  cfg = tiny_configs.tiny_config()
  cfg.total_steps = 2
  loop.train(cfg, tmp_path, SupervisedTask(cfg))
  truncate_arrays(tmp_path / "checkpoints" / "2")
  with pytest.raises(ckpt_lib.CheckpointUnreadableError, match="all 1 step"):
    ckpt_lib.load_model_checkpoint(tmp_path)


def test_disk_full_stops_at_the_first_failed_save(tmp_path, monkeypatch):
  cfg = tiny_configs.tiny_config()
  real_save = ocp.CheckpointManager.save

  def save(self, step, *a, **kw):
    if step >= 4:
      raise OSError(errno.ENOSPC, "No space left on device")
    return real_save(self, step, *a, **kw)

  monkeypatch.setattr(ocp.CheckpointManager, "save", save)
  with pytest.raises(ckpt_lib.CheckpointSaveError,
                     match=r"at step 4 .*No space left on device.*training stopped"):
    loop.train(cfg, tmp_path, SupervisedTask(cfg))
  assert _steps(tmp_path) == [2]
  assert _logged_steps(tmp_path) == [1, 2, 3, 4]  # no step after the failed save


def test_metrics_of_a_resume_are_truncated_to_the_restored_step(tmp_path):
  rows = [{"step": s, "train/loss": 1.0} for s in (1, 2, 3, 4)]
  (tmp_path / "metrics.jsonl").write_text(
      "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 5, "tra')  # torn by a kill
  w = metrics_log.MetricsWriter(tmp_path, True, False, start_step=2)
  w.write(3, {"train/loss": 0.5})
  w.close()
  assert _logged_steps(tmp_path) == [1, 2, 3]


def _tb_events(folder):
  """Every Event record of the TFRecord event files in `folder`, oldest file first."""
  from tensorboardX.proto import event_pb2  # optional dependency
  events = []
  for path in sorted(folder.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime_ns):
    data, pos = path.read_bytes(), 0
    while pos < len(data):  # [u64 length][u32 crc][payload][u32 crc]
      n = int.from_bytes(data[pos:pos + 8], "little")
      events.append(event_pb2.Event.FromString(data[pos + 12:pos + 12 + n]))
      pos += 12 + n + 4
  return events


def test_tensorboard_events_of_a_resume_purge_the_lost_steps(tmp_path):
  pytest.importorskip("tensorboardX")
  first = metrics_log.MetricsWriter(tmp_path, True, True)
  for step in (1, 2, 3, 4):  # a run killed after step 4 whose last checkpoint is step 2
    first.write(step, {"train/loss": 1.0})
  first.close()
  time.sleep(0.01)  # distinct file times
  second = metrics_log.MetricsWriter(tmp_path, True, True, start_step=2)
  second.write(3, {"train/loss": 0.5})
  second.close()
  events = _tb_events(tmp_path / "tb")
  # TensorBoard hides steps ≥ 3 of earlier files when it meets this record (purge_step).
  starts = [e.step for e in events if e.HasField("session_log")
            and e.session_log.status == e.session_log.START]
  assert starts == [3]
  assert [e.step for e in events if e.HasField("summary")][-1:] == [3]


def test_zero_periods_are_config_errors():
  for key in ("log_every", "ckpt_every"):
    cfg = tiny_configs.tiny_config()
    cfg[key] = 0
    with pytest.raises(ValueError, match=f"config.{key} must be at least 1"):
      config_lib.validate(cfg)


@pytest.mark.slow
def test_commands_fall_back_from_a_truncated_checkpoint(tmp_path):
  """The issue's probe as the user runs it: eval.py and upscale on a workdir whose newest step
  has truncated array files use the previous step, say so, and show no traceback."""
  import os
  import subprocess
  import sys

  from PIL import Image
  repo = pathlib.Path(__file__).resolve().parents[1]
  cfg = tiny_configs.tiny_config()
  cfg.total_steps = 4
  work = tmp_path / "w"
  loop.train(cfg, work, SupervisedTask(cfg))
  truncate_arrays(work / "checkpoints" / "4")
  imgs = tmp_path / "imgs"
  imgs.mkdir()
  for i in range(2):
    Image.fromarray(np.full((24, 24, 3), 40 * i, np.uint8)).save(imgs / f"{i}.png")
  env = dict(os.environ, PYTHONPATH=str(repo))
  for cmd in (["eval.py", "--config", str(repo / "configs" / "eval.py"),
               f"--config.model.checkpoint={work}", f"--config.datasets={imgs}",
               f"--config.output_dir={tmp_path / 'eval'}"],
              ["-m", "memsr_jax.upscale", "--checkpoint", str(work), "--input", str(imgs),
               "--output", str(tmp_path / "up")]):
    p = subprocess.run([sys.executable, *cmd], cwd=repo, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stderr.count("warning: checkpoint at step 4") == 1 and "Traceback" not in p.stderr, \
        p.stderr[-3000:]
  assert _steps(work) == [2, 4]  # read-only: nothing moved


def test_a_failed_background_save_is_reported_with_its_own_step(tmp_path, monkeypatch):
  """Step 2's asynchronous write fails (disk full) and surfaces when step 4 is saved: the message
  names step 2, the step that was lost, not step 4."""
  model = registry.build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=1)
  params = registry.init_params(model, jax.random.key(0))
  st = state_lib.create_train_state(params, optax.adam(1e-3))
  ck = ckpt_lib.TrainCheckpointer(tmp_path, async_save=True)
  ck.save(2, st, {}, {}, params)

  def full(self):
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(ocp.CheckpointManager, "wait_until_finished", full)
  with pytest.raises(ckpt_lib.CheckpointSaveError, match=r"at step 2 in .*No space left"):
    ck.save(4, st, {}, {}, params)
  monkeypatch.undo()
  ck.close()


@jax.custom_vjp
def _nan_grads_from(x, step):
  """x itself; its gradient is NaN from step 3 on (a finite loss, an update that breaks the
  weights)."""
  del step
  return x


def _nan_fwd(x, step):
  return x, step


def _nan_bwd(step, ct):
  return ct * jnp.where(step >= 3, jnp.nan, 1.0), None


_nan_grads_from.defvjp(_nan_fwd, _nan_bwd)


class FiniteLossNaNUpdate(SupervisedTask):
  def loss_fn(self, params, extras, batch, rng, step):
    loss, m = super().loss_fn(params, extras, batch, rng, step)
    return _nan_grads_from(loss, step.astype(jnp.float32)), m


class HugeWeights(SupervisedTask):
  """Finite weights (~1e29) whose output overflows to Inf/NaN."""

  def post_update(self, params, extras):
    return jax.tree.map(lambda p: p * 1e30, params)


def test_weights_broken_by_the_update_of_a_save_step_are_not_saved(tmp_path):
  # Step 4's loss is finite (computed before the update), its update gives NaN weights: the
  # checkpoint of step 4 would hold them.
  cfg = tiny_configs.tiny_config()
  with pytest.raises(loop.NonFiniteLossError, match=r"weights .*NaN/Inf after step 4.*step 2\)"):
    loop.train(cfg, tmp_path, FiniteLossNaNUpdate(cfg))
  assert _steps(tmp_path) == [2]
  model, params, meta = ckpt_lib.load_model_checkpoint(tmp_path)
  lr = np.random.default_rng(0).uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
  assert meta["step"] == 2 and np.isfinite(np.asarray(model.apply({"params": params}, lr))).all()
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [1, 2, 3] and "train/state_finite" not in rows[0]


def test_finite_weights_with_a_non_finite_output_are_not_saved(tmp_path):
  cfg = tiny_configs.tiny_config()
  cfg.ckpt_every = 1
  with pytest.raises(loop.NonFiniteLossError,
                     match=r"outputs NaN/Inf after step 1.*no checkpoint was written"):
    loop.train(cfg, tmp_path, HugeWeights(cfg))
  assert _steps(tmp_path) == []
