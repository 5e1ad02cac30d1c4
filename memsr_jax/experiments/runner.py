"""Runs an experiment: train its runs (resumable), evaluate its rows (cached), write the tables.

W/experiment.json   which experiment and budget W holds (a rerun must ask for the same)
W/<run>/            the engine's workdir of one run; run.json: steps, wall time, finished
W/<run>/eval.json   evaluated rows of that run (reference rows: W/reference/eval.json)
W/results.json, W/results.md
Rerunning resumes: finished runs are skipped, a cut run continues from its newest checkpoint (the
engine's own resume), evaluated rows are read back.
"""
import datetime
import functools
import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax import cli
from memsr_jax import evaluation
from memsr_jax import methods
from memsr_jax import pytrees
from memsr_jax.data import folders
from memsr_jax.experiments import budgets
from memsr_jax.experiments import report
from memsr_jax.experiments import specs
from memsr_jax.image import bicubic
from memsr_jax.interop import torch_import
from memsr_jax.measure import cost
from memsr_jax.methods.mssr import scalable
from memsr_jax.models import plain
from memsr_jax.models import registry

REQUIRED_SETS = ("t91", "bsd200", "set5")


class UsageError(cli.UserError):
  """A problem with the command or its inputs: one line on stderr, exit status 2."""


def _log(msg: str) -> None:
  print(f"[experiment] {msg}", flush=True)


def _read_json(path: pathlib.Path, default=None):
  return json.loads(path.read_text()) if path.is_file() else default


def _write_json(path: pathlib.Path, obj) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(".tmp")
  tmp.write_text(json.dumps(obj, indent=1, default=_jsonable))
  tmp.replace(path)


def _jsonable(x):
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, (np.floating,)):
    return float(x)
  if isinstance(x, tuple):
    return list(x)
  raise TypeError(f"not JSON serializable: {type(x)}")


# ----------------------------------------------------------------------------- checks


def check_data(data_dir: str) -> None:
  for name in REQUIRED_SETS:
    try:
      folders.resolve(name, data_dir)
    except (FileNotFoundError, ValueError) as e:
      raise UsageError(f"{name} not found under --data_dir={data_dir} ({e}); point --data_dir "
                       "(or $MEMSR_DATA_DIR) at the folder holding T91, BSD200 and Set5") from None


def prepare_workdir(workdir: pathlib.Path, experiment: str, budget: str) -> None:
  """W is created, or resumed when it holds the same experiment and budget; never taken over."""
  if workdir.exists() and not workdir.is_dir():
    raise UsageError(f"--workdir {workdir} is a file, not a folder")
  marker = workdir / "experiment.json"
  held = _read_json(marker)
  if held is not None:
    if (held.get("experiment"), held.get("budget")) != (experiment, budget):
      raise UsageError(f"--workdir {workdir} holds experiment {held.get('experiment')} at "
                       f"budget {held.get('budget')}; use another workdir for {experiment} "
                       f"at {budget}")
    return
  if workdir.is_dir() and any(workdir.iterdir()):
    raise UsageError(f"--workdir {workdir} is not empty and holds no experiment.json: not "
                     "writing into it; give a new or empty folder")
  _write_json(marker, {"experiment": experiment, "budget": budget})


# ----------------------------------------------------------------------------- training


def _train(config, run_dir: pathlib.Path) -> None:
  """What train.py does for a config (memsr_jax.methods.run)."""
  methods.run(config, run_dir)


def train_run(run: specs.Run, workdir: pathlib.Path) -> dict:
  """Trains (or resumes) one run; run.json accumulates the wall time over invocations."""
  run_dir = workdir / run.name
  path = run_dir / "run.json"
  info = _read_json(path, {"steps": run.steps, "wall_s": 0.0, "finished": False,
                           "invocations": 0})
  if run.skip:
    _log(f"run {run.name}: skipped: {run.skip}")
    return {**info, "skipped": run.skip}
  if info["finished"]:
    _log(f"run {run.name}: finished earlier ({info['steps']} steps, {info['wall_s']:.0f} s); "
         "skipping")
    return info
  _log(f"run {run.name}: training {run.steps} steps in {run_dir}"
       + (" (resuming)" if info["invocations"] else ""))
  info["invocations"] += 1
  _write_json(path, info)  # a hard kill (slot ended) loses only this invocation's wall time
  t0 = time.perf_counter()
  try:
    _train(run.config, run_dir)
    info["finished"] = True
  finally:
    info["wall_s"] += time.perf_counter() - t0
    _write_json(path, info)
  return info


# ----------------------------------------------------------------------------- evaluation


def eval_sets(budget: str, data_dir: str, workdir: pathlib.Path, scale: int,
              only: tuple[str, ...] = ()) -> list[tuple]:
  """[(name, dataset argument)]: Set5, Set14 and the extra benchmarks present (or the sets in
  `only`); with max_images, a folder of links to the first images (the protocol then runs on
  that folder)."""
  e = dict(budgets.EVAL[budget])
  if only:
    e.update(sets=tuple(only), extra=())
  out = []
  for i, name in enumerate(tuple(e["sets"]) + tuple(e["extra"])):
    try:
      pairs = folders.list_pairs(name, data_dir, scale)
    except (FileNotFoundError, ValueError):
      if i < len(e["sets"]) and name != "set14":
        raise
      continue  # Set14 and the extra benchmarks are optional
    n = e["max_images"]
    if not n:
      out.append((name, name))
      continue
    sub = workdir / "_subsets" / f"{name}_first{n}"
    sub.mkdir(parents=True, exist_ok=True)
    for p in pairs[:n]:
      link = sub / p.hr_path.name
      if not link.exists():
        link.symlink_to(p.hr_path.resolve())
    out.append((name, str(sub)))
  return out


def _jit_predictor(model, params):
  fwd = jax.jit(lambda p, x: model.apply({"params": p}, x))
  return functools.partial(fwd, params)


def _bicubic_predictor(scale: int):
  return lambda lr: np.stack([bicubic.imresize_np(x, scale=scale) for x in np.asarray(lr)])


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


def _row_model(row: specs.Row, exp: specs.Experiment, workdir: pathlib.Path) -> tuple:
  """(predict_fn, info) of a row's model."""
  kind = row.source[0]
  if kind == "bicubic":
    return _bicubic_predictor(exp.scale), {"params": 0}
  if kind == "mssr_level":
    sr, _ = scalable.load_scalable(workdir / row.run / "model")
    sr = sr.at_level(row.source[1])
    st = sr.stats()
    total = pytrees.count_params(sr.params)
    info = {"params": total, "nonzero_params": st["nonzero_params"],
            "sparsity_prunable": st["sparsity"],
            "sparsity_network": 1.0 - st["nonzero_params"] / total}
    return sr, info
  if kind == "checkpoint":
    model, params, _ = ckpt_lib.load_model_checkpoint(workdir / row.run / row.source[1])
  elif kind == "torch":
    _, name, path = row.source
    params = torch_import.load_torch_weights(path, name, exp.scale)
    model = registry.build_model(name, scale=exp.scale)
  else:
    raise ValueError(f"row {row.label!r}: unknown source {row.source!r}")
  n = pytrees.count_params(params)
  info = {"params": n}
  if getattr(model, "bias_mode", None) == "map":  # MemSR's paper counts bias maps as vectors
    info["params_vector_bias"] = plain.param_counts(params)["n_params_vector_bias"]
  if "sparsity" in exp.columns:
    info.update(nonzero_params=n, sparsity_prunable=0.0, sparsity_network=0.0)
  if "memory" in exp.columns and row.measure:
    info["memory"] = memory_info(model, params, exp.memory_hr, exp.scale)
  if "macs" in exp.columns and row.measure:
    info.update(macs_info(model, params, exp.memory_hr, exp.scale))
  return _jit_predictor(model, params), info


def evaluate_row(row: specs.Row, exp: specs.Experiment, workdir: pathlib.Path, sets: list,
                 signature: dict, data_dir: str) -> dict:
  """The row's results, from its run's eval.json when evaluated before with the same sets."""
  if row.source[0] == "published":
    return {"results": {s: {f"x{exp.scale}": {"psnr": v, "ssim": None, "n_images": None}}
                        for s, v in row.source[1].items()}, "published": True}
  cache_path = workdir / (row.run or "reference") / "eval.json"
  cache = _read_json(cache_path, {})
  hit = cache.get(row.label)
  if hit is not None and hit.get("signature") == signature:
    _log(f"row {row.label!r}: evaluated earlier")
    return hit["row"]
  _log(f"row {row.label!r}: evaluating on {', '.join(n for n, _ in sets)}")
  t0 = time.perf_counter()
  predict, info = _row_model(row, exp, workdir)
  results = {}
  for name, arg in sets:
    r = evaluation.evaluate_dataset(predict, arg, exp.scale, data_dir)
    results[name] = {f"x{exp.scale}": {k: r[k] for k in ("psnr", "ssim", "n_images")}}
    if r["errors"]:
      results[name][f"x{exp.scale}"]["errors"] = r["errors"]
  out = {**info, "results": results, "eval_s": time.perf_counter() - t0}
  cache[row.label] = {"signature": signature, "row": out}
  _write_json(cache_path, cache)
  return out


# ----------------------------------------------------------------------------- the whole thing


def device_info() -> dict:
  d = jax.devices()[0]
  return {"platform": d.platform, "device_kind": d.device_kind, "count": jax.device_count()}


def memsr_extra(workdir: pathlib.Path, rows: list[dict], scale: int) -> dict:
  """The exact-conversion check and the claim's figures: student − teacher PSNR, memory ratio."""
  extra = {"conversion": _read_json(workdir / "winning_distill" / "convert" / "convert.json")}
  by = {r["row"]: r for r in rows}
  t, s = by.get("Teacher-S (residual)"), by.get("Plain-S, winning init + distillation")
  if t and s and "results" in t and "results" in s:
    key = f"x{scale}"
    extra["claim"] = {
        "psnr_student_minus_teacher": {
            n: s["results"][n][key]["psnr"] - t["results"][n][key]["psnr"]
            for n in t["results"] if n in s["results"]},
        "activation_memory_ratio_student_over_teacher":
            s["memory"]["xla_temp_bytes"] / max(t["memory"]["xla_temp_bytes"], 1),
        "peak_memory_ratio_student_over_teacher":
            s["memory"]["xla_peak_bytes"] / max(t["memory"]["xla_peak_bytes"], 1)}
  return extra


def run(name: str, budget: str, workdir, data_dir: str, weights_dir: str, command: str,
        sets: tuple[str, ...] = ()) -> dict:
  """Runs (or resumes) experiment `name` at `budget` in `workdir`; returns results.json's dict.
  `sets` replaces the budget's evaluation sets (rows are re-evaluated for a new choice)."""
  if budget not in budgets.BUDGETS:
    raise UsageError(f"unknown budget {budget!r}; use one of {budgets.BUDGETS}")
  if name not in specs.NAMES:
    raise UsageError(f"unknown experiment {name!r}; use one of {specs.NAMES}")
  workdir = pathlib.Path(workdir).absolute()
  data_dir = str(pathlib.Path(data_dir).absolute())
  check_data(data_dir)
  prepare_workdir(workdir, name, budget)
  t_start = time.perf_counter()
  if budget == "gpu8" and jax.default_backend() == "cpu":
    _log("warning: budget gpu8 is sized for one H100/H200; on this CPU it takes hours")
  exp = specs.build(name, budget, data_dir, weights_dir, str(workdir))

  runs = {r.name: train_run(r, workdir) for r in exp.runs}
  sets = eval_sets(budget, data_dir, workdir, exp.scale, tuple(sets))
  signature = {"sets": [n for n, _ in sets], "max_images": budgets.EVAL[budget]["max_images"]}
  rows = []
  for row in exp.rows:
    out = {"row": row.label, "run": row.run, "source": row.source[0], "steps": row.steps,
           "note": row.note}
    skip = row.note if row.source[0] == "torch" and row.note else runs.get(row.run, {}).get(
        "skipped", "")
    if skip:
      out["skipped"] = skip
    else:
      out.update(evaluate_row(row, exp, workdir, sets, signature, data_dir))
      if row.run:
        out["wall_s"] = runs[row.run]["wall_s"]
    rows.append(out)

  results = {
      "experiment": name, "title": exp.title, "claim": exp.claim, "budget": budget,
      "command": command, "device": device_info(),
      "precision": "float32 (params, activations and optimizer state)",
      "jax_version": jax.__version__,
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "data_dir": data_dir, "train_sets": specs.TRAIN_SETS, "scale": exp.scale,
      "eval": {"sets": signature["sets"], "max_images": signature["max_images"],
               "protocol": "Y channel, border = scale, MATLAB bicubic LR"},
      "shrunk": budgets.shrunk(name, budget), "settings": exp.settings,
      "memory_hr": list(exp.memory_hr) if exp.columns else None,
      "runs": runs, "rows": rows,
      "wall_s_this_invocation": time.perf_counter() - t_start,
  }
  if name == "memsr_x4":
    results["extra"] = memsr_extra(workdir, rows, exp.scale)
  _write_json(workdir / "results.json", results)
  md = report.markdown(results, exp.columns)
  (workdir / "results.md").write_text(md)
  print(md, flush=True)
  _log(f"results: {workdir / 'results.json'}, {workdir / 'results.md'}")
  return results


def finite(x) -> bool:
  return x is not None and math.isfinite(x)
