"""Stopping training cleanly: SIGTERM/SIGINT become a flag the loop checks (a checkpoint is saved,
then `TrainingInterrupted` is raised), agreed on by every process."""
import pathlib
import signal
import threading

import jax
from jax.experimental import multihost_utils
import numpy as np

from memsr_jax.utils import console


class TrainingInterrupted(RuntimeError):
  """SIGTERM/SIGINT arrived; a checkpoint was saved. Rerun the same command to resume."""

  def __init__(self, signum: int, step: int, workdir: pathlib.Path):
    self.signum, self.step, self.workdir = signum, step, workdir
    super().__init__(f"{signal.Signals(signum).name} received: saved a checkpoint at step {step} "
                     f"in {workdir}; rerun the same command to resume")


class SignalCatcher:
  """Turns SIGTERM/SIGINT into a flag the loop checks (handlers restored on exit)."""

  def __init__(self):
    self.signum = None
    self._old = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for s in (signal.SIGTERM, signal.SIGINT):
        self._old[s] = signal.signal(s, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None and signum == signal.SIGINT:  # second Ctrl-C: stop right away
      raise KeyboardInterrupt
    self.signum = signum
    console.say(f"{signal.Signals(signum).name} received: saving a checkpoint and stopping…")

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)


def all_processes_agree(flag: bool) -> bool:
  """True when `flag` holds on any process (collective: every process must call it)."""
  if jax.process_count() == 1:
    return flag
  return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.int32))))
