"""Data-parallel training gives the same params on 1, 2 and 4 (fake CPU) devices; a model axis
is refused."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from memsr_jax.train import sharding

REPO = pathlib.Path(__file__).resolve().parents[1]
_PYTHONPATH = os.pathsep.join([str(REPO), str(REPO / "tests")])  # tests/tiny_configs.py

_SCRIPT = r"""
import json, sys
import numpy as np, jax
from memsr_jax.utils import cli
from memsr_jax.train import config_lib, loop, sharding
from memsr_jax.train.supervised import SupervisedTask
import tiny_configs

out = sys.argv[1]
cfg = tiny_configs.tiny_config()
cfg.total_steps = 3
for n in (1, 2, 4):
  mesh = sharding.make_mesh(devices=jax.devices()[:n])
  params, _ = loop.train(cfg, f"{out}/n{n}", SupervisedTask(cfg), mesh=mesh)
  flat = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(params)[0]}
  np.savez(f"{out}/params_{n}.npz", **flat)
init_rng = jax.random.split(jax.random.key(cfg.seed))[0]  # the rng train() initializes with
p0, _ = SupervisedTask(cfg).init(init_rng)
flat = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(p0)[0]}
np.savez(f"{out}/params_init.npz", **flat)
cfg.mesh.model = 2  # 2 × 2 would fit the 4 devices, but params are replicated: refused
try:
  loop.train(cfg, f"{out}/model2", SupervisedTask(cfg))
  model_err = None
except cli.UsageError as e:
  model_err = str(e)
cfg.mesh.model = 1
cfg.data.batch_size = 6
try:
  loop.train(cfg, f"{out}/bad", SupervisedTask(cfg))
  err = None
except ValueError as e:
  err = str(e)
json.dump({"devices": jax.device_count(), "batch_error": err, "model_error": model_err},
          open(f"{out}/result.json", "w"))
"""


def run_with_devices(script: str, n_devices: int, *args, timeout: int = 240):
  # Fake host devices exist only on the CPU platform: on a GPU/TPU machine jax.devices() would
  # list the accelerator(s) instead, and devices[:4] would be one GPU (JAX_PLATFORMS pins CPU).
  env = dict(os.environ, PYTHONPATH=_PYTHONPATH, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={n_devices}")
  return subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout)


def test_params_match_across_device_counts(tmp_path):
  proc = run_with_devices(_SCRIPT, 4, tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads((tmp_path / "result.json").read_text())
  assert result["devices"] == 4
  ref = np.load(tmp_path / "params_1.npz")
  for n in (2, 4):
    other = np.load(tmp_path / f"params_{n}.npz")
    assert set(other) == set(ref)
    for k in ref:
      np.testing.assert_allclose(other[k], ref[k], atol=1e-5, rtol=0, err_msg=f"{n} devices, {k}")
  # 3 Adam steps at lr 1e-3 really moved every tensor (the comparison is not vacuous).
  init = np.load(tmp_path / "params_init.npz")
  assert min(float(np.abs(ref[k] - init[k]).max()) for k in ref) > 1e-4
  msg = result["batch_error"]
  assert msg is not None and "batch_size=6" in msg and "4 data-parallel devices" in msg
  # mesh.model > 1 is refused up front (nothing is written), naming the key and what to set.
  msg = result["model_error"]
  assert msg is not None and "config.mesh.model=2" in msg and "config.mesh.model=1" in msg
  assert "\n" not in msg and not (tmp_path / "model2").exists()


def test_make_mesh_rejects_impossible_layouts():
  with pytest.raises(ValueError, match="does not divide"):
    sharding.make_mesh(model=3, devices=[object()] * 4)
  with pytest.raises(ValueError, match="data=3"):
    sharding.make_mesh(data=3, devices=[object()] * 4)
