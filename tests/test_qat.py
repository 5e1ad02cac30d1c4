"""The int8 simulator (deploy.fake_quant), quantization-aware training, the pinned int8 export."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.deploy import export_cli
from memsr_jax.deploy import fake_quant
from memsr_jax.deploy import qat_export
from memsr_jax.models.plain import PlainNet
from memsr_jax.train import qat as qat_lib


def _tiny(bias_mode="vector", seed=0):
  model = PlainNet(scale=2, widths=(3, 6, 6, 6), bias_mode=bias_mode, sub_mean=False)
  params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 8, 8, 3)))["params"]
  rng = np.random.default_rng(seed)
  params = jax.tree_util.tree_map(
      lambda a: np.asarray(a) + rng.normal(0, 0.05, a.shape).astype(np.float32), params)
  return model, params


def _images(n=2, side=12, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3)).astype(np.float32)


def test_quantizers_round_half_to_even_and_pass_gradients_straight_through():
  # Scale 1, zero point 0: x → clip(round_half_even(x), 0, 255).
  got = fake_quant.fq_act(jnp.asarray([0.5, 1.5, 2.5, -3.0, 300.0]), 0.0, 255.0)
  np.testing.assert_array_equal(got, [0.0, 2.0, 2.0, 0.0, 255.0])
  g = jax.grad(lambda x: fake_quant.fq_act(x, 0.0, 255.0).sum())(jnp.asarray([3.3, 400.0]))
  np.testing.assert_array_equal(g, [1.0, 0.0])  # identity inside the range, zero where clipped
  # The range gets a gradient through the scale (trained ranges).
  g_hi = jax.grad(lambda hi: fake_quant.fq_act(jnp.asarray([1.3, 7.7]), 0.0, hi).sum())(10.0)
  assert g_hi != 0


def test_weights_match_onnxruntime_reduce_range_quantization():
  from onnxruntime.quantization.quant_utils import compute_scale_zp
  w = np.random.default_rng(1).normal(0, 0.2, (3, 3, 4, 5)).astype(np.float32)
  got, scale = fake_quant.fq_weight(jnp.asarray(w))
  for c in range(5):
    col = w[..., c]
    _, s = compute_scale_zp(np.float32(col.min()), np.float32(col.max()), np.int8(-64),
                            np.int8(64), symmetric=True)
    np.testing.assert_allclose(scale[c], s, rtol=1e-6)
    want = np.clip(np.round(col / s), -64, 64) * s
    np.testing.assert_allclose(got[..., c], want, rtol=0, atol=1e-6 * abs(s))
  assert np.abs(np.asarray(got) - w).max() > 0  # 7-bit weights do change the values


@pytest.mark.slow
def test_simulator_without_ranges_is_the_float_model_and_with_them_differs():
  model, params = _tiny()
  x = jnp.asarray(_images())
  with jax.default_matmul_precision("highest"):
    ref = model.apply({"params": params}, x)
    np.testing.assert_allclose(fake_quant.forward(model, params, x), ref, rtol=1e-5, atol=1e-3)
    ranges = fake_quant.calibrate(model, params, [np.asarray(x)])
    sim = fake_quant.forward(model, params, x, ranges)
  assert np.abs(np.asarray(sim) - np.asarray(ref)).max() > 0.5
  np.testing.assert_array_equal(sim, np.clip(np.round(sim), 0, 255))  # integer 0..255 output


def test_to_vector_bias_keeps_the_interior():
  model, params = _tiny("map")
  kw, vparams = qat_lib.to_vector_bias({"scale": 2, "widths": (3, 6, 6, 6), "bias_mode": "map",
                                        "sub_mean": False}, params)
  vmodel = PlainNet(**kw)
  x = jnp.asarray(_images(1, 16))
  with jax.default_matmul_precision("highest"):
    a = model.apply({"params": params}, x)
    b = vmodel.apply({"params": vparams}, x)
  # Three 3×3 layers: the border changes within 3 LR pixels (6 HR); the interior is the same.
  np.testing.assert_allclose(a[:, 6:-6, 6:-6], b[:, 6:-6, 6:-6], rtol=1e-5, atol=1e-3)
  assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-3


def _source(seed=0):
  rng = np.random.default_rng(seed)
  while True:
    hr = rng.integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    yield {"lr": hr[:, ::2, ::2], "hr": hr}


@pytest.mark.slow
@pytest.mark.parametrize("train_ranges", [True, False])
def test_qat_trains_weights_and_ranges_or_freezes_ranges(train_ranges):
  model, params = _tiny()
  ranges = fake_quant.calibrate(model, params, [_images(2, 8)])
  p2, r2, log = qat_lib.train(model, params, ranges, _source(), steps=3, lr=1e-3,
                              train_ranges=train_ranges)
  assert len(log) == 1 and np.isfinite(log[0][1])
  assert np.abs(p2["conv_1"]["kernel"] - params["conv_1"]["kernel"]).max() > 0
  moved = max(np.abs(r2[k] - ranges[k]).max() for k in ranges)
  assert (moved > 0) == train_ranges
  np.testing.assert_array_equal(r2["output"], [0, 255])


def _qat_checkpoint(path):
  model, params = _tiny()
  ranges = fake_quant.calibrate(model, params, [_images(2, 16)])
  kw = {"scale": 2, "widths": (3, 6, 6, 6), "bias_mode": "vector", "sub_mean": False,
        "tail_kernel": 1}
  ckpt_lib.save_model_checkpoint(path, "plain", kw, params, {},
                                 extra_items={qat_export.RANGES_ITEM: ranges})
  return model, params, ranges


@pytest.mark.slow
def test_export_of_a_qat_checkpoint_refuses_calibration(tmp_path, capsys):
  _qat_checkpoint(tmp_path / "qat")
  (tmp_path / "calib").mkdir()
  rc = export_cli.main(["--checkpoint", str(tmp_path / "qat"), "--quantize", "int8",
                        "--calibration", str(tmp_path / "calib"), "--output",
                        str(tmp_path / "q.onnx")])
  assert rc == 2 and "drop --calibration" in capsys.readouterr().err
  assert not (tmp_path / "q.onnx").exists()


@pytest.mark.slow
def test_pinned_int8_export_matches_the_simulator_in_onnxruntime(tmp_path):
  import onnx
  from onnx import numpy_helper
  model, params, ranges = _qat_checkpoint(tmp_path / "qat")
  out = tmp_path / "q.onnx"
  assert export_cli.main(["--checkpoint", str(tmp_path / "qat"), "--quantize", "int8",
                          "--tolerance", "0.01", "--output", str(out)]) == 0
  proto = onnx.load(str(out))
  props = {p.key: p.value for p in proto.metadata_props}
  assert "memsr_jax.int8_simulator" in props
  # The trained output range is pinned: scale 1, zero point 0 (integer pixels, clipped).
  inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
  scales = [float(v) for k, v in inits.items() if k.endswith("_scale") and v.size == 1]
  want = {float(fake_quant.ort_qparams(*ranges[k])[0]) for k in ranges}
  assert want <= set(scales)
  # ONNX Runtime against the simulator on a photo it was not calibrated on.
  import onnxruntime as ort
  sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
  lr = qat_export.verify_photos(side=40)[1][1]
  got = sess.run(None, {"lr": lr[None].astype(np.float32)})[0][0]
  sim = qat_export.simulate(model, params, ranges, lr)
  mse = np.mean((got - sim) ** 2)
  assert 10 * np.log10(255 ** 2 / max(mse, 1e-12)) >= qat_export.SIM_MIN_PSNR
