"""Training checkpoints of one workdir: save and restore the train state, with a fallback past
damaged steps.

Training checkpoints live in `<workdir>/checkpoints/<step>/` (an Orbax `CheckpointManager`), each a
composite of items:
  state           step, params, opt_state (and ema_params when kept)
  export          the deployable network's params (task.export; EMA weights when kept)
  extras_<name>   one item per task extra (masks, rewind states, teacher params…); bools stay bool
  meta            JSON: config, model name + kwargs, scale, step, data iterator state, versions,
                  validation PSNR, method metadata
Saving is asynchronous; the manager keeps the last `keep` checkpoints and the best by validation
PSNR. Restores land on the caller's shardings, so a checkpoint saved on 4 devices restores on 1 and
vice versa. An unreadable latest checkpoint is moved to `<workdir>/checkpoints_corrupt/` and the
previous one is used instead (with a warning); read-only users skip it instead.
"""
import logging
import os
import pathlib
import shutil
import time
from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as ocm

from memsr_jax.checkpoints import layout
from memsr_jax.checkpoints import orbax_io
from memsr_jax.checkpoints.errors import CheckpointMismatchError
from memsr_jax.checkpoints.errors import CheckpointNotFoundError
from memsr_jax.checkpoints.errors import CheckpointUnreadableError
from memsr_jax.checkpoints.tree_check import check_tree_matches
from memsr_jax.utils import console
from memsr_jax.utils import jsonio

PyTree = Any
log = logging.getLogger(__name__)


class TrainCheckpointer:
  """Training checkpoints of one workdir (or stage workdir)."""

  def __init__(self, workdir: str | os.PathLike, *, keep: int = 3, keep_best: bool = True,
               async_save: bool = True, read_only: bool = False):
    # Absolute: Orbax refuses relative paths (`--workdir runs/x` must work as typed).
    self.workdir = pathlib.Path(workdir).expanduser().absolute()
    self.directory = self.workdir / layout.CKPT_DIR
    policies = [ocm.LatestN(max(1, keep))]
    if keep_best:
      policies.append(ocm.BestN(get_metric_fn=lambda m: m["val_psnr"], n=1,
                                keep_checkpoints_without_metrics=False))
    self._options = ocp.CheckpointManagerOptions(
        preservation_policy=ocm.AnyPreservationPolicy(policies),
        enable_async_checkpointing=async_save, cleanup_tmp_directories=not read_only,
        read_only=read_only, create=not read_only)
    self._mgr = None
    self._pending = None  # the step whose (async) save may still be running
    orbax_io.quiet()  # before any restore: a damaged step's reads fail in other threads

  @property
  def manager(self) -> ocp.CheckpointManager:
    if self._mgr is None:
      self._mgr = ocp.CheckpointManager(self.directory, options=self._options)
    return self._mgr

  def all_steps(self) -> list[int]:
    if not self.directory.is_dir():
      return []
    return sorted(self.manager.all_steps())

  def latest_step(self) -> int | None:
    steps = self.all_steps()
    return steps[-1] if steps else None

  def read_meta(self, step: int) -> dict:
    return layout.read_meta(self.directory / str(step))

  def best_step(self) -> int | None:
    """The step with the highest validation PSNR (None when no checkpoint has one)."""
    best, best_psnr = None, -np.inf
    for s in self.all_steps():
      try:
        psnr = self.read_meta(s).get("val_psnr")
      except (OSError, ValueError):
        continue
      if psnr is not None and psnr > best_psnr:
        best, best_psnr = s, psnr
    return best

  def save(self, step: int, state: PyTree, extras: dict[str, PyTree], meta: dict,
           export_params: PyTree, val_psnr: float | None = None) -> None:
    """Starts an (async) save of everything at `step`; returns before the write finishes."""
    extras = {k: v for k, v in extras.items() if jax.tree_util.tree_leaves(v)}
    meta = dict(meta)
    meta.update(step=int(step), extras_keys=sorted(extras), versions=orbax_io.versions(),
                val_psnr=None if val_psnr is None else float(val_psnr), saved_at=time.time())
    items = {"state": ocp.args.StandardSave(state),
             "export": ocp.args.StandardSave(export_params),
             "meta": ocp.args.JsonSave(jsonio.to_jsonable(meta))}
    for k, v in extras.items():
      items[layout.EXTRAS_PREFIX + k] = ocp.args.StandardSave(v)
    metrics = None if val_psnr is None else {"val_psnr": float(val_psnr)}
    # An earlier background save's failure belongs to that step, not to this one: Orbax would
    # report it from this save (it waits for the previous save first anyway).
    self.wait()
    self._pending = int(step)
    try:
      self.manager.save(int(step), args=ocp.args.Composite(**items), metrics=metrics, force=True)
    except Exception as e:
      raise orbax_io.save_error(self.directory, step, e) from e

  def check_errors(self) -> None:
    """Raises CheckpointSaveError (naming the step) when a background (async) save has failed."""
    if self._mgr is not None:
      try:
        self._mgr.check_for_errors()
      except Exception as e:
        raise orbax_io.save_error(self.directory, self._pending, e) from e

  def wait(self) -> None:
    """Waits for the pending background save; its failure is a CheckpointSaveError naming it."""
    if self._mgr is not None:
      try:
        self._mgr.wait_until_finished()
        self._mgr.check_for_errors()
      except Exception as e:
        raise orbax_io.save_error(self.directory, self._pending, e) from e
    self._pending = None

  def close(self) -> None:
    if self._mgr is not None:
      mgr, self._mgr = self._mgr, None
      try:
        mgr.close()
      except Exception as e:  # already reported by save/wait
        log.warning("closing the checkpoint manager of %s: %s", self.directory, e)

  def _check(self, step: int, item: str, target: PyTree) -> None:
    saved_tree = orbax_io.saved_tree_metadata(self.directory / str(step) / item)
    check_tree_matches(item, saved_tree, target, f"{self.directory / str(step)}")

  def restore_step(self, step: int, abstract_state: PyTree | None,
                   abstract_extras: dict[str, PyTree] | None) -> tuple[PyTree, dict, dict]:
    """(state, extras, meta) at `step`, laid out like the abstract trees (their shardings)."""
    meta = jsonio.from_jsonable(self.read_meta(step))
    keys = meta.get("extras_keys", [])
    args = {"meta": ocp.args.JsonRestore()}
    abstract_state = orbax_io.with_sharding(abstract_state)
    abstract_extras = orbax_io.with_sharding(abstract_extras)
    if abstract_state is not None:
      self._check(step, "state", abstract_state)
      args["state"] = ocp.args.StandardRestore(abstract_state)
    if abstract_extras is not None:
      want = {k for k, v in abstract_extras.items() if jax.tree_util.tree_leaves(v)}
      if want != set(keys):
        raise CheckpointMismatchError(
            f"checkpoint {self.directory / str(step)} holds extras {sorted(keys)} but the task "
            f"has {sorted(want)}")
      for k in keys:
        self._check(step, layout.EXTRAS_PREFIX + k, abstract_extras[k])
        args[layout.EXTRAS_PREFIX + k] = ocp.args.StandardRestore(abstract_extras[k])
    out = self.manager.restore(step, args=ocp.args.Composite(**args))
    extras = dict(abstract_extras or {})
    for k in keys:
      if layout.EXTRAS_PREFIX + k in out and out[layout.EXTRAS_PREFIX + k] is not None:
        extras[k] = out[layout.EXTRAS_PREFIX + k]
    return (out["state"] if abstract_state is not None else None), extras, meta

  def restore_latest(self, abstract_state: PyTree, abstract_extras: dict[str, PyTree]
                     ) -> tuple[PyTree, dict, dict] | None:
    """Restores the newest readable checkpoint, setting unreadable ones aside; None if none.

    A shape/structure mismatch is not corruption: it raises CheckpointMismatchError at once.
    """
    for step in reversed(self.all_steps()):
      try:
        return self.restore_step(step, abstract_state, abstract_extras)
      except CheckpointMismatchError:
        raise
      except Exception as e:
        # Damaged files raise anything (Orbax/tensorstore: bare Exception, ValueError, OSError…);
        # the step is moved aside, not deleted, so nothing is lost if this was not corruption.
        orbax_io.quiet_abandoned_reads()
        self._set_aside(step, e)
    return None

  def _set_aside(self, step: int, err: Exception) -> None:
    src = self.directory / str(step)
    dst_root = self.workdir / layout.CORRUPT_DIR
    msg = (f"checkpoint at step {step} ({src}) is unreadable ({type(err).__name__}: "
           f"{str(err)[:300]}); moving it to {dst_root} and falling back to the previous one")
    if jax.process_index() == 0:
      console.say(f"warning: {msg}")
    self.close()
    if jax.process_index() == 0:
      dst_root.mkdir(parents=True, exist_ok=True)
      dst = dst_root / f"{step}_{int(time.time())}"
      shutil.move(str(src), str(dst))
    _sync("set_aside_corrupt_checkpoint")

  def restore_export(self, step: int | None = None) -> tuple[PyTree, dict]:
    """(deployable params, meta) of `step` (default: best by validation PSNR, else latest)."""
    if step is not None:
      return self._restore_export_step(step)
    steps = self.all_steps()
    if not steps:
      raise CheckpointNotFoundError(f"no checkpoints in {self.directory}")
    best = self.best_step()
    order = ([best] if best is not None else []) + [s for s in reversed(steps) if s != best]
    for s in order:  # a damaged step is skipped (read-only here: nothing is moved)
      try:
        return self._restore_export_step(s)
      except Exception as e:  # damaged files raise anything
        orbax_io.quiet_abandoned_reads()
        msg = (f"checkpoint at step {s} in {self.directory} is unreadable ({type(e).__name__}: "
               f"{orbax_io.first_line(e)}); trying the previous one")
        console.say(f"warning: {msg}")
    raise CheckpointUnreadableError(
        f"no readable checkpoint in {self.directory}: all {len(steps)} step(s) are damaged; "
        "retrain, or point to another checkpoint")

  def _restore_export_step(self, step: int) -> tuple[PyTree, dict]:
    meta = jsonio.from_jsonable(self.read_meta(step))
    target = orbax_io.saved_target(self.directory / str(step) / "export")
    out = self.manager.restore(step, args=ocp.args.Composite(
        export=ocp.args.StandardRestore(target)))
    return out["export"], meta


def restore_train_state(workdir: str | os.PathLike, abstract_state: PyTree,
                        step: int | None = None) -> tuple[PyTree, dict]:
  """(train state, meta) of a training workdir at `step` (default: the latest), read-only.

  The raw state (params, optimizer state, EMA), not the exported weights: e.g. the exact zeros a
  proximal optimizer left, which the EMA export smooths away. `abstract_state` is the state's
  structure (`jax.eval_shape` of its creation); leaves without a sharding land on this process's
  first device.
  """
  ck = TrainCheckpointer(workdir, read_only=True)
  try:
    if step is None:
      step = ck.latest_step()
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {ck.directory}")
    state, _, meta = ck.restore_step(step, abstract_state, None)
  finally:
    ck.close()
  return state, meta


def _sync(name: str) -> None:
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
