"""Checkpoints: the one module over Orbax.

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
previous one is used instead (with a warning).

Deployable model checkpoints (`save_model_checkpoint`) are a folder with items `params` and `meta`;
`load_model_checkpoint` reads those and training workdirs alike.
"""
import base64
import json
import logging
import os
import pathlib
import shutil
import sys
import time
from typing import Any

import flax
import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec
import numpy as np
import optax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as ocm

import memsr_jax
from memsr_jax import pytrees
from memsr_jax.cli import UserError
from memsr_jax.models import registry

PyTree = Any
log = logging.getLogger(__name__)

CKPT_DIR = "checkpoints"
CORRUPT_DIR = "checkpoints_corrupt"
MODEL_DIR = "model"  # a workdir's exported deployable model (written by methods / at the end)
EXTRAS_PREFIX = "extras_"


class CheckpointMismatchError(UserError, ValueError):
  """The checkpoint's tree does not fit the model/state it is restored into."""


class CheckpointUnreadableError(UserError, OSError):
  """No readable checkpoint where one was asked for (damaged files, not a checkpoint)."""


class CheckpointNotFoundError(UserError, FileNotFoundError):
  """No checkpoint at the path given."""


class CheckpointSaveError(UserError, OSError):
  """A checkpoint could not be written (disk full, permissions); training stops at once."""


class _QuietOrbaxThreadErrors(logging.Filter):
  """Orbax logs a failed background save from each of its threads and asyncio tasks, with
  tracebacks (~100-300 lines for one full disk); the failure reaches us too and is reported once,
  as CheckpointSaveError. Those records are dropped."""

  def filter(self, record):
    if record.levelno < logging.ERROR:
      return True
    msg = record.getMessage()
    if "/orbax/" in record.pathname.replace("\\", "/") and "raised an exception" in msg:
      return False
    return not (record.name == "asyncio" and "never retrieved" in msg and "orbax" in msg)


_QUIET = _QuietOrbaxThreadErrors()


def _save_error(directory, step, err: BaseException) -> CheckpointSaveError:
  _quiet_abandoned_reads()  # the failed writes' callbacks may find their event loop closed
  why = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
  return CheckpointSaveError(
      f"saving the checkpoint{'' if step is None else f' at step {step}'} in {directory} failed "
      f"({why[:300]}); training stopped. Free disk space (or fix permissions) and rerun the same "
      "command: it resumes from the last complete checkpoint")


def _quiet_abandoned_reads() -> None:
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


def versions() -> dict[str, str]:
  return {"memsr_jax": memsr_jax.__version__, "jax": jax.__version__, "flax": flax.__version__,
          "optax": optax.__version__, "orbax": ocp.__version__ if hasattr(ocp, "__version__")
          else "?"}


def to_jsonable(x):
  """Best-effort conversion of metadata (NumPy scalars, tuples, ConfigDicts) to JSON types."""
  if hasattr(x, "to_dict"):
    x = x.to_dict()
  if isinstance(x, dict):
    return {str(k): to_jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [to_jsonable(v) for v in x]
  if isinstance(x, (np.generic, np.ndarray)):
    return x.tolist()
  if isinstance(x, bytes):
    return {"__bytes__": base64.b64encode(x).decode("ascii")}
  if x is None or isinstance(x, (bool, int, float, str)):
    return x
  return repr(x)


def from_jsonable(x):
  """Undoes the bytes encoding of `to_jsonable` (data iterator states may be bytes)."""
  if isinstance(x, dict):
    if set(x) == {"__bytes__"}:
      return base64.b64decode(x["__bytes__"])
    return {k: from_jsonable(v) for k, v in x.items()}
  if isinstance(x, list):
    return [from_jsonable(v) for v in x]
  return x


# ----------------------------------------------------------------------------- tree checks


def _leaf_shapes(tree) -> dict[str, tuple[tuple, str]]:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  out = {}
  for path, leaf in flat:
    out[pytrees.path_str(path)] = (tuple(leaf.shape), str(np.dtype(leaf.dtype)))
  return out


def check_tree_matches(item: str, saved_meta: PyTree, target: PyTree, where: str) -> None:
  """Raises CheckpointMismatchError naming the first leaves whose path/shape/dtype differ."""
  saved = _leaf_shapes(saved_meta)
  want = _leaf_shapes(target)
  missing = sorted(set(want) - set(saved))
  extra = sorted(set(saved) - set(want))
  problems = []
  if missing:
    problems.append(f"leaves missing from the checkpoint: {missing[:5]}"
                    + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
  if extra:
    problems.append(f"leaves in the checkpoint the model does not have: {extra[:5]}"
                    + (f" (+{len(extra) - 5} more)" if len(extra) > 5 else ""))
  # Params first: a leaf of the network says more than its Adam moment does.
  for k in sorted(set(saved) & set(want), key=lambda k: ("params" not in k.split("/")[:1], k)):
    (ss, sd), (ws, wd) = saved[k], want[k]
    if ss != ws:
      problems.append(f"leaf {item}/{k} has shape {ss} in the checkpoint but {ws} in the model")
    elif sd != wd:
      problems.append(f"leaf {item}/{k} has dtype {sd} in the checkpoint but {wd} in the model")
    if len(problems) >= 5:
      break
  if problems:
    raise CheckpointMismatchError(
        f"checkpoint {where} does not match (different architecture or config?): "
        + "; ".join(problems))


def abstract_tree(tree, sharding=None):
  """ShapeDtypeStructs for a tree (the restore target of its like); `sharding` (one sharding for
  all leaves) overrides theirs."""
  def one(x):
    s = sharding if sharding is not None else getattr(x, "sharding", None)
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)
  return jax.tree.map(one, tree)


class _NoStepMetadataWarning(logging.Filter):
  """Orbax warns that an *item* folder has no step-level metadata file, which only step folders
  have: expected when an item's own metadata is read, and noise in a user's terminal."""

  def filter(self, record):
    return "Metadata file does not exist" not in record.getMessage()


def saved_tree_metadata(item_dir: str | os.PathLike) -> PyTree:
  """The saved pytree of an Orbax item folder, with ArrayMetadata leaves (shape, dtype)."""
  quiet = _NoStepMetadataWarning()
  absl_logger = logging.getLogger("absl")
  absl_logger.addFilter(quiet)
  try:
    md = ocp.StandardCheckpointer().metadata(item_dir)
  finally:
    absl_logger.removeFilter(quiet)
  md = getattr(md, "item_metadata", md)
  tree = getattr(md, "tree", md)
  if tree is None or not jax.tree_util.tree_leaves(tree):
    raise OSError(f"no readable array metadata in {item_dir} (missing or damaged files)")
  return tree


def _with_sharding(tree):
  """Leaves without a sharding get the default one: Orbax would otherwise use the saved layout,
  which fails when the checkpoint came from another device count."""
  if tree is None:
    return None
  default = _default_sharding()
  return jax.tree.map(lambda x: x if getattr(x, "sharding", None) is not None else
                      jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=default), tree)


def _default_sharding():
  """Restores without a caller-given target land replicated on this process's devices."""
  mesh = Mesh(np.asarray(jax.local_devices()[:1]), ("d",))
  return NamedSharding(mesh, PartitionSpec())


# ----------------------------------------------------------------------------- training workdirs


def _read_meta_file(step_dir: pathlib.Path) -> dict:
  with open(step_dir / "meta" / "metadata") as f:
    return json.load(f)


class TrainCheckpointer:
  """Training checkpoints of one workdir (or stage workdir)."""

  def __init__(self, workdir: str | os.PathLike, *, keep: int = 3, keep_best: bool = True,
               async_save: bool = True, read_only: bool = False):
    # Absolute: Orbax refuses relative paths (`--workdir runs/x` must work as typed).
    self.workdir = pathlib.Path(workdir).expanduser().absolute()
    self.directory = self.workdir / CKPT_DIR
    policies = [ocm.LatestN(max(1, keep))]
    if keep_best:
      policies.append(ocm.BestN(get_metric_fn=lambda m: m["val_psnr"], n=1,
                                keep_checkpoints_without_metrics=False))
    self._options = ocp.CheckpointManagerOptions(
        preservation_policy=ocm.AnyPreservationPolicy(policies),
        enable_async_checkpointing=async_save, cleanup_tmp_directories=not read_only,
        read_only=read_only, create=not read_only)
    self._mgr = None
    for name in ("absl", "asyncio"):
      if _QUIET not in logging.getLogger(name).filters:
        logging.getLogger(name).addFilter(_QUIET)
    _quiet_abandoned_reads()  # before any restore: a damaged step's reads fail in other threads

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
    return _read_meta_file(self.directory / str(step))

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
    meta.update(step=int(step), extras_keys=sorted(extras), versions=versions(),
                val_psnr=None if val_psnr is None else float(val_psnr), saved_at=time.time())
    items = {"state": ocp.args.StandardSave(state),
             "export": ocp.args.StandardSave(export_params),
             "meta": ocp.args.JsonSave(to_jsonable(meta))}
    for k, v in extras.items():
      items[EXTRAS_PREFIX + k] = ocp.args.StandardSave(v)
    metrics = None if val_psnr is None else {"val_psnr": float(val_psnr)}
    try:
      self.manager.save(int(step), args=ocp.args.Composite(**items), metrics=metrics, force=True)
    except Exception as e:  # incl. an earlier async save's failure, reported here by Orbax
      raise _save_error(self.directory, step, e) from e

  def check_errors(self) -> None:
    """Raises CheckpointSaveError when a background (async) save has failed."""
    if self._mgr is not None:
      try:
        self._mgr.check_for_errors()
      except Exception as e:
        raise _save_error(self.directory, None, e) from e

  def wait(self) -> None:
    if self._mgr is not None:
      try:
        self._mgr.wait_until_finished()
      except Exception as e:
        raise _save_error(self.directory, None, e) from e

  def close(self) -> None:
    if self._mgr is not None:
      mgr, self._mgr = self._mgr, None
      try:
        mgr.close()
      except Exception as e:  # pylint: disable=broad-except  (already reported by save/wait)
        log.warning("closing the checkpoint manager of %s: %s", self.directory, e)

  def _check(self, step: int, item: str, target: PyTree) -> None:
    saved_tree = saved_tree_metadata(self.directory / str(step) / item)
    check_tree_matches(item, saved_tree, target, f"{self.directory / str(step)}")

  def restore_step(self, step: int, abstract_state: PyTree | None,
                   abstract_extras: dict[str, PyTree] | None) -> tuple[PyTree, dict, dict]:
    """(state, extras, meta) at `step`, laid out like the abstract trees (their shardings)."""
    meta = from_jsonable(self.read_meta(step))
    keys = meta.get("extras_keys", [])
    args = {"meta": ocp.args.JsonRestore()}
    abstract_state = _with_sharding(abstract_state)
    abstract_extras = _with_sharding(abstract_extras)
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
        self._check(step, EXTRAS_PREFIX + k, abstract_extras[k])
        args[EXTRAS_PREFIX + k] = ocp.args.StandardRestore(abstract_extras[k])
    out = self.manager.restore(step, args=ocp.args.Composite(**args))
    extras = dict(abstract_extras or {})
    for k in keys:
      if EXTRAS_PREFIX + k in out and out[EXTRAS_PREFIX + k] is not None:
        extras[k] = out[EXTRAS_PREFIX + k]
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
      except Exception as e:  # pylint: disable=broad-except
        # Damaged files raise anything (Orbax/tensorstore: bare Exception, ValueError, OSError…);
        # the step is moved aside, not deleted, so nothing is lost if this was not corruption.
        _quiet_abandoned_reads()
        self._set_aside(step, e)
    return None

  def _set_aside(self, step: int, err: Exception) -> None:
    src = self.directory / str(step)
    dst_root = self.workdir / CORRUPT_DIR
    msg = (f"checkpoint at step {step} ({src}) is unreadable ({type(err).__name__}: "
           f"{str(err)[:300]}); moving it to {dst_root} and falling back to the previous one")
    log.warning(msg)
    print(f"WARNING: {msg}", flush=True)
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
      except Exception as e:  # pylint: disable=broad-except
        _quiet_abandoned_reads()
        msg = (f"checkpoint at step {s} in {self.directory} is unreadable ({type(e).__name__}: "
               f"{str(e).splitlines()[0][:200] if str(e) else ''}); trying the previous one")
        log.warning(msg)
        print(f"WARNING: {msg}", file=sys.stderr, flush=True)
    raise CheckpointUnreadableError(
        f"no readable checkpoint in {self.directory}: all {len(steps)} step(s) are damaged; "
        "retrain, or point to another checkpoint")

  def _restore_export_step(self, step: int) -> tuple[PyTree, dict]:
    meta = from_jsonable(self.read_meta(step))
    target = abstract_tree(saved_tree_metadata(self.directory / str(step) / "export"),
                       _default_sharding())
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


# ----------------------------------------------------------------------------- deployable models


def save_model_checkpoint(path: str | os.PathLike, model_name: str, model_kwargs: dict,
                          params: PyTree, meta: dict | None = None,
                          extra_items: dict[str, PyTree] | None = None) -> pathlib.Path:
  """Writes a deployable model (params + JSON meta) to the folder `path` (overwritten).

  meta gets `model`, `model_kwargs`, `versions` added; `scale` is taken from the kwargs when not
  given. `extra_items` are more pytrees saved beside the params as their own items (e.g. an MSSR
  level map); read them with `load_model_item`. Load the model back with `load_model_checkpoint`.
  """
  path = pathlib.Path(path).absolute()
  full_kwargs = registry.model_kwargs(model_name, **dict(model_kwargs))  # validates the name/keys
  meta = dict(meta or {})
  extra_items = dict(extra_items or {})
  clash = sorted(set(extra_items) & {"params", "meta"})
  if clash:
    raise ValueError(f"extra item names {clash} are reserved for the model itself")
  meta.update(model=model_name, model_kwargs=to_jsonable(dict(model_kwargs)),
              versions=versions(), kind="model", extra_items=sorted(extra_items))
  meta.setdefault("scale", full_kwargs.get("scale"))
  items = {k: ocp.args.StandardSave(v) for k, v in extra_items.items()}
  with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
    ckptr.save(path, args=ocp.args.Composite(params=ocp.args.StandardSave(params),
                                              meta=ocp.args.JsonSave(to_jsonable(meta)), **items),
               force=True)
  return path


def _model_folder(path: str | os.PathLike) -> pathlib.Path:
  """A model checkpoint folder, or the `model/` folder inside a workdir."""
  path = pathlib.Path(path).absolute()
  if (path / MODEL_DIR / "meta").is_dir():
    return path / MODEL_DIR
  return path


def load_model_item(path: str | os.PathLike, item: str) -> PyTree | None:
  """The extra item `item` of a model checkpoint (or of a workdir's `model/`), on the host;
  None when the checkpoint has no such item."""
  folder = _model_folder(path) / item
  if not folder.is_dir():
    return None
  target = abstract_tree(saved_tree_metadata(folder), _default_sharding())
  with ocp.StandardCheckpointer() as ck:
    return jax.device_get(ck.restore(folder, target))


def _kwargs_for_build(kw: dict) -> dict:
  return {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}


def load_model_checkpoint(path: str | os.PathLike, step: int | None = None):
  """(model, params, meta) from a model checkpoint folder or a training workdir.

  Accepted: a folder written by `save_model_checkpoint`; a workdir holding such a folder as
  `model/`; a training workdir (its `checkpoints/`, best by validation PSNR else latest, or
  `step`). The model is rebuilt with `registry.build_model(meta["model"], **meta["model_kwargs"])`
  and the params are checked against it (a mismatch names the leaf).
  """
  _quiet_abandoned_reads()
  path = pathlib.Path(path).absolute()
  if not path.exists():
    raise CheckpointNotFoundError(f"no checkpoint at {path}")
  if (path / MODEL_DIR / "meta").is_dir() and step is None:
    path = path / MODEL_DIR
  if (path / "params").is_dir() and (path / "meta").is_dir():
    try:
      meta = from_jsonable(json.loads((path / "meta" / "metadata").read_text()))
      target = abstract_tree(saved_tree_metadata(path / "params"), _default_sharding())
      with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
        params = ckptr.restore(path, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(target)))["params"]
    except Exception as e:  # pylint: disable=broad-except  (damaged files raise anything)
      _quiet_abandoned_reads()
      raise CheckpointUnreadableError(
          f"model checkpoint {path} is unreadable ({type(e).__name__}: "
          f"{str(e).splitlines()[0][:200] if str(e) else ''}); re-export or re-import it") from e
  elif (path / CKPT_DIR).is_dir() or path.name == CKPT_DIR:
    workdir = path.parent if path.name == CKPT_DIR else path
    ck = TrainCheckpointer(workdir, read_only=True)
    params, meta = ck.restore_export(step)
    ck.close()
  else:
    raise CheckpointNotFoundError(
        f"{path} is neither a model checkpoint (params/ + meta/) nor a training workdir "
        f"({CKPT_DIR}/ inside)")
  if "model" not in meta or "model_kwargs" not in meta:
    raise CheckpointUnreadableError(f"checkpoint {path} has no model name/kwargs in its metadata")
  model = registry.build_model(meta["model"], **_kwargs_for_build(meta["model_kwargs"]))
  expected = jax.eval_shape(lambda: registry.init_params(model, jax.random.key(0)))
  check_tree_matches("params", params, expected, str(path))
  return model, params, meta
