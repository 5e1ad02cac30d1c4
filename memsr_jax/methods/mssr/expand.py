"""Backward stage of MSSR: grow the smallest network back, one level at a time.

Start from the sparsest level K (its forward-stage weights). For k = K−1, …, 0, the weights pruned
when going from level k to k+1 (level map == k: the pruning-out set P_{k+1} = M_k \\ M_{k+1}) are
re-enabled — at zero, or with their values from the forward-stage level-k network — and
fine-tuned; *everything else* — the smaller network and the dense head/upsampler/tail/biases it
shares — stays frozen bit for bit. The result is one weight tensor in which every level is a
sub-network of every larger one.
"""
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.utils import pytrees

PyTree = Any


def restored_mask(level_map: PyTree, level: int) -> PyTree:
  """Trainable set while expanding to `level`: prunable weights whose level-map value is `level`."""
  return jax.tree_util.tree_map(lambda l: l == level, level_map)


def start_expand(merged: PyTree, level_params: PyTree, level_map: PyTree, level: int) -> PyTree:
  """Merged params with the weights of P_{level+1} taken from `level_params` (e.g. the
  forward-stage level network, or zeros)."""
  return jax.tree_util.tree_map(lambda m, p, l: jnp.where(l == level, p, m),
                                merged, level_params, level_map)


def frozen_changes(before: PyTree, after: PyTree, trainable: PyTree) -> dict[str, int]:
  """Per leaf: how many frozen entries differ bit for bit (empty dict = all frozen ones exact)."""
  out = {}
  flat_b = jax.tree_util.tree_flatten_with_path(before)[0]
  flat_a = jax.tree_util.tree_leaves(after)
  flat_t = jax.tree_util.tree_leaves(trainable)
  for (path, b), a, t in zip(flat_b, flat_a, flat_t):
    b, a, t = np.asarray(b), np.asarray(a), np.asarray(t)
    diff = (b.view(np.uint8 if b.dtype.itemsize == 1 else f"u{b.dtype.itemsize}")
            != a.view(np.uint8 if a.dtype.itemsize == 1 else f"u{a.dtype.itemsize}"))
    n = int((diff & ~t).sum())
    if n:
      out[pytrees.path_str(path)] = n
  return out
