"""Reading PyTorch .pth / Lightning .ckpt files without running code from them. torch is an optional
dependency, imported only when a file is read."""
import pathlib
import pickle
from typing import Any
import warnings

from memsr_jax.utils import optional


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


_KNOWN_FORMATS = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
                  (b"GIF8", "a GIF image"), (b"\x1f\x8b", "a gzip file"))


def _not_torch_format(path: str | pathlib.Path) -> str | None:
  """Why the file is not a PyTorch checkpoint at all, from its first bytes (torch.save writes a
  zip archive, older versions a pickle), or None when it could be one."""
  try:
    with open(path, "rb") as f:
      head = f.read(8)
  except OSError:
    return None
  if not head or head.startswith(b"PK\x03\x04") or head[0] == 0x80:  # zip, pickle protocol ≥ 2
    return None
  kind = next((name for magic, name in _KNOWN_FORMATS if head.startswith(magic)), None)
  return (f"it is {kind}, not a PyTorch checkpoint" if kind else
          f"it is not a PyTorch checkpoint (torch.save writes a zip archive; it starts with "
          f"{head!r})")


def why_unreadable(error: Exception, path: str | pathlib.Path | None = None) -> str:
  """Our own words for why `read_checkpoint` failed (on `path`, when given: its first bytes tell
  another format apart). torch's messages are not passed on: for a file that pickles other
  objects they advise loading it with weights_only=False, which would run code named by the
  file."""
  other = _not_torch_format(path) if path is not None else None
  if other:
    return other
  if isinstance(error, EOFError):
    return "the file is empty or cut short"
  if isinstance(error, pickle.UnpicklingError):
    return "it pickles objects other than tensors and plain containers"
  if isinstance(error, RuntimeError):  # torch's zip reader
    return "a damaged archive, or one torch.save did not write"
  return "not in torch.save's format"


def require_torch():
  """torch (optional); missing, it is one line saying what to install (optional.require)."""
  return optional.require("torch", "reading PyTorch .pth weights")
