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

from memsr_jax.cli import UserError

LOCK_NAME = ".lock"


class WorkdirBusy(UserError):
  """Another process holds the workdir."""


@contextlib.contextmanager
def hold(workdir):
  """Holds the workdir's lock for the `with` block; raises WorkdirBusy when it is taken."""
  workdir = pathlib.Path(workdir).absolute()
  workdir.mkdir(parents=True, exist_ok=True)
  f = open(workdir / LOCK_NAME, "a+")
  try:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      owner = f.read().strip() or "another process"
      raise WorkdirBusy(f"--workdir {workdir} is in use by {owner}: wait for that run to finish "
                        "(or stop it), or choose another --workdir") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    yield
  finally:
    f.close()  # releases the lock
