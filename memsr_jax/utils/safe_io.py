"""Writes that never lose data: output-location checks before any computing, atomic files.

- `check_output_dir` / `check_output_file`: a folder / file we may write (not the other kind,
  writable location; an existing file only with --overwrite);
- `check_not_in_checkpoint_tree`: never write into a training workdir's checkpoints, an Orbax
  checkpoint or a model checkpoint folder (the next save or garbage collection would delete it);
- `check_apart`: an output never equals, lies inside, or (when replaced) contains an input;
- `check_path_flag` / `check_input`: '' is not a path; an input is a file or folder, never a
  FIFO or device (a read would block forever);
- `atomic_output` / `atomic_write_bytes` / `atomic_write_text`: data goes to a hidden temporary
  name beside the target (`.<name>.<pid>.tmp`) and is renamed over it when complete, so a kill
  mid-write never leaves a half file under the final name; leftovers of killed runs are deleted by
  the next write of the same file (`remove_stale_temps`);
- `same_file`: whether two paths are one file (an input must never be opened for writing);
- `removed_if_left_empty`: a folder a failed command created is not left behind empty;
  `exit_on_signal`: SIGTERM runs the clean-ups of temporary files and folders.
"""
import contextlib
import errno
import os
import pathlib
import signal
import stat
import tempfile
import threading
import time

from memsr_jax.utils.cli import UserError


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
    _probe_write(path, ".write_test")
  except OSError as e:
    raise UserError(f"{flag} {path} is not writable ({e.strerror or e}): choose another "
                    "folder") from None
  return path


def _probe_write(folder: pathlib.Path, prefix: str) -> None:
  """Creates and removes a temporary file in `folder`: raises OSError where it cannot."""
  with tempfile.NamedTemporaryFile(dir=folder, prefix=prefix):
    pass


def partial_path(path) -> pathlib.Path:
  """The temporary name a file is written under before `os.replace` makes it final."""
  path = pathlib.Path(path)
  return path.with_name(f".{path.name}.partial-{os.getpid()}")


def remove_stale_partials(path) -> None:
  """Deletes `path`'s temporary files left by killed processes (see `remove_stale_temps`)."""
  remove_stale_temps(path)


# A temporary name without a pid (tempfile's random names) is stale once untouched this long.
STALE_UNOWNED_SECONDS = 3600


def remove_stale_temps(path) -> list[pathlib.Path]:
  """Deletes `path`'s temporary files left by killed processes: `.<name>.partial-<pid>` and
  `.<name>.<pid>.tmp` whose process no longer runs, and `.<name>.<random>.tmp` untouched for an
  hour. Returns what was deleted."""
  path = pathlib.Path(path)
  gone = []
  if not path.parent.is_dir():
    return gone
  candidates = (list(path.parent.glob(f".{_glob_escape(path.name)}.partial-*")) +
                list(path.parent.glob(f".{_glob_escape(path.name)}.*.tmp")))
  for tmp in candidates:
    middle = (tmp.name.rsplit("-", 1)[-1] if ".partial-" in tmp.name
              else tmp.name[len(path.name) + 2:-len(".tmp")])
    try:
      if middle.isdigit():
        stale = int(middle) != os.getpid() and not _pid_alive(int(middle))
      else:
        stale = time.time() - tmp.lstat().st_mtime > STALE_UNOWNED_SECONDS
      if stale and not tmp.is_dir():
        tmp.unlink(missing_ok=True)
        gone.append(tmp)
    except OSError:  # vanished meanwhile, or not ours to delete
      continue
  return gone


def _glob_escape(name: str) -> str:
  return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process
    return True
  return True


def temp_path(path) -> pathlib.Path:
  """The hidden name `atomic_output` writes `path` under: `.<name>.<pid>.tmp` beside it."""
  path = pathlib.Path(path)
  return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_output(path, what: str = "writing"):
  """`with atomic_output(p) as tmp:` write the file `tmp`; on success it is renamed to `p`, on
  any error (or a kill) `p` is untouched and `tmp` deleted. Stale temporaries of `p` from killed
  runs are deleted first. A full disk or a read-only location is a UserError naming `what`."""
  path = pathlib.Path(path)
  remove_stale_temps(path)
  tmp = temp_path(path)
  try:
    try:
      yield tmp
      os.replace(tmp, path)
    except OSError as e:
      raise _write_error(e, what, path) from None
  finally:
    with contextlib.suppress(OSError):
      tmp.unlink(missing_ok=True)


def _write_error(e: OSError, what: str, path: pathlib.Path) -> Exception:
  if e.errno in (errno.ENOSPC, errno.EDQUOT):
    return UserError(f"{what} {path} failed: no space left on the device of {path.parent}; "
                     "free disk space and rerun (nothing was written)")
  if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
    return UserError(f"{what} {path} failed: {path.parent} is not writable "
                     f"({e.strerror}); choose another location")
  return e


@contextlib.contextmanager
def removed_if_left_empty(folder):
  """`with removed_if_left_empty(out):` a folder the block creates is removed at its end when it
  is still empty (a failed command leaves no empty folder behind); one that existed is kept."""
  folder = pathlib.Path(folder).expanduser().absolute()
  existed = folder.exists()
  try:
    yield folder
  finally:
    if not existed:
      with contextlib.suppress(OSError):  # not empty, or gone: nothing to do
        folder.rmdir()


@contextlib.contextmanager
def exit_on_signal():
  """Inside the block SIGTERM raises SystemExit(128 + 15), so the `with` / `finally` clean-ups of
  temporary files and folders run (the default action would end the process without them); Ctrl-C
  raises KeyboardInterrupt anyway. When code inside swallows that SystemExit, it is raised again
  at the end of the block. The previous handler is restored after. Main thread only."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  received = []

  def handle(signum, frame):
    del frame
    received.append(signum)
    raise SystemExit(128 + signum)
  old = signal.signal(signal.SIGTERM, handle)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, signal.SIG_DFL if old is None else old)
  if received:  # a library's bare `except:` swallowed the SystemExit: exit now
    raise SystemExit(128 + received[0])


def atomic_write_bytes(path, data: bytes, what: str = "writing") -> None:
  with atomic_output(path, what) as tmp:
    tmp.write_bytes(data)


def atomic_write_text(path, text: str, what: str = "writing") -> None:
  with atomic_output(path, what) as tmp:
    tmp.write_text(text)


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


# ------------------------------------------------------------------------- paths checked up front


def check_path_flag(value, flag: str) -> pathlib.Path:
  """A path given on the command line; '' (which would mean the current folder) is refused."""
  if value is None or not str(value).strip():
    raise UserError(f"{flag} is empty: give a path")
  return pathlib.Path(value).expanduser()


def check_input(path, flag: str, *, folder_ok: bool = True) -> pathlib.Path:
  """An existing regular file (or folder); a FIFO, socket or device is refused (reading one
  blocks or never ends)."""
  path = check_path_flag(path, flag)
  try:
    mode = path.stat().st_mode
  except FileNotFoundError:
    raise UserError(f"{flag} {path} does not exist") from None
  except OSError as e:
    raise UserError(f"{flag} {path} cannot be read ({e.strerror or e})") from None
  if stat.S_ISDIR(mode):
    if not folder_ok:
      raise UserError(f"{flag} {path} is a folder: give a file")
    return path
  if not stat.S_ISREG(mode):
    raise UserError(f"{flag} {path} is not a regular file (a pipe, socket or device): give an "
                    "image file or a folder")
  return path


def check_output_file(path, flag: str, *, overwrite: bool = False) -> pathlib.Path:
  """Checks, before any computing, that a file can be written at `path`: not '' or a folder, its
  folder exists and takes new files, and an existing file only with --overwrite. Returns it
  absolute."""
  path = check_path_flag(path, flag).absolute()
  if path.is_dir():
    raise UserError(f"{flag} {path} is a folder: give a file path inside it")
  if path.exists() and not overwrite:
    raise UserError(f"{flag} {path} exists: pass --overwrite to replace it")
  if path.exists() and not path.is_file():
    raise UserError(f"{flag} {path} is not a regular file: choose another path")
  parent = path.parent
  if not parent.is_dir():
    raise UserError(f"{flag}: folder {parent} does not exist: create it or choose another path")
  try:
    _probe_write(parent, f".{path.name}.write_test")
  except OSError as e:
    raise UserError(f"{flag} {path} cannot be written ({parent}: {e.strerror or e}): choose "
                    "another folder") from None
  return path


def _resolved(path) -> pathlib.Path:
  return pathlib.Path(path).expanduser().absolute().resolve()


_ORBAX_MARKERS = ("_CHECKPOINT_METADATA", "commit_success.txt", "_METADATA", "manifest.ocdbt")
_CHECKPOINT_DIRS = ("checkpoints", "checkpoints_corrupt")


def _is_orbax_folder(folder: pathlib.Path) -> bool:
  return (any((folder / m).exists() for m in _ORBAX_MARKERS) or
          ((folder / "params").is_dir() and (folder / "meta").is_dir()))


def _holds_orbax_steps(folder: pathlib.Path) -> bool:
  try:
    with os.scandir(folder) as it:
      return any(e.name.isdigit() and e.is_dir() and _is_orbax_folder(pathlib.Path(e.path))
                 for e in it)
  except OSError:
    return False


def checkpoint_tree_of(path) -> pathlib.Path | None:
  """The checkpoint tree an output at `path` would lie in, or None: a `checkpoints/` (or
  `checkpoints_corrupt/`) folder, an Orbax or model checkpoint folder, a folder of Orbax steps,
  or the top of a training workdir (a folder holding `checkpoints/`). Symlinks are resolved."""
  p = _resolved(path)
  for folder in p.parents:
    if folder.name in _CHECKPOINT_DIRS:
      return folder
    if folder.is_dir() and (_is_orbax_folder(folder) or _holds_orbax_steps(folder)):
      return folder
  if (p.parent / "checkpoints").is_dir():
    return p.parent
  return None


def check_not_in_checkpoint_tree(path, flag: str, *, folder: bool = False) -> None:
  """Refuses an output inside a checkpoint tree: the next save of a resumed run, or its garbage
  collection of old steps, would replace or delete it. `folder`: `path` is an output folder whose
  files would be written into it (so it may not be a checkpoint folder or a workdir's top
  either)."""
  tree = checkpoint_tree_of(pathlib.Path(path) / "_" if folder else path)
  if tree is not None:
    raise UserError(f"{flag} {path} lies inside the checkpoint tree {tree}: a training run's "
                    "next save or clean-up would replace or delete it; write it elsewhere")


def _inside(a: pathlib.Path, b: pathlib.Path) -> bool:
  return a == b or b in a.parents


def check_apart(output, inputs, flag: str, *, replaces_folder: bool = False) -> None:
  """Refuses an output that is an input, lies inside an input folder, or (when the output is a
  folder that gets replaced, `replaces_folder`) holds an input. Symlinks are resolved; no
  --overwrite lifts this. `inputs` is a mapping {flag: path} (None paths are skipped)."""
  out = _resolved(output)
  for in_flag, path in inputs.items():
    if path is None or str(path) == "":
      continue
    src = _resolved(path)
    if out == src or same_file(out, src):
      raise UserError(f"{flag} {output} is the input {in_flag} {path}: it would be overwritten; "
                      f"choose another {flag}")
    if _inside(out, src):
      raise UserError(f"{flag} {output} lies inside the input {in_flag} {path}: choose a "
                      f"{flag} outside it")
    if replaces_folder and _inside(src, out):
      raise UserError(f"the input {in_flag} {path} lies inside {flag} {output}, which would be "
                      f"replaced: move the input out or choose another {flag}")
