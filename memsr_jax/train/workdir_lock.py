"""One training run per workdir: an exclusive flock on `<workdir>/.lock`.

Two runs on one workdir would delete each other's in-progress checkpoints (Orbax cleans up
temporary folders at start-up) and interleave metrics.jsonl. The lock is held for the whole run
and released by the kernel when the process ends, also after kill -9, so a stale lock never blocks
a rerun. The file holds the owner's pid and host for the message. Local filesystems only: flock
over NFS depends on the server.
"""
import contextlib
import fcntl
import os
import pathlib
import socket

from memsr_jax.utils.cli import UserError

LOCK_NAME = ".lock"


class WorkdirBusy(UserError):
  """Another process holds the workdir."""


@contextlib.contextmanager
def hold(workdir):
  """Holds the workdir's lock for the `with` block; raises WorkdirBusy when it is taken. The lock
  file is deleted when the block ends (while still locked), so a run leaves no `.lock` behind."""
  workdir = pathlib.Path(workdir).absolute()
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / LOCK_NAME
  f = _lock(path)
  try:
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    yield
  finally:
    if _same_inode(path, f):  # a waiting process then finds the name gone and opens a new file
      with contextlib.suppress(OSError):
        path.unlink()
    f.close()  # releases the lock


def _lock(path: pathlib.Path):
  """The open, flocked lock file at `path`. A file its holder deleted while this process waited
  for it is not the lock any more: then the new file at `path` is locked instead."""
  while True:
    f = open(path, "a+")
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      owner = f.read().strip() or "another process"
      f.close()
      raise WorkdirBusy(f"--workdir {path.parent} is in use by {owner}: wait for that run to "
                        "finish (or stop it), or choose another --workdir") from None
    if _same_inode(path, f):
      return f
    f.close()


def _same_inode(path: pathlib.Path, f) -> bool:
  try:
    return os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
  except OSError:
    return False
