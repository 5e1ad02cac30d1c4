"""Stochastic self-distillation (SSD) between two levels of the same EDSR-family network.

While level k trains, a depth d is drawn at random; the *hybrid* network runs the level-k (student)
head and residual blocks 0..d−1, then the frozen level-(k−1) (teacher) blocks d..N−1, body conv and
tail. Its output is compared with a target (the HR image, or the teacher's own full output), so the
student's first d blocks learn features the larger network can continue from — the nesting the
backward stage later relies on.

The hybrid is built by choosing, per block, which params to use (`jnp.where` on a traced depth), so
one jitted graph covers every depth at the cost of one forward pass; gradients reach only the
student blocks that were used. This equals `encode` + `run_blocks(0, d)` with the student and
`run_blocks(d, N)` + `decode` with the teacher.
"""
import re
from typing import Any, Sequence

import jax
import jax.numpy as jnp

PyTree = Any
_BLOCK = re.compile(r"^body_(\d+)$")


def n_blocks(params: PyTree) -> int:
  idx = [int(m.group(1)) for k in params for m in [_BLOCK.match(str(k))] if m]
  if not idx:
    raise ValueError("self-distillation needs an EDSR-family param tree with body_0..body_{N-1} "
                     f"blocks; got top-level keys {sorted(params)}")
  return max(idx) + 1


def depth_choices(num_blocks: int, depths: Sequence[int] | None = None) -> tuple[int, ...]:
  """The depths SSD samples from. Default: 1..N−1, so both networks contribute to every hybrid."""
  if depths:
    out = tuple(int(d) for d in depths)
  else:
    out = tuple(range(1, num_blocks))
  if not out or any(not 0 <= d <= num_blocks for d in out):
    raise ValueError(f"SSD depths must lie in 0..{num_blocks} (the block count); got {out}")
  return out


def sample_depth(rng, choices: Sequence[int]) -> jax.Array:
  """A uniformly drawn depth from `choices` (traced int32)."""
  table = jnp.asarray(choices, jnp.int32)
  return table[jax.random.randint(rng, (), 0, len(choices))]


def hybrid_params(student: PyTree, teacher: PyTree, depth) -> PyTree:
  """Params of the hybrid: student head and blocks < depth, teacher everything after."""
  out = {}
  for key in teacher:
    m = _BLOCK.match(str(key))
    if key == "head":
      out[key] = student[key]
    elif m:
      use_student = int(m.group(1)) < depth
      # tree_map calls the lambda at once, so the loop variable is the current one.
      out[key] = jax.tree_util.tree_map(lambda s, t: jnp.where(use_student, s, t),  # noqa: B023
                                        student[key], teacher[key])
    else:
      out[key] = teacher[key]
  return out


def ssd_loss(model, student: PyTree, teacher: PyTree, lr, hr, rng, choices: Sequence[int],
             target: str = "hr") -> tuple[jax.Array, jax.Array]:
  """(L1 between the hybrid's output and the target, sampled depth).

  target: "hr" — the ground truth (gradients pass through the frozen teacher tail into the student
  blocks); "teacher" — the teacher's full output (a pure distillation signal, no HR needed).
  """
  depth = sample_depth(rng, choices)
  teacher = jax.lax.stop_gradient(teacher)
  out = model.apply({"params": hybrid_params(student, teacher, depth)}, lr)
  if target == "hr":
    ref = hr
  elif target == "teacher":
    ref = jax.lax.stop_gradient(model.apply({"params": teacher}, lr))
  else:
    raise ValueError(f"SSD target must be 'hr' or 'teacher', got {target!r}")
  return jnp.mean(jnp.abs(out.astype(jnp.float32) - ref.astype(jnp.float32))), depth
