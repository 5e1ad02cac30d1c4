"""Nested pruning masks as pytrees: which weights are prunable, level maps and magnitude pruning.

A *level map* is an int8 pytree shaped like the params. For a prunable weight it holds the number of
pruning rounds the weight survived: 0 = pruned in round 1, ..., K = never pruned (K rounds in all).
Leaves that are never pruned (head, upsampler, tail, biases by default) hold `DENSE_LEVEL`. The mask
of level k is simply `level_map >= k`, so M_0 ⊇ M_1 ⊇ … ⊇ M_K holds by construction and one int8
tensor per leaf stores every size. Equivalently, the round in which a weight was pruned is
`level_map + 1` (K + 1 = never pruned).

Pruning runs on the host in NumPy: it happens once per round, needs an exact global sort, and must
break ties the same way on every machine (by position in the flattened, key-sorted pytree).
"""
import re
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.pytrees import leaf_paths
from memsr_jax.pytrees import path_str

PyTree = Any

# Body 3×3 kernels: every residual block's conv1/conv2 and the body conv after the blocks (the "body
# convs" of METHODS.md §3). Head, upsampler, tail and all biases stay dense.
DEFAULT_PRUNABLE = r"^body_(\d+/conv[12]|conv)/kernel$"
# The pruned set by name (config.mssr.prunable takes a name or a regex over leaf paths). "body" is
# METHODS.md §3's reading; in EDSR-baseline ×2 it holds 88.8 % of the parameters, so 94.5 % of the
# pruned set is 83.9 % of the whole network (level_stats reports both).
PRUNABLE_SETS = {
    "body": DEFAULT_PRUNABLE,  # residual-block convs + the body conv (kernels only)
    "kernels": r"(^|/)kernel$",  # every conv kernel: head, body, upsampler, tail
    "all": r".",  # every parameter, biases included
}
DENSE_LEVEL = 127  # level-map value of leaves that are never pruned (int8 max)
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
  """Pruned weights set to exactly 0 (`where`, so NaN/inf in pruned slots cannot leak)."""
  return jax.tree_util.tree_map(lambda p, m: jnp.where(m, p, jnp.zeros_like(p)), params, mask)


def params_at_level(params: PyTree, level_map: PyTree, level) -> PyTree:
  return apply_mask(params, mask_at_level(level_map, level))


def count_prunable(level_map: PyTree) -> int:
  return int(sum(np.asarray(l).size for l in jax.tree_util.tree_leaves(level_map)
                 if is_prunable_leaf(l)))


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
