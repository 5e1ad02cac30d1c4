"""Runs an experiment: train its runs (resumable), evaluate its rows (cached), decide its claims,
write the tables.

W/experiment.json   which experiment and budget W holds (a rerun must ask for the same)
W/.lock             held while a runner works in W (a second runner is refused)
W/<run>/            the engine's workdir of one run; run.json: steps, wall time, finished
W/<run>/eval.json   evaluated rows of that run (reference rows: W/reference/eval.json)
W/_subsets/         links to the first images of a set (budgets that evaluate a subset)
W/results.json, W/results.md
Rerunning resumes: finished runs are skipped, a cut run continues from its newest checkpoint (the
engine's own resume), evaluated rows are read back. Nothing is written outside W.
"""
import datetime
import os
import pathlib
import time

import jax

from memsr_jax import methods
from memsr_jax.data import folders
from memsr_jax.data import home
from memsr_jax.experiments import budgets
from memsr_jax.experiments import claims
from memsr_jax.experiments import exp_compress
from memsr_jax.experiments import records
from memsr_jax.experiments import report
from memsr_jax.experiments import rows as rows_lib
from memsr_jax.experiments import specs
from memsr_jax.train import workdir_lock
from memsr_jax.utils import cli
from memsr_jax.utils import console
from memsr_jax.utils import jsonio

REQUIRED_SETS = ("t91", "bsd200", "set5")
UsageError = cli.UsageError
_TORN = "delete it to start this run again from its checkpoints"


def _log(msg: str) -> None:
  console.say(f"[experiment] {msg}")


# ----------------------------------------------------------------------------- checks


def check_data(data_dir: str) -> None:
  for name in REQUIRED_SETS:
    try:
      folders.resolve(name, data_dir, root_flags=f"--data_dir (or ${folders.DATA_DIR_ENV})")
    except (FileNotFoundError, ValueError) as e:
      raise UsageError(f"{name} not found under --data_dir={data_dir} ({e}); point --data_dir "
                       "(or $MEMSR_DATA_DIR) at the folder holding T91, BSD200 and Set5, or "
                       f"fetch them: {home.FETCH} {' '.join(REQUIRED_SETS)}") from None


def prepare_workdir(workdir: pathlib.Path, experiment: str, budget: str) -> None:
  """W is created, or resumed when it holds the same experiment and budget; never taken over."""
  if workdir.exists() and not workdir.is_dir():
    raise UsageError(f"--workdir {workdir} is a file, not a folder")
  marker = workdir / "experiment.json"
  held = records.read_json(marker, what="it records which experiment W holds: delete it only "
                           "if W holds nothing else of value, or use another --workdir")
  if held is not None:
    if (held.get("experiment"), held.get("budget")) != (experiment, budget):
      raise UsageError(f"--workdir {workdir} holds experiment {held.get('experiment')} at "
                       f"budget {held.get('budget')}; use another workdir for {experiment} "
                       f"at {budget}")
    return
  if workdir.is_dir() and any(workdir.iterdir()):
    raise UsageError(f"--workdir {workdir} is not empty and holds no experiment.json: not "
                     "writing into it; give a new or empty folder")
  try:
    workdir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise UsageError(f"cannot create --workdir {workdir}: {e.strerror or e}") from None
  records.write_record(marker, {"experiment": experiment, "budget": budget})


# ----------------------------------------------------------------------------- training


def _train(config, run_dir: pathlib.Path) -> None:
  """What train.py does for a config (memsr_jax.methods.run)."""
  methods.run(config, run_dir)


def train_run(run: specs.TrainRun, workdir: pathlib.Path, train: bool = True) -> dict:
  """Trains (or resumes) one run; run.json accumulates the wall time over invocations.
  train=False (--no_train): a run not finished earlier is recorded as skipped, with why."""
  run_dir = workdir / run.name
  path = run_dir / "run.json"
  info = records.read_json(path, {"steps": run.steps, "wall_s": 0.0, "finished": False,
                                  "invocations": 0}, what=_TORN)
  if run.skip:
    _log(f"run {run.name}: skipped: {run.skip}")
    return {**info, "skipped": run.skip}
  if info["finished"]:
    _log(f"run {run.name}: finished earlier ({info['steps']} steps, {info['wall_s']:.0f} s); "
         "skipping")
    return info
  if not train:
    why = "not finished when the results were written (--no_train)"
    _log(f"run {run.name}: skipped: {why}")
    return {**info, "skipped": why}
  _log(f"run {run.name}: training {run.steps} steps in {run_dir}"
       + (" (resuming)" if info["invocations"] else ""))
  info["invocations"] += 1
  records.write_record(path, info)  # a hard kill loses only this invocation's time
  t0 = time.perf_counter()
  try:
    _train(run.config, run_dir)
    info["finished"] = True
  finally:
    info["wall_s"] += time.perf_counter() - t0
    records.write_record(path, info)
  return info


# ----------------------------------------------------------------------------- the whole thing


def device_info() -> dict:
  d = jax.devices()[0]
  return {"platform": d.platform, "device_kind": d.device_kind, "count": jax.device_count()}


def _extra(name: str, workdir: pathlib.Path, exp, rows: list[dict]) -> dict:
  """What a table cannot show: MemSR's conversion check, MSSR's storage."""
  if name == "memsr_x4":
    return {"conversion": records.read_json(
        workdir / "winning_distill" / "convert" / "convert.json", what=_TORN)}
  if name == "mssr_x2":
    model = workdir / "mssr" / "model"
    on_disk = sum(f.stat().st_size for f in model.rglob("*") if f.is_file()) if model.is_dir() \
        else None
    levels = [r.get("nonzero_params") for r in rows
              if r["source"] == "mssr_level" and r["run"] == "mssr"]
    return {"storage": {
        "scalable_checkpoint_bytes_on_disk": on_disk,
        "separate_models_float32_bytes": 4 * sum(levels) if None not in levels else None,
        "separate_models_note": "one float32 model per level holding only its non-zeros (no "
                                "index overhead): a lower bound for separate sparse models"}}
  return {}


def _rows(exp, runs: dict, workdir: pathlib.Path, sets, signature, data_dir) -> list[dict]:
  out_rows = []
  for row in exp.rows:
    out = {"row": row.label, "run": row.run, "source": row.source[0], "steps": row.steps,
           "note": row.note}
    skip = row.note if row.source[0] == "torch" and row.note else runs.get(row.run, {}).get(
        "skipped", "")
    if skip:
      out["skipped"] = skip
    else:
      out.update(rows_lib.evaluate_row(row, exp, workdir, sets, signature, data_dir, _log))
      if row.run:
        out["wall_s"] = runs[row.run]["wall_s"]
    out_rows.append(out)
  return out_rows


def run(name: str, budget: str, workdir, data_dir: str, weights_dir: str, command: str,
        sets: tuple[str, ...] = (), seeds: int | None = None, teacher: str = "",
        train: bool = True) -> dict:
  """Runs (or resumes) experiment `name` at `budget` in `workdir`; returns results.json's dict.
  `sets` replaces the budget's evaluation sets; `seeds` the budget's seeds of the seeded runs
  (the relative claims' arms); `teacher` is compress_x2's distillation teacher checkpoint;
  train=False evaluates and decides with the runs finished so far (the others are skipped)."""
  if budget not in budgets.BUDGETS:
    raise UsageError(f"unknown budget {budget!r}; use one of {budgets.BUDGETS}")
  if name not in specs.NAMES:
    raise UsageError(f"unknown experiment {name!r}; use one of {specs.NAMES}")
  seeds = budgets.SEEDS[budget] if seeds is None else int(seeds)
  if seeds < 1:
    raise UsageError(f"--seeds must be at least 1, got {seeds}")
  if teacher and name != "compress_x2":
    raise UsageError("--teacher is compress_x2's distillation teacher; other experiments "
                     "train their own")
  if teacher and not pathlib.Path(teacher).exists():
    raise UsageError(f"--teacher {teacher} not found")
  if teacher:
    exp_compress.check_teacher(teacher)
  workdir = pathlib.Path(workdir).absolute()
  data_dir = str(pathlib.Path(data_dir).absolute())
  check_data(data_dir)
  prepare_workdir(workdir, name, budget)
  if not os.access(workdir, os.W_OK | os.X_OK):
    raise UsageError(f"--workdir {workdir} is not writable; give a writable folder")
  with workdir_lock.hold(workdir):
    return _run_locked(name, budget, workdir, data_dir, weights_dir, command, sets, seeds,
                       teacher, train)


def _run_locked(name, budget, workdir, data_dir, weights_dir, command, sets, seeds, teacher,
                train):
  t_start = time.perf_counter()
  if budget == "gpu8" and jax.default_backend() == "cpu":
    _log("warning: budget gpu8 is sized for one H100/H200; on this CPU it takes hours")
  exp = specs.build(name, budget, data_dir, weights_dir, str(workdir), seeds, teacher)
  runs = {r.name: train_run(r, workdir, train) for r in exp.runs}
  sets = rows_lib.eval_sets(budget, data_dir, workdir, exp.scale, tuple(sets))
  signature = {"sets": [n for n, *_ in sets], "max_images": budgets.EVAL[budget]["max_images"],
               "data": rows_lib.data_fingerprint(sets)}
  rows = _rows(exp, runs, workdir, sets, signature, data_dir)
  claim_sets = tuple(x for x in specs.CLAIM_SETS if x in signature["sets"])
  extra = _extra(name, workdir, exp, rows)
  results = {
      "experiment": name, "title": exp.title, "budget": budget,
      "claims": claims.decide(exp.claims, rows, budget, seeds, exp.scale, claim_sets,
                              extra),
      "command": command, "device": device_info(),
      "precision": "float32 (params, activations and optimizer state)",
      "jax_version": jax.__version__,
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "data_dir": data_dir, "train_sets": specs.TRAIN_SETS, "scale": exp.scale,
      "eval": {"sets": signature["sets"], "max_images": signature["max_images"],
               "data_fingerprint": signature["data"], "precision": rows_lib.PRECISION,
               "protocol": "Y channel, border = scale, MATLAB bicubic LR"},
      "seeds": seeds, "shrunk": budgets.shrunk(name, budget), "settings": exp.settings,
      "memory_hr": list(exp.memory_hr) if exp.columns else None,
      "columns": list(exp.columns),
      "runs": runs, "rows": rows, "extra": extra,
      "wall_s_this_invocation": time.perf_counter() - t_start,
  }
  records.write_record(workdir / "results.json", results)
  md = report.markdown(jsonio.to_jsonable(results), exp.columns)
  records.write_text(workdir / "results.md", md)
  print(md, flush=True)
  _log(f"results: {workdir / 'results.json'}, {workdir / 'results.md'}")
  return results
