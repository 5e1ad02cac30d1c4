"""PSNR of every nested level of a scalable model on validation sets (MSSR's training reports).

eval.py evaluates one level through the loader (`load_source(..., level=)`) and every level with
`config.sweep_levels` (memsr_jax/evaluation/level_sweep.py); this module serves the method's own
per-round reports. A row per level holds its stats (level, sparsity, non-zero params) and the PSNR
per set.
"""
from typing import Any, Sequence

import jax.numpy as jnp

from memsr_jax.evaluation import evaluator
from memsr_jax.evaluation import validation
from memsr_jax.inference import predictor
from memsr_jax.models import levels

PyTree = Any


def load_sets(names: Sequence[str], root: str, scale: int) -> dict[str, list]:
  return {n: validation.load_val_pairs(n, root, scale) for n in names}


def sweep_levels(model, params: PyTree, level_map: PyTree, sets: dict[str, list], scale: int,
                 which: Sequence[int] | None = None) -> list[dict]:
  """One row per level: level, sparsity, non-zero params and the Y-PSNR per set (the evaluator's
  `psnr_<set>` rows). The level is a traced argument, so every level runs the same compiled
  program."""
  forward = predictor.params_predictor(
      lambda pk, x: model.apply({"params": levels.params_at_level(pk[0], level_map, pk[1])}, x))
  evaluators = {n: evaluator.Evaluator(pairs, scale) for n, pairs in sets.items()}

  def evaluate_level(k):
    row = {}
    for n, ev in evaluators.items():
      [(_, value)] = ev.run(forward, (params, jnp.int32(k)))
      row[f"psnr_{n}"] = value
    return row
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
