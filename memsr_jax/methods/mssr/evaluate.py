"""PSNR of every nested level of a scalable model on validation sets (MSSR's training reports).

eval.py evaluates one level through the loader (`load_source(..., level=)`) and every level with
`config.sweep_levels` (memsr_jax/evaluation/level_sweep.py); this module serves the method's own
per-round reports. A row per level holds its stats (level, sparsity, non-zero params) and the PSNR
per set.
"""
from typing import Any, Callable, Sequence

import jax.numpy as jnp
import numpy as np

from memsr_jax import precision
from memsr_jax import predictor
from memsr_jax.evaluation import validation
from memsr_jax.image import metrics
from memsr_jax.models import levels

PyTree = Any


# --- during training: Y-PSNR per level on validation sets (one compiled program per shape) ---

def load_sets(names: Sequence[str], root: str, scale: int) -> dict[str, list]:
  return {n: validation.load_val_pairs(n, root, scale) for n in names}


def psnr_on_sets(apply_fn: Callable, params: PyTree, sets: dict[str, list], scale: int
                 ) -> dict[str, float]:
  """Mean Y-PSNR (protocol: clip, round, Y, crop `scale`) per set of `apply_fn(params, lr)`."""
  out = {}
  for name, pairs in sets.items():
    vals = []
    for _, lr, hr in pairs:
      with precision.exact():  # the protocol's numbers (a jitted apply_fn traces under it)
        sr = np.asarray(apply_fn(params, jnp.asarray(lr[None], jnp.float32)))[0]
      vals.append(metrics.psnr(metrics.to_uint8(sr), hr, crop=scale))
    out[name] = float(np.mean(vals))
  return out


def sweep_levels(model, params: PyTree, level_map: PyTree, sets: dict[str, list], scale: int,
                 which: Sequence[int] | None = None) -> list[dict]:
  """One row per level: level, sparsity, non-zero params and PSNR per set. The level is a traced
  argument, so every level runs the same compiled program."""
  forward = predictor.params_predictor(
      lambda p, k, x: model.apply({"params": levels.params_at_level(p, level_map, k)}, x))

  def evaluate_level(k):
    level = jnp.int32(k)
    apply = lambda p, x: forward(p, level, x)  # noqa: E731
    return {f"psnr_{n}": v for n, v in psnr_on_sets(apply, params, sets, scale).items()}
  return levels.level_rows(level_map, evaluate_level, which)


def format_level_table(rows: list[dict]) -> str:
  """Level, sparsity of the pruned set, sparsity of the whole network, non-zeros, PSNR per set."""
  sets = [k for k in rows[0] if k.startswith("psnr_")] if rows else []
  head = (f"{'level':>5} {'pruned-set':>10} {'network':>8} {'nonzero':>9} "
          + " ".join(f"{s[5:]:>8}" for s in sets))
  lines = [head]
  for r in rows:
    net = r.get("network_sparsity", float("nan"))
    lines.append(f"{r['level']:>5} {100 * r['sparsity']:9.2f}% {100 * net:7.2f}% "
                 f"{r['nonzero_params']:>9} " + " ".join(f"{r[s]:8.3f}" for s in sets))
  return "\n".join(lines)
