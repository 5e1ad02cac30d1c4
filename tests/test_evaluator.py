"""The one evaluator (memsr_jax/evaluation/evaluator.py): its rows are the protocol's metrics, and
validation spread over 1, 2 or 4 (faked CPU) devices gives bit-identical numbers."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from memsr_jax.evaluation import evaluator
from memsr_jax.evaluation import validation
from memsr_jax.image import bicubic
from memsr_jax.image import metrics
from memsr_jax.inference import predictor
from memsr_jax.models import registry

REPO = pathlib.Path(__file__).resolve().parents[1]


def _pairs(scale=2, sizes=((16, 20), (18, 16), (20, 20), (16, 18), (22, 16))):
  rng = np.random.default_rng(0)
  out = []
  for i, (h, w) in enumerate(sizes):
    hr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    out.append((f"img{i}", bicubic.bicubic_downscale(hr, scale), hr))
  return out


def test_rows_are_the_protocol_metrics():
  pairs = _pairs()
  model = registry.build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=1)
  params = registry.random_params(model, 0)
  forward, params = predictor.model_forward(model, params)
  rows = evaluator.Evaluator(pairs, 2, ssim=True).run(forward, params, prefix="x_")
  srs = [metrics.to_uint8(np.asarray(forward(params, lr[None].astype(np.float32)))[0])
         for _, lr, _ in pairs]
  want_psnr = np.mean([metrics.psnr(sr, hr, crop=2) for sr, (_, _, hr) in zip(srs, pairs)])
  want_ssim = np.mean([metrics.ssim(sr, hr, crop=2) for sr, (_, _, hr) in zip(srs, pairs)])
  assert [n for n, _ in rows] == ["x_psnr", "x_ssim"]
  assert rows[0][1] == want_psnr and rows[1][1] == want_ssim
  # The same predictor with its params bound (NumPy in, no device placement) scores the same.
  assert evaluator.Evaluator(pairs, 2, ssim=True).run(lambda x: forward(params, x)) == [
      ("psnr", want_psnr), ("ssim", want_ssim)]


def test_bicubic_psnr_and_errors():
  pairs = _pairs()
  want = np.mean([metrics.psnr(metrics.to_uint8(bicubic.imresize_np(lr, scale=2)), hr, crop=2)
                  for _, lr, hr in pairs])
  assert validation.bicubic_psnr(pairs, 2) == want
  tiny = [("tiny", np.zeros((2, 2, 3), np.uint8), np.zeros((4, 4, 3), np.uint8))]
  scores = evaluator.Evaluator(pairs + tiny, 2).scores(predictor.bicubic_predictor(2))
  assert list(scores.per_image) == [n for n, _, _ in pairs]
  assert "leaves nothing" in scores.errors["tiny"]
  with pytest.raises(ValueError, match="expected"):  # a wrong-scale model is no error row
    evaluator.Evaluator(pairs, 3).run(predictor.bicubic_predictor(2))


_SCRIPT = r"""
import json, sys
import jax
import numpy as np
from memsr_jax.evaluation import evaluator, validation
from memsr_jax.models import registry
from memsr_jax.train import sharding
import test_evaluator
pairs = test_evaluator._pairs()
model = registry.build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=1)
params = registry.random_params(model, 0)
predict = lambda p, e, x: model.apply({"params": p}, x)
out = {}
for n in (1, 2, 4):
  devices = jax.devices()[:n]
  mesh = sharding.make_mesh(devices=devices)
  on_mesh = sharding.replicate(params, mesh)
  val = validation.Validator(predict, pairs, 2, devices=devices)(on_mesh, {})
  used = set()
  def spy(p, x):
    used.update(x.devices())
    return val_forward(p, x)
  val_forward = jax.jit(lambda p, x: model.apply({"params": p}, x))
  scores = evaluator.Evaluator(pairs, 2, devices=devices).scores(spy, on_mesh)
  out[n] = {"val": val, "per_image": scores.per_image, "used": len(used)}
json.dump(out, open(sys.argv[1], "w"))
"""


def test_validation_identical_on_1_2_4_devices(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]),
             XLA_FLAGS="--xla_force_host_platform_device_count=4")
  out = tmp_path / "out.json"
  proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(out)], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, proc.stderr[-3000:]
  got = json.loads(out.read_text())
  assert [got[n]["used"] for n in ("1", "2", "4")] == [1, 2, 4]  # the images were spread
  assert got["1"]["val"] == got["2"]["val"] == got["4"]["val"]
  assert got["1"]["per_image"] == got["2"]["per_image"] == got["4"]["per_image"]
  assert len(got["1"]["per_image"]) == 5
  assert got["1"]["val"]["val_psnr"] == np.mean([v["psnr"] for v in got["1"]["per_image"].values()])
