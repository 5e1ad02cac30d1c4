"""Optional dependencies: a missing one is one line saying what to install (exit status 2).

  torch = optional.require("torch", "importing PyTorch weights")

raises `MissingDependency` (a `cli.UserError`) naming the extra that brings the package in, instead
of an ImportError traceback. The extras are declared in pyproject.toml.
"""
import importlib
from types import ModuleType

from memsr_jax.utils.cli import UserError

_TORCH = ('pip install "memsr_jax[torch]" (from a clone: pip install -r '
          "requirements-torch.txt)")
_EXPORT = ('pip install "memsr_jax[export]" && pip install --no-deps jax2onnx==0.17.1 (from a '
           "clone: pip install -r requirements-export.txt && pip install --no-deps "
           "jax2onnx==0.17.1)")
# top-level module -> how to install it
INSTALL = {
    "torch": _TORCH,
    "onnx": _EXPORT,
    "onnx_ir": _EXPORT,
    "onnxruntime": _EXPORT,
    "jax2onnx": _EXPORT,
    "equinox": _EXPORT,
    "jaxtyping": _EXPORT,
    "dm_pix": _EXPORT,
    "einops": _EXPORT,
    "sympy": _EXPORT,
    "tensorflow_datasets": 'pip install "memsr_jax[tfds]"',
    "array_record": 'pip install "memsr_jax[tfds]"',
    "tensorboard": 'pip install "memsr_jax[tensorboard]"',
}


class MissingDependency(UserError):
  """An optional package is not installed (the message says how to install it)."""


def missing_message(module: str, purpose: str) -> str:
  top = module.split(".")[0]
  how = INSTALL.get(top, f"pip install {top}")
  return f"{purpose} needs the Python package {top!r}, which is not installed: {how}"


def require(module: str, purpose: str) -> ModuleType:
  """Imports `module`; a missing package (it or one it needs) is a MissingDependency."""
  try:
    return importlib.import_module(module)
  except ImportError as e:
    missing = e.name or module
    if missing.split(".")[0] not in INSTALL and module.split(".")[0] in INSTALL:
      missing = module  # a package the optional one needs: install the optional set again
    raise MissingDependency(missing_message(missing, purpose)) from None


def reraise_missing(error: ImportError, purpose: str) -> None:
  """For code that imported an optional package itself: turns its ImportError into the one line
  (when the missing module is an optional one); returns otherwise, so the caller re-raises."""
  name = (error.name or "").split(".")[0]
  if name in INSTALL:
    raise MissingDependency(missing_message(name, purpose)) from None
