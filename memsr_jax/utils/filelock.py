"""One process at a time on a path (a training workdir, a fetched set, a download): an exclusive
flock on a lock file.

The lock file holds the owner's pid and host for the message, and is deleted when the lock is
released (before the kernel lock goes, so a process that opened the old file sees that it was
replaced and tries again). The kernel releases the lock when the process ends, also after kill -9,
so a stale lock file never blocks a rerun. Local filesystems only: flock over NFS depends on the
server.
"""
import contextlib
import fcntl
import os
import pathlib
import socket
from typing import Callable, Optional

from memsr_jax.utils.cli import UserError


class Busy(UserError):
  """Another process holds the lock."""


def _open_locked(path: pathlib.Path, busy: Callable[[str], Exception]):
  """The lock file, opened and flocked; raises busy(owner) when another process holds it."""
  while True:
    try:
      f = open(path, "a+")
    except OSError as e:
      raise UserError(f"cannot create the lock file {path} ({e.strerror or e}): choose a "
                      "writable folder") from None
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      owner = f.read().strip() or "another process"
      f.close()
      raise busy(owner) from None
    try:  # the previous holder may have deleted the file between our open and flock
      same = os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except FileNotFoundError:
      same = False
    if same:
      return f
    f.close()


@contextlib.contextmanager
def exclusive(path, what: str, busy: Optional[Callable[[str], Exception]] = None):
  """Holds the lock `path` for the `with` block. When another process holds it, raises
  busy(owner) (default: Busy naming `what`)."""
  path = pathlib.Path(path)
  if busy is None:
    busy = lambda owner: Busy(f"{what} is already under way ({owner}, lock {path}): wait for it "
                              "to finish, or stop it and rerun")
  f = _open_locked(path, busy)
  try:
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    yield
  finally:
    try:  # only our own file: a waiting process then finds the name gone and opens a new one
      mine = os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except OSError:
      mine = False
    if mine:
      with contextlib.suppress(OSError):
        path.unlink()
    f.close()  # releases the lock
