"""Nested pruning masks as pytrees: which weights are prunable, level maps and magnitude pruning.

Reading level maps (a level's mask, params and size) is memsr_jax/models/levels.py, re-exported
here; this module makes them. A *level map* is an int8 pytree shaped like the params. For a
prunable weight it holds the number of pruning rounds the weight survived: 0 = pruned in round 1,
..., K = never pruned (K rounds in all). Leaves that are never pruned (head, upsampler, tail,
biases by default) hold `DENSE_LEVEL`. The mask of level k is simply `level_map >= k`, so
M_0 ⊇ M_1 ⊇ … ⊇ M_K holds by construction and one int8 tensor per leaf stores every size.
Equivalently, the round in which a weight was pruned is `level_map + 1` (K + 1 = never pruned).

Pruning runs on the host in NumPy: it happens once per round, needs an exact global sort, and must
break ties the same way on every machine (by position in the flattened, key-sorted pytree).
"""
import re
from typing import Any, Sequence

import jax
import numpy as np

from memsr_jax.models.levels import DENSE_LEVEL
from memsr_jax.models.levels import apply_mask as apply_mask
from memsr_jax.models.levels import check_level as check_level
from memsr_jax.models.levels import is_prunable_leaf
from memsr_jax.models.levels import level_for_sparsity as level_for_sparsity
from memsr_jax.models.levels import level_stats as level_stats
from memsr_jax.models.levels import mask_at_level as mask_at_level
from memsr_jax.models.levels import num_levels
from memsr_jax.models.levels import params_at_level as params_at_level
from memsr_jax.utils.pytrees import leaf_paths
from memsr_jax.utils.pytrees import path_str

PyTree = Any

# Body 3×3 kernels: every residual block's conv1/conv2 and the body conv after the blocks (the "body
# convs" of docs/MSSR.md). Head, upsampler, tail and all biases stay dense.
DEFAULT_PRUNABLE = r"^body_(\d+/conv[12]|conv)/kernel$"
# The pruned set by name (config.mssr.prunable takes a name or a regex over leaf paths). "body" is
# docs/MSSR.md's reading; in EDSR-baseline ×2 it holds 88.8 % of the parameters, so 94.5 % of the
# pruned set is 83.9 % of the whole network (level_stats reports both).
PRUNABLE_SETS = {
    "body": DEFAULT_PRUNABLE,  # residual-block convs + the body conv (kernels only)
    "kernels": r"(^|/)kernel$",  # every conv kernel: head, body, upsampler, tail
    "all": r".",  # every parameter, biases included
}
MAX_LEVELS = DENSE_LEVEL - 1


def prunable_pattern(name_or_regex: str) -> str:
  """The regex of a named pruned set (PRUNABLE_SETS), or the argument itself (a regex)."""
  return PRUNABLE_SETS.get(name_or_regex, name_or_regex)


def prunable_tree(params: PyTree, pattern: str = DEFAULT_PRUNABLE) -> PyTree:
  """Pytree of Python bools: True where the leaf's '/'-joined path matches `pattern` (a regex or
  a PRUNABLE_SETS name)."""
  regex = re.compile(prunable_pattern(pattern))
  flags = jax.tree_util.tree_map_with_path(lambda p, _: bool(regex.search(path_str(p))), params)
  if not any(jax.tree_util.tree_leaves(flags)):
    raise ValueError(f"prunable pattern {pattern!r} matches no parameter; paths are: "
                     f"{leaf_paths(params)}. Set config.mssr.prunable to a regex over these.")
  return flags


def init_level_map(params: PyTree, pattern: str = DEFAULT_PRUNABLE) -> PyTree:
  """Level map of the dense model: 0 on prunable leaves (none pruned yet), DENSE_LEVEL elsewhere."""
  flags = prunable_tree(params, pattern)
  return jax.tree_util.tree_map(
      lambda p, f: np.full(np.shape(p), 0 if f else DENSE_LEVEL, np.int8), params, flags)












def count_prunable(level_map: PyTree) -> int:
  return int(sum(np.asarray(l).size for l in jax.tree_util.tree_leaves(level_map)
                 if is_prunable_leaf(l)))




def sparsity_schedule(fraction: float | None = 0.2, rounds: int | None = 13,
                      sparsities: Sequence[float] | None = None) -> list[float]:
  """Target sparsity of levels 1..K: explicit `sparsities`, or 1 − (1 − fraction)^k (IMP)."""
  if sparsities:
    s = [float(x) for x in sparsities]
    if any(not 0.0 < x < 1.0 for x in s) or any(b <= a for a, b in zip(s, s[1:])):
      raise ValueError(f"sparsities must increase strictly within (0, 1), got {s}")
  else:
    if fraction is None or not 0.0 < fraction < 1.0:
      raise ValueError(f"prune fraction must be in (0, 1), got {fraction}")
    if rounds is None or rounds < 1:
      raise ValueError(f"rounds must be >= 1, got {rounds}")
    s = [1.0 - (1.0 - fraction) ** k for k in range(1, rounds + 1)]
  if len(s) > MAX_LEVELS:
    raise ValueError(f"at most {MAX_LEVELS} levels fit an int8 level map, got {len(s)}")
  return s


def keep_count(n_prunable: int, sparsity: float) -> int:
  """Exact number of prunable weights a level keeps: round-half-up of N·(1 − s)."""
  return int(np.floor(n_prunable * (1.0 - sparsity) + 0.5))


def prune_to_level(params: PyTree, level_map: PyTree, level: int, n_keep: int) -> PyTree:
  """Global magnitude pruning: level `level` keeps the `n_keep` largest |w| of level `level`−1.

  Only weights alive at level−1 compete; every prunable leaf competes in one global ranking. Ties
  are broken by position (flattened key-sorted pytree, C order): the earlier weight is kept. Returns
  the new level map (NumPy int8); `params` are read, not changed.
  """
  if level < 1 or level > MAX_LEVELS:
    raise ValueError(f"level must be in 1..{MAX_LEVELS}, got {level}")
  current = num_levels(level_map)
  if current != level - 1:
    raise ValueError(f"level map is at level {current}; can only prune to level {current + 1}, "
                     f"not {level}")
  lm_leaves, treedef = jax.tree_util.tree_flatten(level_map)
  p_leaves = treedef.flatten_up_to(params)
  prunable = [is_prunable_leaf(l) for l in lm_leaves]
  scores, alive_total = [], 0
  for l, p, f in zip(lm_leaves, p_leaves, prunable):
    if not f:
      continue
    l = np.asarray(l)
    p = np.asarray(p, np.float64)
    if p.shape != l.shape:
      raise ValueError(f"params leaf shape {p.shape} != level map leaf shape {l.shape}")
    alive = l >= level - 1
    alive_total += int(alive.sum())
    scores.append(np.where(alive, np.abs(p), -1.0).ravel())  # dead weights rank last
  if not 0 <= n_keep <= alive_total:
    raise ValueError(f"cannot keep {n_keep} weights: only {alive_total} are alive at level "
                     f"{level - 1}")
  flat = np.concatenate(scores)
  if not np.all(np.isfinite(flat)):
    raise ValueError("non-finite weights in the prunable set; cannot rank them by magnitude")
  order = np.argsort(-flat, kind="stable")  # descending |w|, ties by position
  keep = np.zeros(flat.size, bool)
  keep[order[:n_keep]] = True
  out, offset = [], 0
  for l, f in zip(lm_leaves, prunable):
    l = np.asarray(l)
    if not f:
      out.append(l)
      continue
    k = keep[offset:offset + l.size].reshape(l.shape)
    offset += l.size
    out.append(np.where(k, np.int8(level), l).astype(np.int8))
  return jax.tree_util.tree_unflatten(treedef, out)



