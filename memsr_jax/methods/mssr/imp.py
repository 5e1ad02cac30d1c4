"""Forward stage of MSSR: iterative magnitude pruning (IMP) with weight rewinding (pure functions).

Round k (1..K) takes the trained level-(k−1) params and level map, prunes to level k's exact keep
count, and restarts training from the *rewind state* (the params at an early step of dense training;
or the initial params for the "reset to init" ablation) restricted to the surviving weights. The
optimizer state is not carried over: the engine builds a fresh one for every round's stage.
"""
from typing import Any

import jax

from memsr_jax.methods.mssr import masks

PyTree = Any


def prune_round(trained: PyTree, level_map: PyTree, level: int, sparsity: float) -> PyTree:
  """Level map of `level`: keeps the largest |w| of the trained level-(level−1) network."""
  n_keep = masks.keep_count(masks.count_prunable(level_map), sparsity)
  return masks.prune_to_level(trained, level_map, level, n_keep)


def rewind(rewind_state: PyTree, level_map: PyTree, level: int) -> PyTree:
  """Start of round `level`: every param back to its rewind value, pruned weights exactly 0."""
  return masks.params_at_level(rewind_state, level_map, level)


def teacher(trained: PyTree, level_map: PyTree, level: int) -> PyTree:
  """The frozen level-`level` network used as the SSD teacher of the next round."""
  return jax.lax.stop_gradient(masks.params_at_level(trained, level_map, level))
