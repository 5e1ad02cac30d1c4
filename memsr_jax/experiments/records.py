"""The runner's files: JSON read back (a torn file is a user error naming it), JSON and text
written atomically, never with a non-finite number (JSON has none: they become null)."""
import json
import math
import os
import pathlib

import numpy as np

from memsr_jax import cli


class UsageError(cli.UserError):
  """A problem with the command or its inputs: one line on stderr, exit status 2."""


def read_json(path: pathlib.Path, default=None, what: str = ""):
  """The file's JSON, `default` when it does not exist; a torn or unreadable file is an error
  that names it and what to do."""
  if not path.is_file():
    return default
  try:
    return json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    hint = what or f"delete {path.name} to redo what it records"
    raise UsageError(f"{path} is damaged ({e.__class__.__name__}: {e}); {hint}") from None
  except OSError as e:
    raise UsageError(f"cannot read {path}: {e.strerror or e}") from None


def finite(obj):
  """obj with every non-finite float replaced by None (JSON cannot hold inf or NaN)."""
  if isinstance(obj, dict):
    return {k: finite(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [finite(v) for v in obj]
  if isinstance(obj, (float, np.floating)):
    return float(obj) if math.isfinite(obj) else None
  if isinstance(obj, np.integer):
    return int(obj)
  return obj


def write_text(path: pathlib.Path, text: str) -> None:
  """Atomically (a temporary file in the same folder, then rename)."""
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
  except OSError as e:
    raise UsageError(f"cannot write {path}: {e.strerror or e}; check that the workdir is "
                     "writable and has free space") from None


def write_json(path: pathlib.Path, obj) -> None:
  write_text(path, json.dumps(finite(obj), indent=1, allow_nan=False))
