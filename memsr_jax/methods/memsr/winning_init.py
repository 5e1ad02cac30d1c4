"""MemSR's winning initialization (Algorithm 1), in float64 NumPy.

For each layer i of the plain teacher (except the last body layer and the tail):
  F = teacher features [C_T, n] → b = row mean, Fc = F − b, SVD Fc = U Σ Vᵀ;
  width r fixed or the smallest r with ‖Fc − U_r Σ_r V_rᵀ‖_F / ‖Fc‖_F < θ;
  bridge M_i: F ≈ U_r F_S + b (a trainable 1×1 conv); mean shift: F_S += γ, b −= U_r γ with
  γ = −β·mean(min(F_S, 0)) ("code": over all entries) or over the negative entries ("paper");
  student layer i: compose M_{i−1} with teacher conv i in ones-channel form, remove b_i from the
  constant part, solve U_r X = [kernel; bias map] by least squares; keep the teacher's activation.
The last body layer gets an identity bridge (its kernel is the composition alone); the tail is
copied exactly. Student convs carry "map" biases, so borders stay consistent with the teacher.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.methods.memsr import convert
from memsr_jax.utils import precision

SHIFT_STATS = ("code", "paper")


@dataclasses.dataclass
class LayerInfo:
  teacher_width: int
  width: int
  # ‖Fc − U_r U_rᵀ Fc‖_F / ‖Fc‖_F on the sampled columns (0 for identity bridges)
  rel_error: float
  shift_mean: float    # mean of γ


def choose_width(singular_values: np.ndarray, theta: float) -> tuple[int, float]:
  """Smallest r ≥ 1 whose rank-r residual ‖Fc − Fc_r‖_F / ‖Fc‖_F is < θ, and that residual."""
  s2 = np.asarray(singular_values, np.float64) ** 2
  total = s2.sum()
  if total <= 0.0:
    return 1, 0.0
  tail = np.concatenate([np.cumsum(s2[::-1])[::-1], [0.0]])  # tail[r] = Σ_{k ≥ r} σ_k²
  err = np.sqrt(np.maximum(tail, 0.0) / total)
  ok = np.nonzero(err[1:] < theta)[0]
  r = int(ok[0]) + 1 if ok.size else len(s2)
  return r, float(err[r])


def mean_shift(fs: np.ndarray, beta: float, stat: str = "code") -> np.ndarray:
  """γ [r] that moves the student features F_S [r, n] towards non-negative values."""
  if stat not in SHIFT_STATS:
    raise ValueError(f"shift statistic must be one of {SHIFT_STATS}, got {stat!r}")
  neg = np.minimum(fs, 0.0)
  if stat == "code":
    m = neg.mean(axis=1)
  else:
    cnt = (fs < 0).sum(axis=1)
    m = np.where(cnt > 0, neg.sum(axis=1) / np.maximum(cnt, 1), 0.0)
  return -beta * m


def decompose(feats: np.ndarray, width: int | None = None, theta: float | None = None,
              beta: float = 3.0, stat: str = "code"):
  """feats [C_T, n] → (U_r [C_T, r], b [C_T], info) with feats ≈ U_r F_S + b after the shift."""
  if (width is None) == (theta is None):
    raise ValueError("decompose: give exactly one of width (fixed) or theta (adaptive)")
  f = np.asarray(feats, np.float64)
  b = f.mean(axis=1)
  fc = f - b[:, None]
  u, s, vt = np.linalg.svd(fc, full_matrices=False)
  if theta is not None:
    r, err = choose_width(s, theta)
  else:
    r = int(min(width, len(s)))
    s2 = s ** 2
    err = float(np.sqrt(s2[r:].sum() / s2.sum())) if s2.sum() > 0 else 0.0
  ur = u[:, :r]
  fs = s[:r, None] * vt[:r]
  gamma = mean_shift(fs, beta, stat) if beta else np.zeros(r)
  b = b - ur @ gamma
  return ur, b, LayerInfo(f.shape[0], r, err, float(gamma.mean()))


def compose_bridge(teacher_layer, u_prev: np.ndarray, b_prev: np.ndarray):
  """Teacher conv applied to (U_prev·F_S + b_prev) as a conv on F_S: (kernel, bias map).

  The bridge bias is a constant image inside the frame and zero in the padding (the teacher's input
  is zero-padded), so in ones-channel form it contributes W·b_prev as a full 3×3 bias map.
  """
  w, m = convert.kernel_and_map(teacher_layer)
  k = np.einsum("hwco,cr->hwro", w, u_prev)
  m = m + np.einsum("hwco,c->hwo", w, b_prev)[:, :, None, :]
  return k, m


def project(kernel: np.ndarray, bias_map: np.ndarray, u: np.ndarray, b: np.ndarray):
  """Least squares U X = [kernel; bias map − b at the center] over the output channels."""
  kh, kw, cin, cout = kernel.shape
  m = bias_map.copy()
  m[kh // 2, kw // 2, 0] -= b
  stacked = np.concatenate([kernel, m], axis=2).reshape(-1, cout).T   # [cout, kh·kw·(cin+1)]
  x, *_ = np.linalg.lstsq(u, stacked, rcond=None)                     # [r, kh·kw·(cin+1)]
  x = x.T.reshape(kh, kw, cin + 1, u.shape[1])
  return x[:, :, :cin], x[:, :, cin:]


def winning_init(teacher_params: dict, teacher_relu, feats: list, *, widths=None,
                 theta: float | None = None, beta: float = 3.0, stat: str = "code"):
  """Plain teacher (params with conv_0…conv_{L−1}, tail) + its per-layer features → student.

  feats[i]: [C_T,i, n] float64 samples of the teacher's layer-i output (after its activation),
  i = 0 … L−2 (the last body layer needs none). widths: one int (all layers) or a list of L−1 ints
  (fixed width, Plain-S/M/L); theta: adaptive width (Plain-X). Returns (student kwargs for PlainNet,
  student params, bridges, per-layer infos): bridges[i] = {"kernel": U_i [C_T, r], "bias": b_i},
  identity for the last body layer.
  """
  n_layers = len(teacher_relu)
  if len(feats) < n_layers - 1:
    raise ValueError(f"winning_init: need features of {n_layers - 1} layers, got {len(feats)}")
  if widths is not None and np.ndim(widths) == 0:
    widths = [int(widths)] * (n_layers - 1)
  if widths is not None and len(widths) != n_layers - 1:
    raise ValueError(f"winning_init: {len(widths)} widths for {n_layers - 1} bridged layers")
  c_in = np.asarray(teacher_params["conv_0"]["kernel"]).shape[2]
  u_prev, b_prev = np.eye(c_in), np.zeros(c_in)
  student, bridges, infos, out_widths = {}, [], [], [c_in]
  for i in range(n_layers):
    k, m = compose_bridge(teacher_params[f"conv_{i}"], u_prev, b_prev)
    if i < n_layers - 1:
      u, b, info = decompose(feats[i], width=None if widths is None else widths[i],
                             theta=theta if widths is None else None, beta=beta, stat=stat)
      k, m = project(k, m, u, b)
    else:
      cout = k.shape[-1]
      u, b = np.eye(cout), np.zeros(cout)
      info = LayerInfo(cout, cout, 0.0, 0.0)
    student[f"conv_{i}"] = {"kernel": k, "bias_map": m}
    bridges.append({"kernel": u, "bias": b})
    infos.append(info)
    out_widths.append(u.shape[1])
    u_prev, b_prev = u, b
  student["tail"] = {k_: np.array(v, np.float64) for k_, v in teacher_params["tail"].items()}
  kwargs = dict(widths=tuple(int(w) for w in out_widths), relu=tuple(bool(r) for r in teacher_relu),
                bias_mode="map", tail_kernel=1, sub_mean=False)
  return kwargs, student, bridges, infos


def sample_columns(feat: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
  """[B, H, W, C] features → [C, n] with at most `max_samples` random pixel columns."""
  f = np.asarray(feat, np.float64).reshape(-1, feat.shape[-1])
  if f.shape[0] > max_samples:
    f = f[rng.choice(f.shape[0], max_samples, replace=False)]
  return f.T


def teacher_feature_samples(spec, teacher_params, lr_patches, offset: float,
                            max_samples: int = 32768, seed: int = 0) -> list[np.ndarray]:
  """Plain-teacher features ([C_T, n] float64, +C offsets included) of layers 0 … L−2, computed
  from the residual teacher in float64 (jax x64) on `lr_patches` [B, h, w, 3] (0..255)."""
  masks = convert.offset_masks(spec)
  rng = np.random.default_rng(seed)
  with jax.enable_x64(True), precision.exact():
    p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), teacher_params)
    x = jnp.asarray(np.asarray(lr_patches), jnp.float64)
    _, feats = convert.residual_plain_features(spec, p64, x)
    out = []
    for parts, mask in list(zip(feats, masks))[:-1]:
      f = np.concatenate([np.asarray(p) for p in parts], axis=-1) + offset * mask
      out.append(sample_columns(f, max_samples, rng))
  return out
