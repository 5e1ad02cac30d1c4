"""Fake-quant of a plain net with ONNX Runtime's int8 QDQ arithmetic: the int8 simulator.

What `deploy.quantize` writes for a `PlainNet` with vector biases and no mean shift (every node
quantized, QDQ, per-channel 7-bit weights), and what ONNX Runtime computes from it, in JAX:
- the input: uint8 with scale 1, zero point 0 (integer pixel values, exact);
- every conv's weights: int8 symmetric per output channel at the `reduce_range` bounds −64..64,
  scale = max|w| / 64 (ONNX Runtime's `compute_scale_zp`);
- a body conv's bias: int32 at scale s_in · s_w (ConvAddFusion folds it into the Conv);
- every body conv's output (after its ReLU, which QLinearConv's uint8 clamp replaces): uint8 per
  tensor, asymmetric; the range is `ranges["conv_i"]`;
- the tail: a 1×1 conv without bias, its output uint8 (`ranges["tail_conv"]`), the bias added by
  an Add as a uint8 constant (its own min/max range), the sum uint8 (`ranges["output"]`); the
  pixel shuffle moves quantized values without changing them.
Quantization is x → saturate(round(x / s) + z) with round half to even, dequantization
(q − z) · s. The rounding uses a straight-through estimator, so the same function trains
(quantization-aware training: gradients reach the weights and, through the scales, the ranges).
Ranges are (lo, hi) pairs; ONNX Runtime widens them to include 0.
"""
import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.models.layers import pixel_shuffle

W_QMAX = 64  # int8 weights at ONNX Runtime's reduce_range bounds: −64..64
A_QMAX = 255  # uint8 activations
INPUT_RANGE = (0.0, 255.0)
OUTPUT_RANGE = (0.0, 255.0)  # the output quantizer also clips to the image range


class UnsupportedModel(ValueError):
  """A model the simulator does not describe (it raises before any computing)."""


def check_model(model) -> None:
  """Raises UnsupportedModel unless `model` is a PlainNet with vector biases and no mean shift."""
  from memsr_jax.models.plain import PlainNet
  if not isinstance(model, PlainNet):
    raise UnsupportedModel(f"the int8 simulator covers plain nets (PlainNet); got "
                           f"{type(model).__name__}")
  if model.sub_mean or model.bias_mode != "vector":
    raise UnsupportedModel("the int8 simulator covers PlainNet with sub_mean=False and "
                           "bias_mode='vector' (see memsr_jax.train.qat.to_vector_bias)")


def round_ste(x):
  """Round half to even forward, identity backward."""
  return x + jax.lax.stop_gradient(jnp.round(x) - x)


def act_qparams(lo, hi):
  """(scale, zero point) of uint8 asymmetric quantization of [lo, hi] ∪ {0}."""
  lo, hi = jnp.minimum(lo, 0.0), jnp.maximum(hi, 0.0)
  s = (hi - lo) / A_QMAX
  s = jnp.where(s > 0, s, 1.0)
  return s, jnp.clip(round_ste(-lo / s), 0, A_QMAX)


def fq_act(x, lo, hi):
  s, z = act_qparams(lo, hi)
  return (jnp.clip(round_ste(x / s) + z, 0, A_QMAX) - z) * s


def weight_scale(w):
  """Per-output-channel scale of an HWIO kernel (no gradient: it follows the weights)."""
  absmax = jax.lax.stop_gradient(jnp.max(jnp.abs(w), axis=(0, 1, 2)))
  return jnp.where(absmax > 0, absmax * (2.0 / (2 * W_QMAX)), 1.0)


def fq_weight(w):
  s = weight_scale(w)
  return jnp.clip(round_ste(w / s), -W_QMAX, W_QMAX) * s, s


def _conv(x, w):
  return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      precision=jax.lax.Precision.HIGHEST)


def range_names(model) -> list[str]:
  return [f"conv_{i}" for i in range(model.n_layers)] + ["tail_conv", "output"]


def forward(model, params, x, ranges=None, capture: bool = False):
  """The int8 simulation of `model` on x (float NHWC 0..255); `ranges=None` runs the float model
  on the same path. `capture=True` also returns {range name: the tensor that range quantizes}
  (before quantization), what calibration measures."""
  check_model(model)
  q = ranges is not None
  points = {}
  h = fq_act(x, *INPUT_RANGE) if q else x
  s_in = 1.0
  relu = model.relu_flags()
  for i in range(model.n_layers):
    p = params[f"conv_{i}"]
    w, s_w = fq_weight(p["kernel"]) if q else (p["kernel"], None)
    b = round_ste(p["bias"] / (s_in * s_w)) * (s_in * s_w) if q else p["bias"]
    y = _conv(h, w) + b
    if relu[i]:
      y = jax.nn.relu(y)
    points[f"conv_{i}"] = y
    h = fq_act(y, *ranges[f"conv_{i}"]) if q else y
    s_in = act_qparams(*ranges[f"conv_{i}"])[0] if q else None
  p = params["tail"]
  w = fq_weight(p["kernel"])[0] if q else p["kernel"]
  t = _conv(h, w)
  points["tail_conv"] = t
  b = p["bias"]
  if q:
    t = fq_act(t, *ranges["tail_conv"])
    b = fq_act(b, jnp.min(b), jnp.max(b))
  y = t + b
  points["output"] = y
  if q:
    y = fq_act(y, *ranges["output"])
  y = pixel_shuffle(y, model.scale)
  return (y, points) if capture else y


def calibrate(model, params, batches, percentile: float = 100.0) -> dict:
  """Ranges from float activations on `batches` (iterable of NHWC 0..255 arrays): per point the
  min / max over all batches (`percentile` < 100: that percentile of |x| per batch, the largest);
  the output range is the image range."""
  fn = jax.jit(lambda p, x: forward(model, p, x, capture=True)[1])
  lo = {k: 0.0 for k in range_names(model)}
  hi = dict(lo)
  for x in batches:
    pts = fn(params, jnp.asarray(x, jnp.float32))
    for k, v in pts.items():
      v = np.asarray(v)
      lo[k] = min(lo[k], float(np.percentile(v, 100 - percentile) if percentile < 100
                               else v.min()))
      hi[k] = max(hi[k], float(np.percentile(v, percentile) if percentile < 100 else v.max()))
  out = {k: np.asarray([lo[k], hi[k]], np.float32) for k in lo}
  out["output"] = np.asarray(OUTPUT_RANGE, np.float32)
  return out


def ort_qparams(lo: float, hi: float) -> tuple[np.float32, np.uint8]:
  """(scale, zero point) exactly as ONNX Runtime's quantizer computes them for uint8."""
  from onnxruntime.quantization.quant_utils import compute_scale_zp
  zp, s = compute_scale_zp(np.float32(lo), np.float32(hi), np.uint8(0), np.uint8(A_QMAX))
  return np.float32(s), np.uint8(zp)


def ort_overrides(onnx_model, model, ranges) -> dict:
  """ONNX Runtime `TensorQuantOverrides` pinning every activation quantizer of the exported
  (pre-processed) graph of `model` to `ranges`: {tensor name: [{"scale", "zero_point"}]}."""
  from memsr_jax.deploy import quant_nodes
  graph = onnx_model.graph
  _, consumers = quant_nodes.graph_maps(graph)
  convs = [n for n in graph.node if n.op_type == "Conv"]
  if len(convs) != model.n_layers + 1:
    raise UnsupportedModel(f"expected {model.n_layers + 1} Conv nodes, the graph has "
                           f"{len(convs)}")

  def after(tensor, skip):  # the tensor past single-consumer nodes of types `skip`
    while True:
      users = consumers.get(tensor, [])
      if len(users) != 1 or users[0].op_type not in skip:
        return tensor, users
      tensor = users[0].output[0]

  def pin(name):
    s, z = ort_qparams(*np.asarray(ranges[name], np.float64))
    return [{"scale": np.asarray(s), "zero_point": np.asarray(z)}]

  out = {}
  for i, conv in enumerate(convs[:-1]):
    tensor, _ = after(conv.output[0], ("Relu",))
    out[tensor] = pin(f"conv_{i}")
  tensor, users = after(convs[-1].output[0], ())
  out[tensor] = pin("tail_conv")
  _, users = after(tensor, ("Transpose", "Reshape"))
  adds = [u for u in users if u.op_type == "Add"]
  if len(adds) != 1:
    raise UnsupportedModel("the tail conv is not followed by one bias Add")
  out[adds[0].output[0]] = pin("output")
  return out
