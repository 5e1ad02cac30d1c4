"""int8 export of a quantization-aware-trained checkpoint: trained ranges pinned, no calibration.

A QAT checkpoint (`memsr_jax.train.qat`) holds a plain net and, as the extra item `qat_ranges`,
the (lo, hi) range of each activation quantizer of `deploy.fake_quant`. `quantize_qat` quantizes the
verified float model with ONNX Runtime (every node, QDQ, per-channel 7-bit weights) with those
ranges pinned as `TensorQuantOverrides` (scale and zero point as ONNX Runtime computes them from the
range), then checks the file twice on held-out photos (scikit-image's, never training data):
- against the simulator (`fake_quant.forward` with the same ranges): PSNR over RGB of ONNX Runtime's
  output against the simulator's, at least `SIM_MIN_PSNR` (what says the training saw the model
  ONNX Runtime runs);
- against the float model (the same weights without quantization), as `deploy.quantize.verify`
  does for calibrated files; refused below `min_psnr` when given. Training under quantization
  moves the weights away from what computes well in float, so this distance says little about
  the int8 model's quality and is by default only measured.
Either check failing raises `quantize.Int8VerificationError` and nothing is written.
"""
import dataclasses
import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.checkpoints import load_model_item
from memsr_jax.deploy import fake_quant
from memsr_jax.deploy import quantize
from memsr_jax.image import metrics

RANGES_ITEM = "qat_ranges"
SIM_MIN_PSNR = 50.0  # dB, ONNX Runtime's int8 output against the simulator's, RGB, 0..255
OPTIONS = dataclasses.replace(quantize.Int8Options(), keep_float=(), kept_weights="float32",
                              crops=1, method="minmax")


def checkpoint_ranges(checkpoint) -> dict | None:
  """The trained ranges of a QAT checkpoint ({name: [lo, hi]}), or None for other checkpoints."""
  if not checkpoint:
    return None
  try:
    item = load_model_item(checkpoint, RANGES_ITEM)
  except (OSError, ValueError):
    return None
  return None if item is None else {k: np.asarray(v, np.float32) for k, v in item.items()}


def verify_photos(side: int = quantize.VERIFY_SIDE):
  """[(name, uint8 LR image)]: centre crops of scikit-image photos."""
  from skimage import data
  out = []
  for name in ("astronaut", "coffee", "rocket"):
    img = getattr(data, name)()
    y, x = max(0, (img.shape[0] - side) // 2), max(0, (img.shape[1] - side) // 2)
    out.append((f"skimage {name}", np.ascontiguousarray(img[y:y + side, x:x + side])))
  return out


def simulate(model, params, ranges, lr: np.ndarray) -> np.ndarray:
  """The simulator's float output [H·s, W·s, 3] for one uint8 LR image."""
  with jax.default_matmul_precision("highest"):
    y = jax.jit(lambda p, x: fake_quant.forward(model, p, x, ranges))(
        params, jnp.asarray(lr[None], jnp.float32))
  return np.asarray(y[0], np.float32)


def sim_agreement(int8_model: bytes, model, params, ranges, images) -> dict:
  """PSNR (RGB, no crop) of ONNX Runtime's int8 output against the simulator's, both as uint8
  images (the output quantizer makes both integer-valued in 0..255 already)."""
  sess = quantize._session(int8_model)
  per = {}
  for name, lr in images:
    got = sess.run(None, {sess.get_inputs()[0].name: lr[None].astype(np.float32)})[0][0]
    per[name] = metrics.psnr(metrics.to_uint8(got),
                             metrics.to_uint8(simulate(model, params, ranges, lr)), crop=0,
                             y_only=False)
  finite = [v for v in per.values() if math.isfinite(v)]
  return {"psnr_rgb_vs_simulator": quantize._db(float(np.mean(finite)) if finite else math.inf),
          "per_image": {k: quantize._db(v) for k, v in per.items()}}


def quantize_qat(fp32_model: bytes, model, params, ranges, *, scale: int,
                 min_psnr: float | None = None,
                 sim_min_psnr: float = SIM_MIN_PSNR) -> tuple[bytes, dict]:
  """(int8 model bytes with metadata, report) with the trained ranges pinned; raises
  Int8VerificationError when the file is further than allowed from the simulator or the float
  model."""
  import onnx  # optional dependency
  import onnxruntime
  fake_quant.check_model(model)
  images = verify_photos()
  # quantize_static needs a data reader; every activation range is pinned, so one crop will do.
  calib = quantize.CalibrationSet(pathlib.Path("."), [images[0][1][:32, :32]],
                                  [images[0][0]], [])
  int8, _ = quantize.quantize(fp32_model, calib, OPTIONS,
                              overrides=lambda m: fake_quant.ort_overrides(m, model, ranges))
  sim = sim_agreement(int8, model, params, ranges, images)
  check = quantize.verify(fp32_model, int8, images, scale)
  report = {
      "quantization": f"int8 static QDQ, onnxruntime {onnxruntime.__version__}, "
                      "quantization-aware-trained ranges",
      "ranges": {k: [float(v[0]), float(v[1])] for k, v in ranges.items()},
      "simulator": {**sim, "min_psnr": sim_min_psnr},
      "verification": {**check, "min_psnr": min_psnr, "held_out": "scikit-image photos"},
  }
  if not float(sim["psnr_rgb_vs_simulator"]) >= sim_min_psnr:
    raise quantize.Int8VerificationError(
        f"int8 model is only {sim['psnr_rgb_vs_simulator']} dB from the int8 simulator "
        f"(< {sim_min_psnr:g} dB); not written")
  if min_psnr is not None and not float(check["psnr_y_vs_fp32"]) >= min_psnr:
    raise quantize.Int8VerificationError(
        f"int8 model reaches only {check['psnr_y_vs_fp32']} dB Y-PSNR against the float "
        f"model on held-out images (< {min_psnr:g} dB); not written")
  proto = onnx.load_from_string(int8)
  props = {p.key: p.value for p in proto.metadata_props}
  props.pop("onnx.quant.pre_process", None)
  for key in ("quantization", "ranges", "simulator", "verification"):
    v = report[key]
    props[f"{quantize.META}int8_{key}"] = v if isinstance(v, str) else json.dumps(v,
                                                                                 sort_keys=True)
  onnx.helper.set_model_props(proto, props)
  return proto.SerializeToString(), report
