"""Evaluating an experiment's rows: the sets, each row's model and cost columns, and the cache.

Subsets (smoke: Set5's first image) are folders of links under W/_subsets/, rebuilt on every
invocation, so nothing is written beside the datasets. A row's cache entry (W/<run>/eval.json) is
keyed by the evaluated sets and a fingerprint of their files (resolved paths, sizes, mtimes): new
data re-evaluates the row.
"""
import hashlib
import math
import pathlib
import re
import shutil
import time

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax import evaluation
from memsr_jax.data import folders
from memsr_jax.experiments import base
from memsr_jax.experiments import budgets
from memsr_jax.experiments import records
from memsr_jax.inference import predictor
from memsr_jax.inference import source as source_lib
from memsr_jax.measure import cost
from memsr_jax.methods.mssr import masks
from memsr_jax.models import plain
from memsr_jax.utils import cli
from memsr_jax.utils import pytrees

PRECISION = "highest"  # the precision policy's name: the protocol's numbers on every backend
INF_NOTE = ("PSNR is infinite (the output equals the ground truth on every pixel): recorded as "
            "null")


def _slug(name: str) -> str:
  """A folder name for a set given by name or path: never absolute, never '..'."""
  tail = re.sub(r"[^A-Za-z0-9_.-]+", "_", pathlib.PurePath(name).name or "set").strip("._")
  return f"{tail or 'set'}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def eval_sets(budget: str, data_dir: str, workdir: pathlib.Path, scale: int,
              only: tuple[str, ...] = ()) -> list[tuple]:
  """[(name, dataset argument, pairs)]: Set5, Set14 and the extra benchmarks present (or the sets
  in `only`); with max_images, a folder of links to the first images under W/_subsets/."""
  e = dict(budgets.EVAL[budget])
  if only:
    e.update(sets=tuple(only), extra=())
  out = []
  for i, name in enumerate(tuple(e["sets"]) + tuple(e["extra"])):
    try:
      pairs = folders.list_pairs(name, data_dir, scale)
    except (FileNotFoundError, ValueError) as err:
      if i < len(e["sets"]) and name != "set14":
        raise cli.UsageError(f"evaluation set {name!r}: {err}") from None
      continue  # Set14 and the extra benchmarks are optional
    n = e["max_images"]
    if not n:
      out.append((name, name, pairs))
      continue
    sub = workdir / "_subsets" / f"{_slug(name)}_first{n}"
    if sub.exists():  # ours (under the workdir): rebuilt so it never holds stale links
      shutil.rmtree(sub)
    sub.mkdir(parents=True)
    for p in pairs[:n]:
      (sub / p.hr_path.name).symlink_to(p.hr_path.resolve())
    out.append((name, str(sub), pairs[:n]))
  return out


def data_fingerprint(sets: list[tuple]) -> str:
  """sha1 over every evaluated file's resolved path, size and mtime."""
  h = hashlib.sha1()
  for name, _, pairs in sets:
    for p in pairs:
      for f in (p.hr_path, p.lr_path):
        if f is not None:
          r = pathlib.Path(f).resolve()
          st = r.stat()
          h.update(f"{name}|{r}|{st.st_size}|{st.st_mtime_ns}\n".encode())
  return h.hexdigest()


def _abstract(tree):
  return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.float32), tree)


def memory_info(model, params, hr: tuple[int, int], scale: int) -> dict:
  """XLA's buffer assignment for one forward pass with an (h, w) output: peak (params + input +
  output + temporaries) and temporaries (the activations); plain nets also layer by layer."""
  h, w = hr
  x = jax.ShapeDtypeStruct((1, h // scale, w // scale, 3), jnp.float32)
  p = _abstract(params)
  xc, _ = cost.xla_cost(lambda p, x: model.apply({"params": p}, x), p, x)
  out = {"hr": [h, w], "xla_peak_bytes": xc.peak_bytes, "xla_temp_bytes": xc.temp_bytes,
         "argument_bytes": xc.argument_bytes}
  if isinstance(model, plain.PlainNet):
    lw = cost.plain_layerwise_peak(model, p, x.shape)
    out.update(layerwise_peak_bytes=lw["layerwise_peak_bytes"],
               two_feature_maps_bytes=lw["two_feature_maps_bytes"])
  return out


def macs_info(model, params, hr: tuple[int, int], scale: int) -> dict:
  h, w = hr
  x = jax.ShapeDtypeStruct((1, h // scale, w // scale, 3), jnp.float32)
  m = cost.count_macs(lambda p, x: model.apply({"params": p}, x), _abstract(params), x)
  return {"macs": m["macs"], "macs_hr": [h, w]}


def _sparsity(params) -> dict:
  """Non-zeros of a (possibly pruned) dense checkpoint, over the network and over MSSR's pruned
  set (None for a model without that set, e.g. IMDN)."""
  leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(params)]
  nz = int(sum(np.count_nonzero(x) for x in leaves))
  out = {"nonzero_params": nz, "sparsity_network": 1.0 - nz / sum(x.size for x in leaves),
         "sparsity_prunable": None}
  try:
    flags = jax.tree_util.tree_leaves(masks.prunable_tree(params, masks.DEFAULT_PRUNABLE))
  except ValueError:
    return out
  pr = [x for x, f in zip(leaves, flags) if f]
  out["sparsity_prunable"] = 1.0 - sum(np.count_nonzero(x) for x in pr) / max(
      sum(x.size for x in pr), 1)
  return out


def _source(row: base.Row, exp: base.Experiment, workdir: pathlib.Path):
  """The row's model through the one loader (memsr_jax.inference.source.load_source)."""
  kind = row.source[0]
  if kind == "mssr_level":
    return source_lib.load_source(workdir / row.run / "model", level=row.source[1])
  if kind == "checkpoint":
    step = row.source[2] if len(row.source) > 2 else None
    return source_lib.load_source(workdir / row.run / row.source[1], step=step)
  if kind == "torch":
    return source_lib.load_source(preset=row.source[1], scale=exp.scale,
                                  torch_weights=row.source[2])
  if kind == "arch":
    return source_lib.load_source(preset=row.source[1], scale=exp.scale,
                                  overrides=row.source[2])
  raise ValueError(f"row {row.label!r}: unknown source {row.source!r}")


def row_model(row: base.Row, exp: base.Experiment, workdir: pathlib.Path) -> tuple:
  """(predict_fn or None, info) of a row's model; every model row is predicted by the one
  predictor (inference.predictor) under the precision policy PRECISION, recorded per row."""
  if row.source[0] == "bicubic":
    return predictor.bicubic_predictor(exp.scale), {"params": 0,
                                                     "precision": "float64 (NumPy bicubic)"}
  src = _source(row, exp, workdir)
  model, params = src.model, src.params
  info = {"params": pytrees.count_params(params), "precision": PRECISION}
  if "level" in src.meta:  # one size of a scalable checkpoint
    st = src.meta["level"]
    info.update(nonzero_params=st["nonzero_params"], sparsity_prunable=st["sparsity"],
                sparsity_network=st["network_sparsity"])
  elif "sparsity" in exp.columns and row.source[0] != "arch":
    info.update(_sparsity(params))
  if getattr(model, "bias_mode", None) == "map":  # MemSR's paper counts bias maps as vectors
    info["params_vector_bias"] = plain.param_counts(params)["n_params_vector_bias"]
  if "memory" in exp.columns and row.measure:
    info["memory"] = memory_info(model, params, exp.memory_hr, exp.scale)
  if "macs" in exp.columns and row.measure:
    info.update(macs_info(model, params, exp.memory_hr, exp.scale))
  evaluate = row.evaluate and row.source[0] != "arch"
  return (predictor.model_predictor(model, params, PRECISION) if evaluate else None), info


def _published(row: base.Row, scale: int) -> dict:
  return {"results": {s: {f"x{scale}": {"psnr": v, "ssim": None, "n_images": None}}
                      for s, v in row.source[1].items()}, "published": True}


def evaluate_row(row: base.Row, exp: base.Experiment, workdir: pathlib.Path, sets: list,
                 signature: dict, data_dir: str, log) -> dict:
  """The row's results, from its run's eval.json when evaluated before with the same sets and
  data."""
  if row.source[0] == "published":
    return _published(row, exp.scale)
  cache_path = workdir / (row.run or "reference") / "eval.json"
  cache = records.read_json(cache_path, {})
  hit = cache.get(row.label)
  if hit is not None and hit.get("signature") == signature:
    log(f"row {row.label!r}: evaluated earlier")
    return hit["row"]
  log(f"row {row.label!r}: " + (f"evaluating on {', '.join(n for n, *_ in sets)}"
                                if row.evaluate else "cost columns only"))
  t0 = time.perf_counter()
  predict, info = row_model(row, exp, workdir)
  results, notes = {}, []
  for name, arg, _ in (sets if predict is not None else ()):
    r = evaluation.evaluate_dataset(predict, arg, exp.scale, data_dir, show_progress=True)
    cell = {k: r[k] for k in ("psnr", "ssim", "n_images")}
    if cell["psnr"] is not None and not math.isfinite(cell["psnr"]):
      cell["psnr"] = None
      notes.append(f"{name}: {INF_NOTE}")
    if r["errors"]:
      cell["errors"] = r["errors"]
    results[name] = {f"x{exp.scale}": cell}
  out = {**info, "results": results, "eval_s": time.perf_counter() - t0}
  if notes:
    out["eval_note"] = "; ".join(notes)
  cache[row.label] = {"signature": signature, "row": out}
  records.write_record(cache_path, cache)
  return out
