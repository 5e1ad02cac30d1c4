"""Does a saved tree fit the tree it is restored into? A mismatch names the first leaves."""
from typing import Any

import jax
import numpy as np

from memsr_jax.checkpoints.errors import CheckpointMismatchError
from memsr_jax.utils import pytrees

PyTree = Any


def _leaf_shapes(tree) -> dict[str, tuple[tuple, str]]:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {pytrees.path_str(path): (tuple(leaf.shape), str(np.dtype(leaf.dtype)))
          for path, leaf in flat}


def _more(items: list) -> str:
  return f"{items[:5]}" + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")


def check_tree_matches(item: str, saved_meta: PyTree, target: PyTree, where: str) -> None:
  """Raises CheckpointMismatchError naming the first leaves whose path/shape/dtype differ."""
  saved = _leaf_shapes(saved_meta)
  want = _leaf_shapes(target)
  missing = sorted(set(want) - set(saved))
  extra = sorted(set(saved) - set(want))
  problems = []
  if missing:
    problems.append(f"leaves missing from the checkpoint: {_more(missing)}")
  if extra:
    problems.append(f"leaves in the checkpoint the model does not have: {_more(extra)}")
  # Params first: a leaf of the network says more than its Adam moment does.
  for k in sorted(set(saved) & set(want), key=lambda k: ("params" not in k.split("/")[:1], k)):
    (ss, sd), (ws, wd) = saved[k], want[k]
    if ss != ws:
      problems.append(f"leaf {item}/{k} has shape {ss} in the checkpoint but {ws} in the model")
    elif sd != wd:
      problems.append(f"leaf {item}/{k} has dtype {sd} in the checkpoint but {wd} in the model")
    if len(problems) >= 5:
      break
  if problems:
    raise CheckpointMismatchError(
        f"checkpoint {where} does not match (different architecture or config?): "
        + "; ".join(problems))
