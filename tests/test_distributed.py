"""Two processes (jax.distributed on localhost, gloo CPU collectives) train and validate like one
process."""
import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
_PYTHONPATH = os.pathsep.join([str(REPO), str(REPO / "tests")])  # tests/tiny_configs.py

_SCRIPT = r"""
import json, sys
import jax
coord, n, pid, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if n > 1:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coord, num_processes=n, process_id=pid)
import numpy as np
from memsr_jax.train import config_lib, loop
from memsr_jax.train.supervised import SupervisedTask
import tiny_configs
cfg = tiny_configs.tiny_config()
cfg.total_steps = 3
cfg.val.dataset = "skimage_val"  # 2 images: one per process, gathered
params, _ = loop.train(cfg, out, SupervisedTask(cfg))
flat = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(params)[0]}
np.savez(f"{out}/params_p{pid}.npz", **flat)
from memsr_jax.evaluation import validation
task = SupervisedTask(cfg)
init, _ = task.init(jax.random.key(0))
pairs = validation.load_val_pairs(cfg.val.dataset, "", cfg.scale)
json.dump(validation.Validator(task.predict, pairs, cfg.scale)(init, {}),
          open(f"{out}/val_p{pid}.json", "w"))
json.dump({"process_count": jax.process_count(), "device_count": jax.device_count()},
          open(f"{out}/info_p{pid}.json", "w"))
"""


def _free_port() -> int:
  try:
    import portpicker
    return portpicker.pick_unused_port()
  except ImportError:
    with socket.socket() as s:
      s.bind(("localhost", 0))
      return s.getsockname()[1]


def _rows(workdir: pathlib.Path, key: str) -> list[float]:
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [r[key] for r in rows if key in r]


def _losses(workdir: pathlib.Path) -> list[float]:
  return _rows(workdir, "train/loss")


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
  env = dict(os.environ, PYTHONPATH=_PYTHONPATH,
             XLA_FLAGS="--xla_force_host_platform_device_count=1")
  coord = f"localhost:{_free_port()}"
  two, one = tmp_path / "two", tmp_path / "one"
  procs = [subprocess.Popen([sys.executable, "-c", _SCRIPT, coord, "2", str(i), str(two)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True) for i in range(2)]
  single = subprocess.run([sys.executable, "-c", _SCRIPT, "-", "1", "0", str(one)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
  outs = [p.communicate(timeout=300)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  assert single.returncode == 0, single.stderr[-3000:]
  for i in range(2):
    info = json.loads((two / f"info_p{i}.json").read_text())
    assert info == {"process_count": 2, "device_count": 2}
  # Same losses at every step (process 0 logs) and same final params on both processes.
  l2, l1 = _losses(two), _losses(one)
  assert len(l2) == len(l1) == 3
  np.testing.assert_allclose(l2, l1, rtol=1e-5)
  ref = np.load(one / "params_p0.npz")
  for i in range(2):
    got = np.load(two / f"params_p{i}.npz")
    for k in ref:
      np.testing.assert_allclose(got[k], ref[k], atol=1e-5, rtol=0, err_msg=f"process {i} {k}")
  # Validation split over the processes (one image each) and gathered: the single process's
  # numbers, exactly for the same params, and within the params' tolerance after training.
  val = [json.loads((w / f"val_p{i}.json").read_text()) for w, i in ((one, 0), (two, 0), (two, 1))]
  assert val[0] == val[1] == val[2] and np.isfinite(val[0]["val_psnr"])
  val2, val1 = (_rows(w, "val/val_psnr") for w in (two, one))
  assert len(val1) == len(val2) == 1 and abs(val2[0] - val1[0]) < 1e-3
  # Both processes wrote one checkpoint set together.
  assert sorted(p.name for p in (two / "checkpoints").iterdir() if p.name.isdigit()) == ["2", "3"]
