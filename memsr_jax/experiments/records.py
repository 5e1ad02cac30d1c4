"""The runner's files: JSON read back (a torn file is a user error naming it), JSON and text
written atomically through the project's one writer (`jsonio.write_json`, `safe_io`); JSON never
holds a non-finite number (they become null)."""
import json
import pathlib

from memsr_jax.utils import cli
from memsr_jax.utils import jsonio
from memsr_jax.utils import safe_io


def read_json(path: pathlib.Path, default=None, what: str = ""):
  """The file's JSON, `default` when it does not exist; a torn or unreadable file is an error
  that names it and what to do."""
  if not path.is_file():
    return default
  try:
    return json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    hint = what or f"delete {path.name} to redo what it records"
    raise cli.UsageError(f"{path} is damaged ({e.__class__.__name__}: {e}); {hint}") from None
  except OSError as e:
    raise cli.UsageError(f"cannot read {path}: {e.strerror or e}") from None


def _writing(path: pathlib.Path, write) -> None:
  try:
    write()
  except OSError as e:
    raise cli.UsageError(f"cannot write {path}: {e.strerror or e}; check that the workdir is "
                         "writable and has free space") from None


def write_text(path: pathlib.Path, text: str) -> None:
  """Atomically (safe_io: a temporary file in the same folder, then rename)."""
  def write():
    path.parent.mkdir(parents=True, exist_ok=True)
    safe_io.atomic_write_text(path, text)
  _writing(path, write)


def write_record(path: pathlib.Path, obj) -> None:
  """jsonio.write_json, its OSError as one line naming the workdir."""
  _writing(path, lambda: jsonio.write_json(path, obj))
