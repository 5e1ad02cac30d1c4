"""Rounding-error bounds for float32 network evaluations, used wherever two computations that are
mathematically equal are compared (tiled vs whole image, plain vs residual, ported vs original).

A dot product of length n computed in floating point, in any summation order, differs from the
exact value by at most γ_n·Σ|aᵢbᵢ| with γ_n ≈ n·u (u = 2⁻²⁴ for float32; Higham, Accuracy and
Stability of Numerical Algorithms, §3.1). Through a network of convs, biases, skips and ReLUs the
first-order bound at each output element is

    |fl(f(x)) − f(x)| ≤ u · K · F(x),   F = the same network with |weights| on non-negative inputs,

where K counts the roundings on the longest chain (Σ of the conv fan-ins + one per bias/skip add).
F is monotone and dominates every intermediate |activation|, so an error made at any layer and
carried through the later (linear, |·|-bounded) layers stays under u·(that layer's n)·F. The bound
is worst-case, so it holds for every backend's summation order; it is still orders of magnitude
below the errors of a real mistake (a halo one pixel short, a dropped bias), which tests check.

`check_finite_output` is the one rule every command applies to a model's output: NaN or Inf is an
error (`NonFiniteOutputError`, a user error: the weights are broken), never a number or a picture.
"""
import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.utils.cli import UserError

UNIT_ROUNDOFF_F32 = 2.0 ** -24


class NonFiniteOutputError(UserError):
  """A model's output holds NaN or Inf: its weights are broken (e.g. a diverged training run)."""


def check_finite_output(out, what: str = "the model") -> None:
  """Raises NonFiniteOutputError when `out` (a model's output) holds NaN or Inf."""
  out = np.asarray(out)
  finite = np.isfinite(out)
  if finite.all():
    return
  kind = "NaN" if np.isnan(out).any() else "Inf"
  raise NonFiniteOutputError(
      f"{what} outputs {kind} ({out.size - int(finite.sum())} of {out.size} values): its weights "
      "are broken (a diverged training run?); use an earlier checkpoint or retrain with a lower "
      "learning rate")


def unit_roundoff(dtype) -> float:
  """u = eps / 2: 2⁻²⁴ for float32, 2⁻⁵³ for float64, 2⁻⁸ for bfloat16."""
  return float(jnp.finfo(dtype).eps) / 2.0


def rounding_steps(params) -> int:
  """K: Σ over kernels (and bias maps) of their fan-in (kh·kw·cin) + one add per vector leaf + a few
  constant adds (mean shift in and out); counts every layer as if it lay on one chain (an upper
  bound)."""
  k = 4
  for leaf in jax.tree_util.tree_leaves(params):
    shape = np.shape(leaf)
    if len(shape) >= 2:  # conv/dense kernels and bias maps (a 3×3 conv of a ones image)
      k += int(np.prod(shape[:-1]))
    else:
      k += 1
  return k


def magnitude_model(model):
  """The model whose output bounds every |intermediate| of `model` when run with |params|.

  Models that subtract a mean at the head and add it back at the tail get the mean's sign flipped,
  so the head sees x + mean ≥ |x − mean| (inputs are 0..255) — see `magnitude_bound`.
  """
  mean = getattr(model, "rgb_mean", None)
  if mean is None or not getattr(model, "sub_mean", True):
    return model
  return model.clone(rgb_mean=tuple(-float(m) for m in mean))


def magnitude_bound(model, params, x, apply_fn=None) -> np.ndarray:
  """F(x) ≥ |every term summed into each output element| (float64 NumPy).

  `apply_fn(model, params, x)` defaults to `model.apply({"params": params}, x)`; pass another
  forward (e.g. a tiled one) to bound that computation instead. Valid for networks built from
  convs/dots, bias and skip additions, positive scalings, ReLU and pixel shuffle.
  """
  apply_fn = apply_fn or (lambda m, p, v: m.apply({"params": p}, v))
  mag = magnitude_model(model)
  abs_params = jax.tree_util.tree_map(lambda a: jnp.abs(jnp.asarray(a, jnp.float32)), params)
  with jax.default_matmul_precision("highest"):
    out = np.asarray(apply_fn(mag, abs_params, jnp.abs(jnp.asarray(x, jnp.float32))), np.float64)
  mean = getattr(model, "rgb_mean", None)
  if mean is not None and getattr(model, "sub_mean", True):
    out = out + 2.0 * np.asarray(mean, np.float64)  # undo −mean at the tail, then + |mean|
  return out


def rounding_tolerance(model, params, x, dtype=jnp.float32, n_computations: int = 2,
                       apply_fn=None) -> np.ndarray:
  """Elementwise bound on |a − b| for `n_computations` evaluations of `model` on `x` in `dtype`
  that are equal in exact arithmetic (2: two such computations compared with each other; 1: one
  compared with an exact or much more precise reference)."""
  k = rounding_steps(params)
  return n_computations * unit_roundoff(dtype) * k * magnitude_bound(model, params, x, apply_fn)


def assert_within_bound(actual, desired, tol, what: str = "") -> float:
  """Asserts |actual − desired| ≤ tol elementwise; returns the largest |diff|/tol (≤ 1) so a test
  can report how much headroom it has."""
  actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
  tol = np.broadcast_to(np.asarray(tol, np.float64), desired.shape)
  ratio = np.abs(actual - desired) / np.maximum(tol, np.finfo(np.float64).tiny)
  worst = float(ratio.max()) if ratio.size else 0.0
  if worst > 1.0:
    i = np.unravel_index(int(ratio.argmax()), ratio.shape)
    raise AssertionError(
        f"{what or 'values'} differ beyond the rounding bound: at {i} |diff| = "
        f"{abs(actual[i] - desired[i]):.3g} > bound {tol[i]:.3g} "
        f"({int((ratio > 1).sum())} of {ratio.size} elements over)")
  return worst
