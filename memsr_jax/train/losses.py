"""Pixel losses used by the papers (on the 0..255 scale, mean over all elements)."""
from typing import Callable

import jax.numpy as jnp

from memsr_jax.utils import cli


def l1(pred, target):
  return jnp.mean(jnp.abs(pred - target))


def mse(pred, target):
  return jnp.mean(jnp.square(pred - target))


def charbonnier(pred, target, eps: float = 1e-3):
  """sqrt((x - y)² + eps²), as BasicSR's CharbonnierLoss (eps on the data's scale)."""
  return jnp.mean(jnp.sqrt(jnp.square(pred - target) + eps * eps))


def get_pixel_loss(name: str, charbonnier_eps: float = 1e-3) -> Callable:
  """The loss named by config.loss.name: "l1", "charbonnier" or "mse"."""
  if name == "l1":
    return l1
  if name == "mse":
    return mse
  if name == "charbonnier":
    return lambda p, t: charbonnier(p, t, charbonnier_eps)
  raise cli.UsageError(f"unknown loss {name!r}; expected 'l1', 'charbonnier' or 'mse'")
