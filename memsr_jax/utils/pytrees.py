"""Pytree helpers shared by every subpackage: leaf names and sizes."""
from typing import Any

import jax
import numpy as np

PyTree = Any


def path_str(path) -> str:
  """'body_0/conv1/kernel' from a jax key path (dict keys, attributes and indices alike)."""
  parts = []
  for k in path:
    for attr in ("key", "name", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
    else:
      parts.append(str(k))
  return "/".join(parts)


def leaf_paths(tree: PyTree) -> list[str]:
  """'a/b/kernel' style names of the leaves, in tree_leaves order."""
  return [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def count_params(params: PyTree) -> int:
  """Number of scalars in a pytree (arrays or ShapeDtypeStructs)."""
  return int(sum(np.size(x) if not hasattr(x, "shape") else int(np.prod(x.shape))
                 for x in jax.tree_util.tree_leaves(params)))
