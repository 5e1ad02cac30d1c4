"""The deployable model artifact: a folder with the items `params` and `meta` (model name, kwargs,
scale, versions) and any named extra pytrees (e.g. an MSSR level map).

`load_model_checkpoint` reads such a folder, a workdir holding one as `model/`, or a training
workdir (its best, else latest, readable step's `export` item) alike.
"""
import os
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

from memsr_jax.checkpoints import layout
from memsr_jax.checkpoints import orbax_io
from memsr_jax.checkpoints.errors import CheckpointNotFoundError
from memsr_jax.checkpoints.errors import CheckpointUnreadableError
from memsr_jax.checkpoints.training import TrainCheckpointer
from memsr_jax.checkpoints.tree_check import check_tree_matches
from memsr_jax.models import registry
from memsr_jax.utils import jsonio

PyTree = Any
RESERVED_ITEMS = ("params", "meta")


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
  clash = sorted(set(extra_items) & set(RESERVED_ITEMS))
  if clash:
    raise ValueError(f"extra item names {clash} are reserved for the model itself")
  meta.update(model=model_name, model_kwargs=jsonio.to_jsonable(dict(model_kwargs)),
              versions=orbax_io.versions(), kind="model", extra_items=sorted(extra_items))
  meta.setdefault("scale", full_kwargs.get("scale"))
  items = {k: ocp.args.StandardSave(v) for k, v in extra_items.items()}
  with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
    ckptr.save(path, args=ocp.args.Composite(
        params=ocp.args.StandardSave(params), meta=ocp.args.JsonSave(jsonio.to_jsonable(meta)),
        **items), force=True)
  return path


def load_model_item(path: str | os.PathLike, item: str) -> PyTree | None:
  """The extra item `item` of a model checkpoint (or of a workdir's `model/`), on the host;
  None when the checkpoint has no such item."""
  folder = layout.model_folder(path) / item
  if not folder.is_dir():
    return None
  orbax_io.quiet()
  with ocp.StandardCheckpointer() as ck:
    return jax.device_get(ck.restore(folder, orbax_io.saved_target(folder)))


def _kwargs_for_build(kw: dict) -> dict:
  return {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}


def _read_model_folder(path: pathlib.Path) -> tuple[PyTree, dict]:
  try:
    meta = jsonio.from_jsonable(layout.read_meta(path))
    target = orbax_io.saved_target(path / "params")
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
      params = ckptr.restore(path, args=ocp.args.Composite(
          params=ocp.args.StandardRestore(target)))["params"]
  except Exception as e:  # damaged files raise anything
    orbax_io.quiet_abandoned_reads()
    raise CheckpointUnreadableError(
        f"model checkpoint {path} is unreadable ({type(e).__name__}: {orbax_io.first_line(e)}); "
        "re-export or re-import it") from e
  return params, meta


def load_model_checkpoint(path: str | os.PathLike, step: int | None = None):
  """(model, params, meta) from a model checkpoint folder or a training workdir.

  Accepted: a folder written by `save_model_checkpoint`; a workdir holding such a folder as
  `model/`; a training workdir (its `checkpoints/`, best by validation PSNR else latest, or
  `step`). The model is rebuilt with `registry.build_model(meta["model"], **meta["model_kwargs"])`
  and the params are checked against it (a mismatch names the leaf).
  """
  orbax_io.quiet()
  path = pathlib.Path(path).absolute()
  if not path.exists():
    raise CheckpointNotFoundError(f"no checkpoint at {path}")
  if (path / layout.MODEL_DIR / "meta").is_dir() and step is None:
    path = path / layout.MODEL_DIR
  if layout.is_model_folder(path):
    params, meta = _read_model_folder(path)
  elif (path / layout.CKPT_DIR).is_dir() or path.name == layout.CKPT_DIR:
    workdir = path.parent if path.name == layout.CKPT_DIR else path
    ck = TrainCheckpointer(workdir, read_only=True)
    params, meta = ck.restore_export(step)
    ck.close()
  else:
    raise CheckpointNotFoundError(
        f"{path} is neither a model checkpoint (params/ + meta/) nor a training workdir "
        f"({layout.CKPT_DIR}/ inside)")
  if "model" not in meta or "model_kwargs" not in meta:
    raise CheckpointUnreadableError(f"checkpoint {path} has no model name/kwargs in its metadata")
  model = registry.build_model(meta["model"], **_kwargs_for_build(meta["model_kwargs"]))
  expected = jax.eval_shape(lambda: registry.init_params(model, jax.random.key(0)))
  check_tree_matches("params", params, expected, str(path))
  return model, params, meta
