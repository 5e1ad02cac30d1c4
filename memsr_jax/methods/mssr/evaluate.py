"""PSNR of every level of a scalable model (or of per-level models) on benchmark sets."""
from typing import Any, Callable, Sequence

import jax.numpy as jnp
import numpy as np

from memsr_jax import precision
from memsr_jax.methods.mssr import masks

PyTree = Any


def load_sets(names: Sequence[str], root: str, scale: int) -> dict[str, list]:
  from memsr_jax.train import validation
  return {n: validation.load_val_pairs(n, root, scale) for n in names}


def psnr_on_sets(apply_fn: Callable, params: PyTree, sets: dict[str, list], scale: int
                 ) -> dict[str, float]:
  """Mean Y-PSNR (protocol: clip, round, Y, crop `scale`) per set of `apply_fn(params, lr)`."""
  from memsr_jax.image import metrics
  out = {}
  for name, pairs in sets.items():
    vals = []
    for _, lr, hr in pairs:
      with precision.exact():  # the protocol's numbers
        sr = np.asarray(apply_fn(params, jnp.asarray(lr[None], jnp.float32)))[0]
      vals.append(metrics.psnr(metrics.to_uint8(sr), hr, crop=scale))
    out[name] = float(np.mean(vals))
  return out


def sweep_levels(model, params: PyTree, level_map: PyTree, sets: dict[str, list], scale: int,
                 levels: Sequence[int] | None = None) -> list[dict]:
  """One row per level: level, sparsity, non-zero params and PSNR per set (one jitted program)."""
  from memsr_jax.methods.mssr.scalable import _apply_at_level  # one compiled program per shape
  stats = masks.level_stats(level_map)
  rows = []
  for k in (range(len(stats)) if levels is None else levels):
    res = psnr_on_sets(lambda p, x: _apply_at_level(model, p, level_map, k, x), params, sets,
                       scale)
    rows.append({**stats[k], **{f"psnr_{n}": v for n, v in res.items()}})
  return rows


def format_table(rows: list[dict]) -> str:
  sets = [k for k in rows[0] if k.startswith("psnr_")] if rows else []
  head = f"{'level':>5} {'sparsity':>8} {'nonzero':>9} " + " ".join(f"{s[5:]:>8}" for s in sets)
  lines = [head]
  for r in rows:
    lines.append(f"{r['level']:>5} {100 * r['sparsity']:7.2f}% {r['nonzero_params']:>9} "
                 + " ".join(f"{r[s]:8.3f}" for s in sets))
  return "\n".join(lines)
