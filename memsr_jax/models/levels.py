"""Nested sizes of one network: level maps and the params of one level.

A *level map* is an int8 pytree shaped like the params. For a prunable weight it holds the number of
pruning rounds the weight survived: 0 = pruned in round 1, ..., K = never pruned (K rounds in all).
Leaves that are never pruned hold `DENSE_LEVEL`. The mask of level k is `level_map >= k`, so
M_0 ⊇ M_1 ⊇ … ⊇ M_K holds by construction and one int8 tensor per leaf stores every size.

This module only reads level maps (choose a level, mask the params, report a level's size); how a
map is made is the business of the method that prunes (memsr_jax/methods/mssr/masks.py). A model
checkpoint stores its map as the extra item `LEVEL_MAP_ITEM`.
"""
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any

DENSE_LEVEL = 127  # level-map value of leaves that are never pruned (int8 max)
LEVEL_MAP_ITEM = "level_map"  # the model-checkpoint item holding the level map


def is_prunable_leaf(level_leaf) -> bool:
  """A level-map leaf is prunable unless every entry is DENSE_LEVEL."""
  return bool(np.any(np.asarray(level_leaf) != DENSE_LEVEL))


def num_levels(level_map: PyTree) -> int:
  """K: the deepest level any prunable weight reaches (0 for a dense, never-pruned map)."""
  leaves = [np.asarray(l) for l in jax.tree_util.tree_leaves(level_map) if is_prunable_leaf(l)]
  if not leaves:
    return 0
  return int(max(l[l != DENSE_LEVEL].max() for l in leaves))


def mask_at_level(level_map: PyTree, level) -> PyTree:
  """Bool mask pytree of level `level` (0 = dense). Pure; `level` may be a traced scalar."""
  return jax.tree_util.tree_map(lambda l: l >= level, level_map)


def apply_mask(params: PyTree, mask: PyTree) -> PyTree:
  """Pruned weights set to exactly 0 (`where`, so NaN/inf in pruned positions cannot leak)."""
  return jax.tree_util.tree_map(lambda p, m: jnp.where(m, p, jnp.zeros_like(p)), params, mask)


def params_at_level(params: PyTree, level_map: PyTree, level) -> PyTree:
  return apply_mask(params, mask_at_level(level_map, level))


def level_stats(level_map: PyTree) -> list[dict]:
  """Per level: kept prunable weights and both sparsities.

  `sparsity` is over the pruned set (what the schedule targets: 1 − (1−p)^k);
  `network_sparsity` is over every parameter, 1 − nonzero_params / total_params. `nonzero_params`
  counts every parameter of the level's network that is not pruned (dense leaves included), i.e.
  what a sparse deployment stores.
  """
  leaves = [np.asarray(l) for l in jax.tree_util.tree_leaves(level_map)]
  n_prunable = sum(l.size for l in leaves if is_prunable_leaf(l))
  n_dense = sum(l.size for l in leaves if not is_prunable_leaf(l))
  total = n_prunable + n_dense
  out = []
  for k in range(num_levels(level_map) + 1):
    kept = sum(int((l >= k).sum()) for l in leaves if is_prunable_leaf(l))
    out.append({"level": k, "kept": kept, "prunable": n_prunable,
                "sparsity": 1.0 - kept / max(n_prunable, 1),
                "nonzero_params": kept + n_dense, "total_params": total,
                "network_sparsity": 1.0 - (kept + n_dense) / max(total, 1)})
  return out


def level_for_sparsity(level_map: PyTree, sparsity: float) -> int:
  """The level whose sparsity is closest to `sparsity` (ties: the denser level)."""
  if not 0.0 <= sparsity < 1.0:
    raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
  stats = level_stats(level_map)
  return min(stats, key=lambda s: (abs(s["sparsity"] - sparsity), s["level"]))["level"]


def check_level(level_map: PyTree, level: int) -> int:
  k = num_levels(level_map)
  if not 0 <= int(level) <= k:
    raise ValueError(f"level {level} does not exist: this checkpoint has levels 0..{k} "
                     f"(0 = dense, {k} = sparsest)")
  return int(level)


def select_level(level_map: PyTree, level: int | None = None,
                 sparsity: float | None = None) -> int | None:
  """The level asked for by number or by nearest sparsity (None/negative: neither, the full
  network). Both at once is a ValueError."""
  level = None if level is None or level < 0 else int(level)
  sparsity = None if sparsity is None or sparsity < 0 else float(sparsity)
  if level is not None and sparsity is not None:
    raise ValueError(f"level={level} and sparsity={sparsity} are both set; give one of them")
  if sparsity is not None:
    level = level_for_sparsity(level_map, sparsity)
  return None if level is None else check_level(level_map, level)


def level_rows(level_map: PyTree, evaluate_level, which=None) -> list[dict]:
  """[{level, sparsity, nonzero_params, …, **evaluate_level(level)}] for the levels `which`
  (default: every level), one row per level."""
  stats = level_stats(level_map)
  return [{**stats[k], **evaluate_level(k)}
          for k in (range(len(stats)) if which is None else which)]
