"""The training loop end to end: resume after kill -9 and SIGTERM, NaN stop, bad input."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_configs

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.train import loop
from memsr_jax.train.supervised import SupervisedTask

REPO = pathlib.Path(__file__).resolve().parents[1]
_PYTHONPATH = os.pathsep.join([str(REPO), str(REPO / "tests")])  # tests/tiny_configs.py

_CONFIG_FILE = """
from memsr_jax.train import config_lib
import tiny_configs

def get_config():
  c = tiny_configs.tiny_config()
  c.data.dataset = {data!r}
  c.data.lr_patch = 12
  c.total_steps = 48
  c.ckpt_every = 4
  c.keep_ckpts = 2
  return c
"""


def _write_images(folder: pathlib.Path, n: int = 4):
  from PIL import Image
  from skimage import data
  folder.mkdir(parents=True)
  img = data.astronaut()
  for i in range(n):
    Image.fromarray(img[40 * i:40 * i + 48, 60 * i:60 * i + 64]).save(folder / f"im{i}.png")


def _train_cmd(config: pathlib.Path, workdir: pathlib.Path) -> list[str]:
  return [sys.executable, str(REPO / "train.py"), f"--config={config}", f"--workdir={workdir}"]


def _env():
  # CPU: these runs test the engine's CLI/resume, not a backend; on a GPU machine under
  # `pytest -n 12` they would otherwise compete with every worker for one GPU.
  return dict(os.environ, PYTHONPATH=_PYTHONPATH, JAX_PLATFORMS="cpu",
              XLA_FLAGS="--xla_force_host_platform_device_count=1")


def _steps(workdir: pathlib.Path) -> list[int]:
  d = workdir / "checkpoints"
  return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


def _wait_for(cond, proc, timeout=240.0):
  t0 = time.time()
  while not cond():
    assert proc.poll() is None, f"training ended before the test could interrupt it: " \
                                f"{proc.communicate()[0][-2000:]}"
    assert time.time() - t0 < timeout, "timed out waiting for training progress"
    time.sleep(0.02)


@pytest.mark.slow
def test_resume_after_kill9_and_sigterm_matches_uninterrupted_run(tmp_path):
  _write_images(tmp_path / "hr")
  config = tmp_path / "cfg.py"
  config.write_text(_CONFIG_FILE.format(data=str(tmp_path / "hr")))
  a, b = tmp_path / "a", tmp_path / "b"

  # Run B: kill -9 once a checkpoint at step >= 8 exists.
  p = subprocess.Popen(_train_cmd(config, b), cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
  _wait_for(lambda: any(s >= 8 for s in _steps(b)), p)
  p.kill()
  p.wait()
  killed_at = max(_steps(b))
  assert killed_at < 48

  # Resume, then SIGTERM once it has saved past the kill point: it saves and exits cleanly.
  p = subprocess.Popen(_train_cmd(config, b), cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
  _wait_for(lambda: any(s > killed_at + 4 for s in _steps(b)), p)
  p.send_signal(signal.SIGTERM)
  out = p.communicate(timeout=120)[0]
  assert p.returncode == 128 + signal.SIGTERM, out[-2000:]
  assert f"resuming from the checkpoint at step {killed_at}" in out
  assert "SIGTERM received: saved a checkpoint at step" in out
  term_step = max(_steps(b))
  assert killed_at < term_step < 48

  # Finish B; run A uninterrupted; same params.
  out_b = subprocess.run(_train_cmd(config, b), cwd=REPO, env=_env(), capture_output=True,
                         text=True, timeout=300)
  assert out_b.returncode == 0, out_b.stderr[-2000:]
  assert f"resuming from the checkpoint at step {term_step}" in out_b.stderr
  out_a = subprocess.run(_train_cmd(config, a), cwd=REPO, env=_env(), capture_output=True,
                         text=True, timeout=300)
  assert out_a.returncode == 0, out_a.stderr[-2000:]
  _, pa, meta_a = ckpt_lib.load_model_checkpoint(a)
  _, pb, meta_b = ckpt_lib.load_model_checkpoint(b)
  assert meta_a["step"] == meta_b["step"] == 48
  assert meta_b["data_state"]["batches"] == 48  # the data pipeline resumed, not restarted
  for k, (x, y) in enumerate(zip(jax.tree.leaves(pa), jax.tree.leaves(pb))):
    np.testing.assert_allclose(np.asarray(y), np.asarray(x), atol=1e-5, rtol=0, err_msg=str(k))
  # Logged steps of B continue after each interruption instead of starting over.
  steps = [json.loads(l)["step"] for l in (b / "metrics.jsonl").read_text().splitlines()]
  assert steps[0] == 1 and steps[-1] == 48 and set(range(1, 49)) <= set(steps)

  # A finished run is skipped when the command is repeated.
  again = subprocess.run(_train_cmd(config, b), cwd=REPO, env=_env(), capture_output=True,
                         text=True, timeout=300)
  assert again.returncode == 0 and "already finished" in again.stderr


class NaNAfter3(SupervisedTask):
  def loss_fn(self, params, extras, batch, rng, step):
    loss, m = super().loss_fn(params, extras, batch, rng, step)
    return loss * jnp.where(step >= 3, jnp.nan, 1.0), m


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  cfg = tiny_configs.tiny_config()
  with pytest.raises(loop.NonFiniteLossError, match=r"loss is nan at step 4.*step 2\)"):
    loop.train(cfg, tmp_path, NaNAfter3(cfg))
  assert _steps(tmp_path) == [2]
  _, params, meta = ckpt_lib.load_model_checkpoint(tmp_path)
  assert meta["step"] == 2 and all(np.isfinite(p).all() for p in jax.tree.leaves(params))


def test_finished_stage_is_skipped_and_logs_are_written(tmp_path, capsys):
  cfg = tiny_configs.tiny_config()
  cfg.tensorboard = True
  p1, _ = loop.train(cfg, tmp_path, SupervisedTask(cfg), stage_name="stage1")
  p2, _ = loop.train(cfg, tmp_path, SupervisedTask(cfg), stage_name="stage1")
  assert "already finished" in capsys.readouterr().err
  jax.tree.map(np.testing.assert_array_equal, p1, p2)
  rows = [json.loads(l) for l in (tmp_path / "stage1" / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == list(range(1, 7))
  assert {"train/loss", "train/lr", "train/steps_per_sec"} <= set(rows[0])
  assert list((tmp_path / "stage1" / "tb").glob("events.out.tfevents.*"))


def test_checkpoints_get_the_device_arrays(tmp_path, monkeypatch):
  """No host copy for a checkpoint: Orbax is handed the device-resident state, extras and export
  params (and restores them exactly)."""
  saved, save = [], ckpt_lib.TrainCheckpointer.save

  def spy(self, step, state, extras, meta, export_params, val_psnr=None):
    saved.append(jax.tree.leaves((state, extras, export_params)))
    return save(self, step, state, extras, meta, export_params, val_psnr=val_psnr)

  monkeypatch.setattr(ckpt_lib.TrainCheckpointer, "save", spy)
  cfg = tiny_configs.tiny_config()
  cfg.total_steps = 2
  params, _ = loop.train(cfg, tmp_path, SupervisedTask(cfg))
  assert len(saved) == 1 and saved[0]
  assert all(isinstance(x, jax.Array) for x in saved[0])
  _, restored, _ = ckpt_lib.load_model_checkpoint(tmp_path)
  jax.tree.map(np.testing.assert_array_equal, params, restored)


def test_missing_data_folder_is_a_clear_error(tmp_path):
  cfg = tiny_configs.tiny_config()
  cfg.data.dataset = "t91"
  cfg.data.root = str(tmp_path / "no_such_folder")
  with pytest.raises(FileNotFoundError, match="config.data.root=.*is not a folder"):
    loop.train(cfg, tmp_path / "w", SupervisedTask(cfg))


def test_unknown_config_key_on_the_command_line(tmp_path):
  proc = subprocess.run(_train_cmd(REPO / "configs" / "quickstart.py", tmp_path) +
                        ["--config.data.batchsize=4"], cwd=REPO, env=_env(),
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0
  out = proc.stderr + proc.stdout  # absl/ml_collections versions differ in where they print
  assert "batchsize" in out and not (tmp_path / "checkpoints").exists(), out[-2000:]


def test_joined_datasets_and_small_images_through_the_engine(tmp_path):
  """"a+b" training sets come from the engine's own source; small images fail or are skipped."""
  from PIL import Image

  from memsr_jax.train import data as data_lib
  _write_images(tmp_path / "a", n=2)
  _write_images(tmp_path / "b", n=3)
  Image.new("RGB", (20, 20), (9, 9, 9)).save(tmp_path / "b" / "tiny.png")  # < 24×24 HR patch
  cfg = tiny_configs.tiny_config()
  cfg.data.dataset = f"{tmp_path / 'a'}+{tmp_path / 'b'}"
  cfg.data.lr_patch = 12
  with pytest.raises(ValueError, match="tiny"):
    data_lib.make_source(cfg, local_batch_size=4, process_index=0, process_count=1)
  cfg.data.skip_small = True
  src = data_lib.make_source(cfg, local_batch_size=4, process_index=0, process_count=1)
  try:
    batch = next(src)
    assert batch["lr"].shape == (4, 12, 12, 3) and batch["hr"].shape == (4, 24, 24, 3)
    assert src.examples_per_epoch == 5  # 2 + 3, the tiny one left out
  finally:
    src.close()
