"""JSON files: one converter for metadata to JSON types and one atomic writer.

`to_jsonable` turns NumPy scalars and arrays, tuples, ConfigDicts and bytes into JSON types (bytes
as {"__bytes__": base64}, undone by `from_jsonable`); anything else becomes its repr, so metadata
never fails to save. Non-finite numbers (a PSNR of inf for identical images, NaN) become null:
JSON has no Infinity or NaN, and readers other than Python's reject them. `write_json` writes
through a temporary file and a rename (`safe_io.atomic_write_text`): an interrupted write never
leaves a truncated file that a rerun would take for a finished result.
"""
import base64
import json
import math
import pathlib

import numpy as np

from memsr_jax.utils import safe_io


def to_jsonable(x):
  """Best-effort conversion of metadata (NumPy scalars, tuples, ConfigDicts) to JSON types."""
  if hasattr(x, "to_dict"):
    x = x.to_dict()
  if isinstance(x, dict):
    return {str(k): to_jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [to_jsonable(v) for v in x]
  if isinstance(x, (np.generic, np.ndarray)):
    return to_jsonable(x.tolist())
  if isinstance(x, bytes):
    return {"__bytes__": base64.b64encode(x).decode("ascii")}
  if isinstance(x, float) and not math.isfinite(x):
    return None
  if x is None or isinstance(x, (bool, int, float, str)):
    return x
  return repr(x)


def from_jsonable(x):
  """Undoes the bytes encoding of `to_jsonable` (data iterator states may be bytes)."""
  if isinstance(x, dict):
    if set(x) == {"__bytes__"}:
      return base64.b64decode(x["__bytes__"])
    return {k: from_jsonable(v) for k, v in x.items()}
  if isinstance(x, list):
    return [from_jsonable(v) for v in x]
  return x


def dumps(obj, indent: int | None = 1) -> str:
  """Strict JSON of `obj` (through `to_jsonable`: no Infinity or NaN)."""
  return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def write_json(path: str | pathlib.Path, obj, indent: int | None = 1) -> pathlib.Path:
  """Writes `obj` (through `to_jsonable`) to `path` atomically, creating its folder."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  safe_io.atomic_write_text(path, dumps(obj, indent))
  return path


def read_json(path: str | pathlib.Path, default=None):
  """The JSON in `path`, or `default` when there is no such file."""
  path = pathlib.Path(path)
  return json.loads(path.read_text()) if path.is_file() else default
