"""Exact conversion of a residual MemSR teacher into a plain chain of 3×3 convs (MemSR step 1).

Residual teacher (EDSR family, 1×1 tail): h0 = head(x − mean); block j: t_j = ReLU(conv1(h_j)),
h_{j+1} = h_j + s·conv2(t_j); body = body_conv(h_N) + h0; sr = shuffle(tail(body)) + mean.

Plain teacher (L = 2N + 2 convs + the 1×1 tail), channel layout of each layer's output:
  layer 0          [h0]                      identity
  layer 2j+1       [t_j, h_j + C, h0 + C]    ReLU      (C keeps the copies ≥ 0 through the ReLU)
  layer 2j+2       [h_{j+1}, h0 + C]         identity  (the block skip rejoins: −C in the bias)
  layer 2N+1       [body_conv(h_N) + h0]     identity  (the global skip rejoins)
  tail             1×1 conv; the mean add-back folds into its bias.
Biases live in a ones channel ("map" biases): the head's input mean shift becomes a 3×3 bias map,
which stays exact at zero-padded borders. A teacher whose body convs already carry bias maps
(EDSR `body_bias="map"`, the official MemSR teachers) converts the same way, map for map.
Everything is computed in float64 NumPy.

`residual_plain_features` computes the same per-layer features directly from the residual teacher
without the +C offsets (what distillation and the winning initialization consume).
"""
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.models.edsr import EDSR
from memsr_jax.models.layers import pixel_shuffle
from memsr_jax.models.plain import PlainNet
from memsr_jax.models.plain import ones_conv

DEFAULT_OFFSET = 1000.0


@dataclasses.dataclass(frozen=True)
class TeacherSpec:
  """What the conversion needs to know about a residual teacher."""
  scale: int
  n_feats: int
  n_blocks: int
  res_scale: float
  rgb_mean: tuple
  n_colors: int = 3

  @property
  def n_layers(self) -> int:
    return 2 * self.n_blocks + 2


def teacher_spec(model: Any) -> TeacherSpec:
  """Validates that `model` is convertible and returns its spec; raises ValueError naming the
  part."""
  if not isinstance(model, EDSR):
    raise ValueError(f"MemSR conversion supports EDSR-family teachers (memsr_jax.models.edsr.EDSR) "
                     f"with a 1×1 tail; got {type(model).__name__}. Train a memsr_teacher_s/m/l "
                     "or an EDSR with tail='conv1x1'.")
  if model.tail != "conv1x1":
    raise ValueError(f"MemSR conversion: EDSR tail={model.tail!r} is not supported: its 3×3 "
                     "upsampler convs act after a pixel shuffle, which a plain chain of same-"
                     "resolution 3×3 convs cannot express. Use tail='conv1x1' (the MemSR teachers, "
                     "presets memsr_teacher_s/m/l).")
  if model.n_colors != 3:
    raise ValueError(f"MemSR conversion: n_colors={model.n_colors} is not supported (RGB only).")
  return TeacherSpec(scale=int(model.scale), n_feats=int(model.n_feats),
                     n_blocks=int(model.n_resblocks), res_scale=float(model.res_scale),
                     rgb_mean=tuple(float(m) for m in model.rgb_mean), n_colors=3)


def plain_widths(spec: TeacherSpec) -> tuple:
  f, n = spec.n_feats, spec.n_blocks
  body = [3 * f, 2 * f] * n
  return tuple([spec.n_colors, f] + body + [f])


def plain_relu(spec: TeacherSpec) -> tuple:
  return tuple([False] + [True, False] * spec.n_blocks + [False])


def offset_masks(spec: TeacherSpec) -> list[np.ndarray]:
  """Per plain layer: bool [c_out], True on the channels that carry a skip copy shifted by +C."""
  f = spec.n_feats
  masks = [np.zeros(f, bool)]
  for _ in range(spec.n_blocks):
    masks.append(np.concatenate([np.zeros(f, bool), np.ones(2 * f, bool)]))
    masks.append(np.concatenate([np.zeros(f, bool), np.ones(f, bool)]))
  masks.append(np.zeros(f, bool))
  return masks


def _np(x) -> np.ndarray:
  return np.asarray(x, np.float64)


def _center(c_in: int, c_out: int, pairs) -> np.ndarray:
  """A [3, 3, c_in, c_out] kernel with identity taps at the center for (in_idx, out_idx) ranges."""
  k = np.zeros((3, 3, c_in, c_out))
  for (i0, o0, n) in pairs:
    k[1, 1, np.arange(i0, i0 + n), np.arange(o0, o0 + n)] = 1.0
  return k


def _bias_map(c_out: int, center_bias: np.ndarray) -> np.ndarray:
  m = np.zeros((3, 3, 1, c_out))
  m[1, 1, 0, :] = center_bias
  return m


def kernel_and_map(p) -> tuple[np.ndarray, np.ndarray]:
  """A conv's (kernel, bias as a [k, k, 1, c] map) in float64: its own bias map, or its vector
  bias at the centre tap (what a vector bias is in ones-channel form)."""
  k = _np(p["kernel"])
  if "bias_map" in p:
    return k, _np(p["bias_map"])
  m = np.zeros((k.shape[0], k.shape[1], 1, k.shape[3]))
  m[k.shape[0] // 2, k.shape[1] // 2, 0] = _np(p["bias"])
  return k, m


def _joined_map(*parts: np.ndarray) -> np.ndarray:
  return np.concatenate(parts, axis=-1)


def convert_params(spec: TeacherSpec, params, offset: float = DEFAULT_OFFSET) -> dict:
  """Residual teacher params → plain teacher params (float64 NumPy), layout in the module doc."""
  f, n, s, c = spec.n_feats, spec.n_blocks, spec.res_scale, float(offset)
  mean = np.asarray(spec.rgb_mean, np.float64)
  out = {}
  # Head: conv(x − mean) with zero padding = conv(x) − conv(mean·ones) + b, a full 3×3 bias map.
  wh, bh = _np(params["head"]["kernel"]), _np(params["head"]["bias"])
  if wh.shape[:2] != (3, 3):
    raise ValueError(f"MemSR conversion: head kernel must be 3×3, got {wh.shape[:2]}")
  hmap = -np.einsum("hwco,c->hwo", wh, mean)[:, :, None, :]
  hmap[1, 1, 0] += bh
  out["conv_0"] = {"kernel": wh, "bias_map": hmap}
  for j in range(n):
    blk = params[f"body_{j}"]
    w1, m1 = kernel_and_map(blk["conv1"])
    w2, m2 = kernel_and_map(blk["conv2"])
    # Layer 2j+1: input [h0] (j = 0) or [h_j, h0 + C]; output [t_j, h_j + C, h0 + C], ReLU.
    cin = f if j == 0 else 2 * f
    k = np.zeros((3, 3, cin, 3 * f))
    k[:, :, :f, :f] = w1
    k += _center(cin, 3 * f, [(0, f, f), (0 if j == 0 else f, 2 * f, f)])
    copies = np.concatenate([np.full(f, c), np.full(f, 0.0 if j else c)])
    out[f"conv_{2 * j + 1}"] = {"kernel": k, "bias_map": _joined_map(m1, _bias_map(2 * f, copies))}
    # Layer 2j+2: input [t_j, h_j + C, h0 + C]; output [h_j + s·conv2(t_j), h0 + C], identity.
    k = np.zeros((3, 3, 3 * f, 2 * f))
    k[:, :, :f, :f] = s * w2
    k += _center(3 * f, 2 * f, [(f, 0, f), (2 * f, f, f)])
    out[f"conv_{2 * j + 2}"] = {"kernel": k, "bias_map": _joined_map(
        s * m2 - _bias_map(f, np.full(f, c)), np.zeros((3, 3, 1, f)))}
  # Body conv + global skip: input [h_N, h0 + C] (or [h0] without blocks).
  wb, mb = kernel_and_map(params["body_conv"])
  if n == 0:
    k = wb + _center(f, f, [(0, 0, f)])
  else:
    k = np.zeros((3, 3, 2 * f, f))
    k[:, :, :f, :] = wb
    k += _center(2 * f, f, [(f, 0, f)])
    mb = mb - _bias_map(f, np.full(f, c))
  out[f"conv_{2 * n + 1}"] = {"kernel": k, "bias_map": mb}
  # Tail: 1×1 conv; channel c·s² + k of the shuffle lands in colour c, so the mean repeats s² times.
  wt, bt = _np(params["tail"]["kernel"]), _np(params["tail"]["bias"])
  out["tail"] = {"kernel": wt, "bias": bt + np.repeat(mean, spec.scale ** 2)}
  return out


def plain_model_for(spec: TeacherSpec, precision: str | None = "highest") -> PlainNet:
  return PlainNet(scale=spec.scale, widths=plain_widths(spec), relu=plain_relu(spec),
                  bias_mode="map", tail_kernel=1, sub_mean=False, precision=precision)


def plain_model_kwargs(spec: TeacherSpec, precision: str | None = "highest") -> dict:
  """Constructor kwargs of the plain teacher for the `plain` registry preset (checkpoint meta)."""
  return dict(scale=spec.scale, widths=plain_widths(spec), relu=plain_relu(spec), bias_mode="map",
              tail_kernel=1, sub_mean=False, precision=precision)


def convert(model: Any, params, offset: float = DEFAULT_OFFSET, dtype=np.float32,
            precision: str | None = "highest") -> tuple[PlainNet, dict]:
  """Residual teacher (model, params) → (PlainNet, params in `dtype`), exact up to rounding.

  Run the result with HIGHEST conv precision (the default here): the +C skip copies would lose
  their low bits under TF32/bf16 matmuls.
  """
  spec = teacher_spec(model)
  _check_params(spec, params)
  plain = convert_params(spec, params, offset)
  plain = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), plain)
  return plain_model_for(spec, precision), plain


def _check_params(spec: TeacherSpec, params) -> None:
  want = {"head", "body_conv", "tail"} | {f"body_{j}" for j in range(spec.n_blocks)}
  missing = sorted(want - set(params))
  if missing:
    raise ValueError(f"MemSR conversion: teacher params lack {missing}; got {sorted(params)}")
  k = np.shape(params["tail"]["kernel"])
  if k[:2] != (1, 1):
    raise ValueError(f"MemSR conversion: tail kernel must be 1×1, got {k[:2]}")


# --- plain-equivalent features straight from the residual teacher ---------------------------------

def _conv(x, p, precision):
  y = jax.lax.conv_general_dilated(x, jnp.asarray(p["kernel"], x.dtype), (1, 1), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                   precision=precision)
  if "bias_map" in p:
    return y + ones_conv(x.shape[1:3], jnp.asarray(p["bias_map"], x.dtype), x.dtype)
  return y + jnp.asarray(p["bias"], x.dtype)


def residual_plain_features(spec: TeacherSpec, params, x, precision="highest"):
  """(sr, feats) of the residual teacher; feats[i] = tuple of channel groups of plain layer i
  *without* the +C offsets (concatenate them to get the plain layer minus C·offset_mask)."""
  mean = jnp.asarray(spec.rgb_mean, x.dtype)
  h0 = _conv(x - mean, params["head"], precision)
  feats = [(h0,)]
  h = h0
  for j in range(spec.n_blocks):
    blk = params[f"body_{j}"]
    t = jax.nn.relu(_conv(h, blk["conv1"], precision))
    feats.append((t, h, h0))
    h = h + spec.res_scale * _conv(t, blk["conv2"], precision)
    feats.append((h, h0))
  body = _conv(h, params["body_conv"], precision) + h0
  feats.append((body,))
  sr = pixel_shuffle(_conv(body, params["tail"], precision), spec.scale) + mean
  return sr, feats


# --- the plain teacher with its +C offsets folded analytically -----------------------------------

def fold_offsets(spec: TeacherSpec, plain_params: dict, offset: float = DEFAULT_OFFSET) -> dict:
  """Plain params → the same network acting on offset-free values (float64 NumPy).

  Layer i then computes ẑ = conv(x̂) + bias_map', with x̂ = x − o_{i−1} and ẑ = z − o_i
  (o = C·offset_mask): bias_map' = bias_map + (taps of K applied to the constant o_{i−1}) − o_i at
  the center. ReLU(ẑ + o) − o = max(ẑ, −o), which `apply_folded` uses, so no value near ±C is
  ever formed in floating point. Mathematically identical to the plain net; fp32-exact.
  """
  masks = offset_masks(spec)
  out, o_prev = {}, np.zeros(spec.n_colors)
  for i, mask in enumerate(masks):
    p = plain_params[f"conv_{i}"]
    k, m = _np(p["kernel"]), _np(p["bias_map"]).copy()
    m += np.einsum("hwco,c->hwo", k, o_prev)[:, :, None, :]
    o = offset * mask.astype(np.float64)
    m[1, 1, 0] -= o
    out[f"conv_{i}"] = {"kernel": k, "bias_map": m}
    o_prev = o
  out["tail"] = {k: _np(v) for k, v in plain_params["tail"].items()}
  return out


def apply_folded(spec: TeacherSpec, folded_params: dict, x, offset: float = DEFAULT_OFFSET,
                 precision="highest", capture: bool = False):
  """Runs the offset-folded plain teacher (see `fold_offsets`): same output as the plain net."""
  relu, masks = plain_relu(spec), offset_masks(spec)
  h, feats = x, []
  for i, (r, mask) in enumerate(zip(relu, masks)):
    p = folded_params[f"conv_{i}"]
    z = jax.lax.conv_general_dilated(h, jnp.asarray(p["kernel"], x.dtype), (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=precision)
    h = z + ones_conv(x.shape[1:3], jnp.asarray(p["bias_map"], x.dtype), x.dtype)
    if r:
      h = jnp.maximum(h, jnp.asarray(-offset * mask, x.dtype))
    feats.append(h)
  t = folded_params["tail"]
  y = jax.lax.conv_general_dilated(h, jnp.asarray(t["kernel"], x.dtype), (1, 1), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision)
  y = pixel_shuffle(y + jnp.asarray(t["bias"], x.dtype), spec.scale)
  return (y, feats) if capture else y
