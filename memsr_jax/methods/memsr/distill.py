"""Initialization-aware feature distillation (MemSR step 3) as a training task.

L = L1(SR, HR) + λ·ε^α·L_distill, α = step / total_steps, with
L_distill = mean over the student's layers of MSE(F_T,i, M_i(F_S,i)): the bridged layers, the last
body layer (identity bridge) and the SR output (vs the teacher's SR). Bridges are trained with the
student; the teacher is frozen (an extra, under stop_gradient).

Teacher features come straight from the residual teacher (`convert.residual_plain_features`), so
the ±C skip copies are never materialized: bridge biases are stored *without* the +C offset
(b' = b − C·mask), which gives the same loss as the plain form with better fp32 precision.
"""
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.methods.memsr import convert

PyTree = Any


def bridge_apply(bridge, feats):
  """1×1 conv F_S [B, H, W, r] → [B, H, W, C_T] with kernel [C_T, r] (U_r) and bias [C_T]."""
  return jnp.einsum("bhwr,cr->bhwc", feats, bridge["kernel"].astype(feats.dtype),
                    precision="highest") + bridge["bias"].astype(feats.dtype)


def _mse_parts(pred, parts):
  """MSE between pred [..., sum(c_k)] and the channel groups `parts` without concatenating them."""
  total, count, start = 0.0, 0, 0
  for p in parts:
    c = p.shape[-1]
    d = pred[..., start:start + c].astype(jnp.float32) - p.astype(jnp.float32)  # bf16 runs
    total = total + jnp.sum(jnp.square(d))
    count += p.size
    start += c
  return total / count


def distill_loss(student_feats, sr_student, teacher_feats, sr_teacher, bridges) -> jax.Array:
  """Mean over layers of MSE(F_T,i, M_i(F_S,i)) + body output + SR output terms.

  student_feats: L feature maps; teacher_feats: L tuples of channel groups (offset-free);
  bridges: L−1 dicts (kernel, bias) for layers 0 … L−2.
  """
  if len(student_feats) != len(teacher_feats) or len(bridges) != len(student_feats) - 1:
    raise ValueError(f"distill_loss: {len(student_feats)} student layers, {len(teacher_feats)} "
                     f"teacher layers, {len(bridges)} bridges (want L, L, L−1)")
  terms = [_mse_parts(bridge_apply(b, f), t)
           for b, f, t in zip(bridges, student_feats[:-1], teacher_feats[:-1])]
  terms.append(_mse_parts(student_feats[-1], teacher_feats[-1]))
  terms.append(jnp.mean(jnp.square(sr_student.astype(jnp.float32) - sr_teacher)))
  return sum(terms) / len(terms)


def distill_weight(step, total_steps: int, lam: float, eps: float):
  """λ·ε^α with α = step / total_steps (from λ down to λ·ε)."""
  alpha = jnp.asarray(step, jnp.float32) / float(max(total_steps, 1))
  return lam * jnp.power(jnp.float32(eps), alpha)


def offset_free_bridges(bridges, spec: convert.TeacherSpec, offset: float) -> list[dict]:
  """Plain-form bridges (bias with +C on the skip copies) → the offset-free form used here."""
  masks = convert.offset_masks(spec)
  return [{"kernel": np.asarray(b["kernel"], np.float32),
           "bias": np.asarray(np.asarray(b["bias"], np.float64) - offset * m, np.float32)}
          for b, m in zip(bridges, masks)]


def random_bridges(rng, student_widths, teacher_widths) -> list[dict]:
  """Xavier-normal 1×1 bridges with zero bias (the random-init + distillation baseline)."""
  out = []
  for i, (r, c) in enumerate(zip(student_widths, teacher_widths)):
    std = np.sqrt(2.0 / (r + c))
    k = std * jax.random.normal(jax.random.fold_in(rng, i), (c, r), jnp.float32)
    out.append({"kernel": k, "bias": jnp.zeros((c,), jnp.float32)})
  return out


def xavier_relu_init(rng, params):
  """Xavier-normal·√2 kernels and zero biases for every conv of a PlainNet param tree."""
  leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
  out = []
  for i, (path, leaf) in enumerate(leaves):
    name = getattr(path[-1], "key", str(path[-1]))
    if name == "kernel":
      kh, kw, cin, cout = leaf.shape
      std = np.sqrt(2.0) * np.sqrt(2.0 / (kh * kw * (cin + cout)))
      out.append(std * jax.random.normal(jax.random.fold_in(rng, i), leaf.shape, jnp.float32))
    else:
      out.append(jnp.zeros_like(leaf))
  return jax.tree_util.tree_unflatten(treedef, out)
