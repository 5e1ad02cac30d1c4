"""One training run per workdir: an exclusive flock on `<workdir>/.lock`.

Two runs on one workdir would delete each other's in-progress checkpoints (Orbax cleans up
temporary folders at start-up) and interleave metrics.jsonl. The lock is held for the whole run
and released by the kernel when the process ends, also after kill -9, so a stale lock never blocks
a rerun (utils/filelock.py, the one lock of the package). The file holds the owner's pid and
host for the message. Local filesystems only: flock over NFS depends on the server.
"""
import contextlib
import pathlib

from memsr_jax.utils import filelock
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
  busy = lambda owner: WorkdirBusy(f"--workdir {workdir} is in use by {owner}: wait for that run "
                                   "to finish (or stop it), or choose another --workdir")
  with filelock.exclusive(workdir / LOCK_NAME, "training", busy):
    yield
