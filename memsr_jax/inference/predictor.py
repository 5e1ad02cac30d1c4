"""Running a model on LR images for scoring: the one place evaluation, validation, the MSSR level
sweeps, the experiments and the parity tests get their forward pass from.

Every model predictor is jitted and traced under a precision policy (memsr_jax/utils/precision.py;
"highest", the default, gives the protocol's numbers on any backend): the policy is part of jit's
cache key, so it surrounds each call, not only the definition. The bicubic baseline is MATLAB's
imresize in float64 NumPy.
"""
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.image import bicubic
from memsr_jax.utils import numerics
from memsr_jax.utils import precision

PyTree = Any
PredictFn = Callable[[np.ndarray], np.ndarray]  # float32 NHWC LR (0..255) -> SR (0..255)


def jit_under_policy(fn: Callable, policy: str = "highest") -> Callable:
  """`jax.jit(fn)`, traced and run under `policy` (one compiled program per input shape)."""
  policy = precision.check_policy(policy)
  jitted = jax.jit(fn)

  def call(*args):
    with precision.context(policy):
      return jitted(*args)
  return call


def model_forward(model, params, policy: str = "highest",
                  what: Optional[str] = None) -> tuple[Callable, PyTree]:
  """(`forward(params, lr) -> sr` jitted under `policy`, `params` cast for it): the form the
  evaluator spreads over devices ("bfloat16" also computes in bf16; the output is float32).
  With `what`, an output holding NaN or Inf raises `numerics.NonFiniteOutputError` naming it
  (each call then waits for its result)."""
  dtype = precision.compute_dtype(policy)
  forward = jit_under_policy(
      lambda p, x: model.apply({"params": p}, x.astype(dtype)).astype(jnp.float32), policy)
  if what is not None:
    jitted = forward

    def forward(p, x):
      sr = jitted(p, x)
      numerics.check_finite_output(sr, what)
      return sr
  return forward, precision.cast_floating(params, dtype)


def model_predictor(model, params, policy: str = "highest",
                    what: str = "the model") -> PredictFn:
  """`lr -> sr` of `model` with `params` bound (`model_forward`); an output holding NaN or Inf
  raises `numerics.NonFiniteOutputError` naming `what`."""
  forward, params = model_forward(model, params, policy, what)
  return lambda lr: forward(params, lr)


def params_predictor(apply_fn: Callable, policy: str = "highest") -> Callable:
  """`(params, lr) -> sr` of `apply_fn(params, lr)`, jitted under `policy`: for params that change
  between calls (validation during training, one level after another) without recompiling."""
  return jit_under_policy(apply_fn, policy)


def bicubic_predictor(scale: int) -> PredictFn:
  """MATLAB imresize(LR, scale) in exact float64 (the protocol's bicubic baseline)."""
  def predict(lr: np.ndarray) -> np.ndarray:
    return np.stack([bicubic.imresize_np(x, scale=scale) for x in np.asarray(lr)])
  return predict
