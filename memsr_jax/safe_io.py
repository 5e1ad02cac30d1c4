"""Writes that never lose data: output-location checks before any computing, atomic files.

- `check_output_dir`: a folder we may write into (not a file, writable; optionally empty);
- `partial_path` / `atomic_write_text`: data goes to a hidden temporary name beside the target and
  is renamed over it when complete, so a kill mid-write never leaves a half file under the final
  name (a leftover `.<name>.partial-<pid>` is safe to delete);
- `same_file`: whether two paths are one file (an input must never be opened for writing).
"""
import os
import pathlib
import tempfile

from memsr_jax.cli import UserError


def check_output_dir(path, flag: str, *, must_be_empty: bool = False, empty_hint: str = "",
                     create: bool = True) -> pathlib.Path:
  """Checks `path` is (or can become) a writable folder, creating it unless `create=False`;
  returns it absolute."""
  path = pathlib.Path(path).expanduser().absolute()
  if path.exists() and not path.is_dir():
    raise UserError(f"{flag} {path} is a file, not a folder: choose a folder path")
  if must_be_empty and path.is_dir() and any(path.iterdir()):
    raise UserError(f"{flag} {path} is not empty and would be overwritten{empty_hint}")
  if not create and not path.exists():  # the nearest existing ancestor must take a new folder
    parent = next(p for p in path.parents if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
      raise UserError(f"{flag} {path} cannot be created ({parent} is not a writable folder): "
                      "choose another folder")
    return path
  try:
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test"):
      pass
  except OSError as e:
    raise UserError(f"{flag} {path} is not writable ({e.strerror or e}): choose another "
                    "folder") from None
  return path


def partial_path(path) -> pathlib.Path:
  """The temporary name a file is written under before `os.replace` makes it final."""
  path = pathlib.Path(path)
  return path.with_name(f".{path.name}.partial-{os.getpid()}")


def remove_stale_partials(path) -> None:
  """Deletes `path`'s temporary files left by killed processes (their pid no longer runs)."""
  path = pathlib.Path(path)
  for tmp in path.parent.glob(f".{path.name}.partial-*"):
    pid = tmp.name.rsplit("-", 1)[-1]
    if pid.isdigit() and not _pid_alive(int(pid)):
      tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process
    return True
  return True


def atomic_write_text(path, text: str) -> None:
  path = pathlib.Path(path)
  tmp = partial_path(path)
  try:
    tmp.write_text(text)
    os.replace(tmp, path)
  finally:
    tmp.unlink(missing_ok=True)


def same_file(a, b) -> bool:
  try:
    return os.path.samefile(a, b)
  except OSError:  # one of them does not exist
    return pathlib.Path(a).absolute().resolve() == pathlib.Path(b).absolute().resolve()


def output_files(inputs, out_dir, suffix: str, flag: str = "--output",
                 input_dir=None) -> list[pathlib.Path]:
  """`<out_dir>/<stem><suffix>` per input, refused before any computing when an output would
  overwrite an input, when out_dir is the input folder `input_dir`, or when two inputs map to one
  output (photo.png and photo.bmp)."""
  out_dir = pathlib.Path(out_dir)
  if input_dir is not None and same_file(input_dir, out_dir):
    raise UserError(f"{flag} {out_dir} is the input folder: the outputs would overwrite the "
                    f"inputs; choose another {flag}")
  outs = [out_dir / (pathlib.Path(p).stem + suffix) for p in inputs]
  for src, dst in zip(inputs, outs):
    if same_file(src, dst):
      raise UserError(f"the output for {src} would overwrite the input itself: choose another "
                      f"{flag}")
  seen = {}
  for src, dst in zip(inputs, outs):
    if dst.name in seen:
      raise UserError(f"inputs {seen[dst.name]} and {src} would both be written to {dst}: "
                      "rename one of them or upscale them separately")
    seen[dst.name] = src
  return outs
