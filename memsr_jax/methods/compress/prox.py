"""L1-proximal SGD (the prune stage's optimizer) and weight-density bookkeeping.

Minimizing loss(w) + λ‖w‖₁ by proximal gradient descent: a plain SGD step on the loss, then the
proximal operator of lr·λ‖·‖₁ (soft-thresholding), which sets small weights to exactly zero:

  z = w − lr·g;   w ← sign(z)·max(|z| − lr·λ, 0)

optax transformations return *updates* that the caller adds to the params, so the prox is expressed
as `updates = w_new − w`; adding them gives exactly w_new (0 stays exactly 0: w + (−w) == 0 in
IEEE).
Only the leaves selected by `prune_mask` are thresholded; the others take the plain SGD step.
The prune task brings it to the engine by name (`PRUNE_OPTIMIZER`, built by `optimizer_factory`).
"""
import re
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from memsr_jax.utils.pytrees import leaf_paths
from memsr_jax.utils.pytrees import path_str

PyTree = Any

# Default selection: every conv / dense kernel. Biases, norms, and SwinIR's relative position bias
# tables are excluded: they are few, and pruning them says nothing about channels/layers/blocks.
DEFAULT_INCLUDE = r"(^|/)kernel$"
DEFAULT_EXCLUDE = r"relative_position_bias_table"
PRUNE_OPTIMIZER = "sgd_l1_prox"  # its config.optim.name


def select_leaves(params: PyTree, include: str = DEFAULT_INCLUDE,
                  exclude: str | None = DEFAULT_EXCLUDE) -> PyTree:
  """A bool pytree like `params`: True where the leaf path matches `include` and not `exclude`.

  Patterns are Python regexes searched in paths like 'body_0/conv1/kernel'.
  """
  inc = re.compile(include)
  exc = re.compile(exclude) if exclude else None

  def pick(path, _):
    name = path_str(path)
    return bool(inc.search(name)) and not (exc is not None and exc.search(name))

  mask = jax.tree_util.tree_map_with_path(pick, params)
  if not any(jax.tree_util.tree_leaves(mask)):
    raise ValueError(f"prune selection include={include!r} exclude={exclude!r} matches no "
                     f"parameter; leaf names look like {leaf_paths(params)[:4]}")
  return mask


def soft_threshold(z: jnp.ndarray, threshold) -> jnp.ndarray:
  """Proximal operator of threshold·‖·‖₁."""
  return jnp.sign(z) * jnp.maximum(jnp.abs(z) - threshold, 0.0)


class ProxSGDState(NamedTuple):
  count: jnp.ndarray  # steps taken, for the learning-rate schedule


def sgd_l1_prox(learning_rate: float | optax.Schedule, l1: float = 1e-4,
                prune_mask: PyTree | Callable[[PyTree], PyTree] | None = None
                ) -> optax.GradientTransformationExtraArgs:
  """Plain SGD with an L1 proximal (soft-threshold) step on the selected leaves.

  Args:
    learning_rate: float or optax schedule (of the step count).
    l1: λ of the λ‖w‖₁ penalty; the per-step threshold is lr·λ.
    prune_mask: bool pytree like params (True = soft-threshold this leaf), a callable params → such
      a pytree, or None (every leaf).
  `update(grads, state, params)` needs `params` (the prox acts on the weights, not the gradient).
  """
  if l1 < 0:
    raise ValueError(f"l1 must be >= 0, got {l1}")

  def init_fn(params):
    del params
    return ProxSGDState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, **extra):
    del extra
    if params is None:
      raise ValueError("sgd_l1_prox needs params: call tx.update(grads, state, params)")
    lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
    if prune_mask is None:
      mask = jax.tree_util.tree_map(lambda _: True, params)
    elif callable(prune_mask):
      mask = prune_mask(params)
    else:
      mask = prune_mask

    def step(g, w, m):
      z = w - lr * g
      if isinstance(m, (bool, np.bool_)):  # static selection: no work for unpruned leaves
        w_new = soft_threshold(z, lr * l1) if m else z
      else:
        w_new = jnp.where(m, soft_threshold(z, lr * l1), z)
      return (w_new - w).astype(w.dtype)

    new_updates = jax.tree_util.tree_map(step, updates, params, mask)
    return new_updates, ProxSGDState(count=optax.safe_increment(state.count))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def optimizer_factory(optim_config, schedule) -> optax.GradientTransformationExtraArgs:
  """`config.optim.name = "sgd_l1_prox"`: l1, include, exclude from config.optim.extra."""
  extra = optim_config.extra
  l1 = float(extra.get("l1", 1e-4))
  include = extra.get("include", DEFAULT_INCLUDE)
  exclude = extra.get("exclude", DEFAULT_EXCLUDE)
  return sgd_l1_prox(schedule, l1, prune_mask=lambda p: select_leaves(p, include, exclude))


def densities(params: PyTree, mask: PyTree | None = None) -> dict[str, float]:
  """Fraction of non-zero entries per selected leaf ('path' → density), plus 'total'.

  'total' is over the selected leaves together (weighted by size). Host-side (NumPy).
  """
  flat, _ = jax.tree_util.tree_flatten_with_path(params)
  mflat = ([True] * len(flat) if mask is None else jax.tree_util.tree_leaves(mask))
  if len(mflat) != len(flat):
    raise ValueError("density mask does not match the params' structure")
  out, nnz, size = {}, 0, 0
  for (path, leaf), m in zip(flat, mflat):
    if not m:
      continue
    a = np.asarray(leaf)
    k = int(np.count_nonzero(a))
    out[path_str(path)] = k / max(a.size, 1)
    nnz += k
    size += a.size
  out["total"] = nnz / max(size, 1)
  return out
