"""Checks of model hyperparameter values (`--set n_feats=…`, `--config.model.kwargs.…`).

A value must have the kind of the preset's default (an integer where the default is one, a
sequence of them where it is a tuple, …) and lie in its range, so `n_feats=abc` or `n_feats=-3`
is one clear error before any model is built, not a traceback from deep inside Flax.
"""
import math
import numbers
from typing import Any

import numpy as np

from memsr_jax.utils import cli

# Counts that may be zero (a net with no residual blocks still runs); other integers are >= 1.
MAY_BE_ZERO = frozenset({"n_resblocks", "n_blocks"})
# String hyperparameters with a fixed set of values.
CHOICES = {
    "tail": ("upsampler", "conv1x1"),
    "body_bias": ("vector", "map"),
    "bias_mode": ("vector", "map"),
    "upsampler": ("pixelshuffle", "pixelshuffledirect"),
}
# Ranges beyond "finite": (accepts(value), what it should be).
FLOAT_RANGES = {
    "mlp_ratio": (lambda v: v > 0, "a number > 0"),
    "img_range": (lambda v: v > 0, "a number > 0"),
    "distill_rate": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "drop_path_rate": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
}


def _is_int(v) -> bool:  # numpy integers too (widths computed by the compression stages)
  return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_number(v) -> bool:
  return (isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
          and math.isfinite(v))


def _int_problem(key: str, v) -> str | None:
  low = 0 if key in MAY_BE_ZERO else 1
  if not _is_int(v) or v < low:
    return f"an integer >= {low}"
  return None


def _float_problem(key: str, v) -> str | None:
  if not _is_number(v):
    return "a finite number"
  accepts, what = FLOAT_RANGES.get(key, (lambda v: True, ""))
  return None if accepts(v) else what


def _sequence_problem(key: str, v, default: tuple) -> str | None:
  if not isinstance(v, (list, tuple)) or not v:
    return "a non-empty list, e.g. [4, 4, 4]"
  sample = default[0] if default else None
  if isinstance(sample, bool):
    return None if all(isinstance(x, (bool, np.bool_)) for x in v) else "a list of true/false"
  if _is_int(sample):
    return None if all(_is_int(x) and x >= 1 for x in v) else "a list of integers >= 1"
  if isinstance(sample, float):
    return None if all(_is_number(x) for x in v) else "a list of finite numbers"
  return None


def value_problem(key: str, value: Any, default: Any) -> str | None:
  """What `value` should be for a hyperparameter whose default is `default`; None if it fits."""
  if key in CHOICES:
    return None if value in CHOICES[key] else f"one of {', '.join(CHOICES[key])}"
  if isinstance(default, bool):
    return None if isinstance(value, (bool, np.bool_)) else "true or false"
  if _is_int(default):
    return _int_problem(key, value)
  if isinstance(default, float):
    return _float_problem(key, value)
  if isinstance(default, tuple):
    if value is None and key == "relu":
      return None
    return _sequence_problem(key, value, default)
  if default is None and key == "relu" and value is not None:
    return _sequence_problem(key, value, (True,))
  if isinstance(default, str):
    return None if isinstance(value, str) else "a string"
  return None


def check_values(model: str, overrides: dict, defaults: dict) -> None:
  """ValueError naming every override whose value does not fit its hyperparameter."""
  bad = []
  for key, value in overrides.items():
    want = value_problem(key, value, defaults.get(key))
    if want:
      bad.append(f"{key}={value!r} (expected {want})")
  if bad:
    raise cli.UsageError(f"model {model!r}: bad hyperparameter value(s): {'; '.join(bad)}")
