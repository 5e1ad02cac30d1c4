"""The thin layer over Orbax every checkpoint goes through: quiet logs, saved-tree metadata,
restore targets on explicit shardings, and the versions recorded with each save.

Orbax reports one failed background save from each of its threads and asyncio tasks, with
tracebacks, and tensorstore may call back into an event loop Orbax has closed after a failed
restore; both are noise once the failure has reached the caller, who reports it once. `quiet()`
installs the filters that drop exactly those records.
"""
import logging
import os
import sys
from typing import Any

import flax
import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec
import numpy as np
import optax
import orbax.checkpoint as ocp

import memsr_jax
from memsr_jax.checkpoints.errors import CheckpointSaveError

PyTree = Any


# Orbax's warnings that a manager opened read-only (as eval.py and upscale do) will not save.
_READ_ONLY_NOTICES = ("read_only=True", "directory is read only")


class _QuietOrbaxThreadErrors(logging.Filter):
  """Drops Orbax's INFO records (handler set-up, throughput, the CheckpointManager's repr: dozens
  of long lines per restore that mean nothing to a user; our own code logs what it loads and
  saves) and its per-thread reports of a failed background save (~100-300 lines of tracebacks
  for one full disk); the failure reaches the caller too, as CheckpointSaveError."""

  def filter(self, record):
    from_orbax = "/orbax/" in record.pathname.replace("\\", "/")
    if record.levelno < logging.WARNING:
      return not from_orbax
    if from_orbax and any(m in record.getMessage() for m in _READ_ONLY_NOTICES):
      return False  # readers open the manager read-only on purpose
    if record.levelno < logging.ERROR:
      return True
    msg = record.getMessage()
    if from_orbax and "raised an exception" in msg:
      return False
    return not (record.name == "asyncio" and "never retrieved" in msg and "orbax" in msg)


class _NoStepMetadataWarning(logging.Filter):
  """Orbax warns that an *item* folder has no step-level metadata file, which only step folders
  have: expected when an item's own metadata is read, and noise in a user's terminal."""

  def filter(self, record):
    return "Metadata file does not exist" not in record.getMessage()


_QUIET = _QuietOrbaxThreadErrors()


def quiet() -> None:
  """Installs the log filters and the unraisable-exception filter (idempotent)."""
  for name in ("absl", "asyncio"):
    if _QUIET not in logging.getLogger(name).filters:
      logging.getLogger(name).addFilter(_QUIET)
  quiet_abandoned_reads()


def quiet_abandoned_reads() -> None:
  """After a failed restore, tensorstore may still call back into the event loop Orbax closed;
  Python then prints "Event loop is closed" tracebacks that mean nothing. Those are dropped."""
  prev = sys.unraisablehook
  if getattr(prev, "_memsr_quiet", False):
    return

  def hook(u):
    if isinstance(u.exc_value, RuntimeError) and str(u.exc_value) == "Event loop is closed":
      return
    prev(u)
  hook._memsr_quiet = True
  sys.unraisablehook = hook


def save_error(directory, step, err: BaseException) -> CheckpointSaveError:
  """The one-line user error for a failed save (its cause kept as `__cause__` by the caller)."""
  quiet_abandoned_reads()  # the failed writes' callbacks may find their event loop closed
  why = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
  return CheckpointSaveError(
      f"saving the checkpoint{'' if step is None else f' at step {step}'} in {directory} failed "
      f"({why[:300]}); training stopped. Free disk space (or fix permissions) and rerun the same "
      "command: it resumes from the last complete checkpoint")


def first_line(err: BaseException, limit: int = 200) -> str:
  return str(err).splitlines()[0][:limit] if str(err) else ""


def versions() -> dict[str, str]:
  return {"memsr_jax": memsr_jax.__version__, "jax": jax.__version__, "flax": flax.__version__,
          "optax": optax.__version__, "orbax": ocp.__version__ if hasattr(ocp, "__version__")
          else "?"}


def saved_tree_metadata(item_dir: str | os.PathLike) -> PyTree:
  """The saved pytree of an Orbax item folder, with ArrayMetadata leaves (shape, dtype)."""
  quiet_log = _NoStepMetadataWarning()
  absl_logger = logging.getLogger("absl")
  absl_logger.addFilter(quiet_log)
  try:
    md = ocp.StandardCheckpointer().metadata(item_dir)
  finally:
    absl_logger.removeFilter(quiet_log)
  md = getattr(md, "item_metadata", md)
  tree = getattr(md, "tree", md)
  if tree is None or not jax.tree_util.tree_leaves(tree):
    raise OSError(f"no readable array metadata in {item_dir} (missing or damaged files)")
  return tree


def abstract_tree(tree, sharding=None):
  """ShapeDtypeStructs for a tree (the restore target of its like); `sharding` (one sharding for
  all leaves) overrides theirs."""
  def one(x):
    s = sharding if sharding is not None else getattr(x, "sharding", None)
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)
  return jax.tree.map(one, tree)


def default_sharding():
  """Restores without a caller-given target land replicated on this process's first device."""
  mesh = Mesh(np.asarray(jax.local_devices()[:1]), ("d",))
  return NamedSharding(mesh, PartitionSpec())


def with_sharding(tree):
  """Leaves without a sharding get the default one: Orbax would otherwise use the saved layout,
  which fails when the checkpoint came from another device count."""
  if tree is None:
    return None
  default = default_sharding()
  return jax.tree.map(lambda x: x if getattr(x, "sharding", None) is not None else
                      jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=default), tree)


def saved_target(item_dir: str | os.PathLike) -> PyTree:
  """A restore target for an item folder as saved, on the default sharding."""
  return abstract_tree(saved_tree_metadata(item_dir), default_sharding())
