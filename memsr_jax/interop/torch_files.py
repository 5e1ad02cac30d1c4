"""Reading PyTorch .pth / Lightning .ckpt files without running code from them. torch is an optional
dependency, imported only when a file is read."""
import pathlib
import pickle
from typing import Any
import warnings


class _Opaque(dict):
  """Stands in for a pickled object that is neither a tensor nor a plain container (a Lightning
  callback, an LR scheduler's bound method…): built without importing or running its class."""

  def __init__(self, *args, **kwargs):  # accepts whatever the pickle passes
    super().__init__()

  def __setstate__(self, state):
    self.pickled_state = state


def _restricted_pickle(torch):
  """A pickle module for torch.load that resolves only tensors, storages and plain containers;
  every other global becomes `_Opaque`, so no code named by the file ever runs."""
  allowed = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor"),
             ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
             ("torch._utils", "_rebuild_parameter_with_state"),
             ("torch._tensor", "_rebuild_from_type_v2"), ("torch", "Size"), ("torch", "Tensor"),
             ("torch", "device"), ("torch.nn.parameter", "Parameter")}

  class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
      if (module, name) in allowed:
        return super().find_class(module, name)
      if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
      return _Opaque

  def load(f, **kwargs):
    return Unpickler(f, **kwargs).load()

  return type("restricted_pickle", (), {"Unpickler": Unpickler, "load": staticmethod(load),
                                       "__name__": "restricted_pickle"})


def read_checkpoint(path: str | pathlib.Path) -> Any:
  """torch.load without running code from the file: weights_only first, and for checkpoints that
  pickle other objects beside the weights (PyTorch Lightning's callbacks and LR schedulers) a
  restricted unpickler that keeps tensors and containers and stubs out everything else."""
  torch = require_torch()
  try:
    return torch.load(str(path), map_location="cpu", weights_only=True)
  except pickle.UnpicklingError as first:
    try:
      with warnings.catch_warnings():  # torch warns about legacy pickles: noise for a user
        warnings.simplefilter("ignore")
        return torch.load(str(path), map_location="cpu", weights_only=False,
                          pickle_module=_restricted_pickle(torch))
    except Exception:  # any failure: report the weights_only error
      raise first from None


def why_unreadable(error: Exception) -> str:
  """Our own words for why `read_checkpoint` failed. torch's messages are not passed on: for a
  file that pickles other objects they advise loading it with weights_only=False, which would run
  code named by the file."""
  if isinstance(error, EOFError):
    return "the file is empty or cut short"
  if isinstance(error, pickle.UnpicklingError):
    return "it pickles objects other than tensors and plain containers"
  if isinstance(error, RuntimeError):  # torch's zip reader
    return "a damaged archive, or one torch.save did not write"
  return "not in torch.save's format"


def require_torch():
  try:
    import torch  # optional dependency (requirements-torch.txt)
  except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        "PyTorch is needed only to read .pth files; install the CPU build with "
        "`pip install -r requirements-torch.txt` (or `pip install torch`).") from e
  return torch
