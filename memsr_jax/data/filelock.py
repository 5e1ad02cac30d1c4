"""One process at a time on a fetched set or a download: an exclusive flock on a lock file.

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

from memsr_jax.utils.cli import UserError


class Busy(UserError):
  """Another process holds the lock."""


def _open_locked(path: pathlib.Path, what: str):
  """The lock file, opened and flocked; raises Busy when another process holds it."""
  while True:
    try:
      f = open(path, "a+")
    except OSError as e:
      raise UserError(f"cannot create the lock file {path} ({e.strerror or e}): choose a "
                      "writable --data_dir") from None
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      owner = f.read().strip() or "another process"
      f.close()
      raise Busy(f"{what} is already under way ({owner}, lock {path}): wait for it to finish, "
                 "or stop it and rerun") from None
    try:  # the previous holder may have deleted the file between our open and flock
      same = os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except FileNotFoundError:
      same = False
    if same:
      return f
    f.close()


@contextlib.contextmanager
def exclusive(path, what: str):
  """Holds the lock `path` for the `with` block; raises Busy (naming `what`) when it is taken."""
  path = pathlib.Path(path)
  f = _open_locked(path, what)
  try:
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    yield
  finally:
    with contextlib.suppress(OSError):
      path.unlink()
    f.close()
