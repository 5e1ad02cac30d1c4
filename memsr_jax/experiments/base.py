"""What an experiment is made of: runs (what trains, in W/<run>/), rows (what the table shows),
its claims, and the helpers every experiment's builder (exp_*.py) shares.

Every config is derived from the project's recipes (memsr/mssr/compress recipes, configs/edsr and
configs/compress files) with the budget's overrides; nothing here re-states a recipe.
"""
import copy
import dataclasses
import importlib.util
import pathlib
from typing import Any

import jax
import ml_collections

from memsr_jax.experiments import claims
from memsr_jax.models import registry
from memsr_jax.utils import config_paths

TRAIN_SETS = "t91+bsd200"  # the classic 291-image training set
CLAIM_SETS = ("set5", "set14")  # the papers' claims are on these (whichever of them are evaluated)


@dataclasses.dataclass
class TrainRun:
  """One training run in W/<name>/ through the engine (train.py's dispatch on config.method)."""
  name: str
  config: ml_collections.ConfigDict
  steps: int  # training steps of the run, all stages together
  skip: str = ""  # reason this run cannot run here ("" = it runs)


@dataclasses.dataclass
class Row:
  """A table row. source: ("bicubic",) | ("checkpoint", path inside W/<run>, or absolute[, step]) |
  ("mssr_level", k) | ("torch", model, weights path) | ("published", {set: psnr}) |
  ("arch", model, kwargs): an untrained model, for its cost columns only (evaluate=False)."""
  label: str
  run: str  # the run it comes from ("" = none)
  source: tuple
  steps: int | None = None
  note: str = ""
  measure: bool = True  # compute the experiment's cost columns (memory, MACs) for this row
  evaluate: bool = True  # evaluate PSNR / SSIM (False: cost columns only)


@dataclasses.dataclass
class Experiment:
  name: str
  scale: int
  title: str
  claims: list
  runs: list[TrainRun]
  rows: list[Row]
  seeded: tuple[str, ...] = ()  # runs trained once per seed (the relative claims' arms)
  columns: tuple[str, ...] = ()  # extra columns: "memory", "macs", "sparsity"
  settings: dict = dataclasses.field(default_factory=dict)
  memory_hr: tuple[int, int] = (720, 1280)  # output (h, w) of the memory/MACs figures


def config_file(rel: str, *args) -> ml_collections.ConfigDict:
  """get_config(*args) of the config `rel` (e.g. "edsr/baseline.py"), found by the shared config
  finder (memsr_jax.utils.config_paths)."""
  return config_paths.load_config(rel, *args)


def train_data(c, s: dict, data_dir: str, steps: int) -> None:
  """The budget's data and bookkeeping overrides, common to every run: 291 images, no validation
  during training (rows are evaluated once at the end, so nothing is picked on Set5), and a
  checkpoint every quarter of `steps`, all kept (the rows at half and 75 % of the steps read
  them)."""
  c.data.dataset = TRAIN_SETS
  c.data.root = data_dir
  c.data.skip_small = True  # T91 has images smaller than a ×4 HR patch
  c.data.lr_patch = s["lr_patch"]
  c.data.batch_size = s["batch"]
  c.data.num_workers = s["num_workers"]
  c.data.cache = s.get("cache", True)
  c.val.dataset = ""
  c.val.every_steps = 0
  c.ckpt_every = max(1, steps // 4)
  c.keep_ckpts = 5  # the quarters, and the last step when `steps` is not a multiple of 4
  c.log_every = min(100, c.ckpt_every)
  c.progress = False
  c.tensorboard = False


def set_values(node, values: dict) -> None:
  for k, v in values.items():
    node[k] = v


def params_of(model_name: str, kwargs: dict) -> Any:
  model = registry.build_model(model_name, **kwargs)
  return jax.eval_shape(lambda: registry.init_params(model, jax.random.key(0)))


def registry_kwargs(name: str, overrides: dict) -> dict:
  kw = registry.model_kwargs(name, **overrides)
  kw.pop("scale", None)
  return kw


def with_seeds(exp: Experiment, seeds: int) -> Experiment:
  """Adds seeds 1..seeds−1 of the seeded runs (config.seed + k, run `<name>_seed<k>`) and their
  rows (label + " (seed k)"), each right after its seed-0 row."""
  if seeds <= 1:
    return exp
  runs, rows = list(exp.runs), []
  for r in exp.runs:
    if r.name in exp.seeded:
      for k in range(1, seeds):
        c = copy.deepcopy(r.config)
        c.seed = int(c.seed) + k
        _link_seed(c, exp.seeded, k)
        runs.append(TrainRun(f"{r.name}_seed{k}", c, r.steps, r.skip))
  for row in exp.rows:
    rows.append(row)
    if row.run in exp.seeded:
      rows += [dataclasses.replace(row, label=claims.seed_label(row.label, k),
                                   run=f"{row.run}_seed{k}") for k in range(1, seeds)]
  return dataclasses.replace(exp, runs=runs, rows=rows)


def _link_seed(config, seeded, k: int) -> None:
  """Points a seed-k copy at the seed-k copies of the seeded runs it reads (an absolute path
  ending in /<run>, e.g. MemSR students' teacher checkpoint)."""
  for key, v in config.items():
    if isinstance(v, ml_collections.ConfigDict):
      _link_seed(v, seeded, k)
    elif isinstance(v, str) and v.startswith("/") and pathlib.PurePath(v).name in seeded:
      config[key] = f"{v}_seed{k}"


def at_step(row: Row, path: str, steps: int, frac: float, suffix: str, every: int = 0) -> Row:
  """The same run's training checkpoint `path` near `frac` of its `steps` (the saved step at or
  below it; checkpoints every `every` steps, default a quarter), as row label + suffix: the
  relative rule's half-step rows and the gate's 75 % rows."""
  every = every or max(1, steps // 4)
  step = max(every, int(frac * steps) // every * every)
  return dataclasses.replace(row, label=row.label + suffix, source=("checkpoint", path, step),
                             steps=step, measure=False)


def gap_margin(better: str, worse: str, allowed: float, scale: int, extra=None):
  """margin(rows) for "row `better` is at most `allowed` dB below row `worse`" (allowed < 0:
  above): allowed − (PSNR(worse) − PSNR(better)), mean PSNR over those of CLAIM_SETS both rows
  were evaluated on."""

  def margin(rows):
    b, w = rows.get(better), rows.get(worse)
    sets = tuple(x for x in CLAIM_SETS
                 if all(x in ((r or {}).get("results") or {}) for r in (b, w)))
    pb, pw = claims.psnr(b, sets, scale), claims.psnr(w, sets, scale)
    figs = {"sets": "+".join(sets), f"{better} (dB)": pb, f"{worse} (dB)": pw}
    if extra:
      figs.update(extra(rows))
    if pb is None or pw is None:
      return None, figs
    figs["difference (dB)"] = pb - pw
    return allowed - (pw - pb), figs

  return margin


def torch_problem(weights: str) -> str:
  """Why official PyTorch weights cannot be used here ("" when they can)."""
  if importlib.util.find_spec("torch") is None:
    return "torch is not installed (pip install -r requirements-torch.txt)"
  if not pathlib.Path(weights).is_file():
    return f"weights not found at {weights}"
  return ""


def imdn_row(weights_dir: str, scale: int, label: str = "") -> Row:
  """IMDN ×scale with the official weights: the lightweight reference of the papers' tables."""
  weights = str(pathlib.Path(weights_dir) / "imdn" / f"IMDN_x{scale}.pth")
  return Row(label or f"IMDN ×{scale} (official weights)", "", ("torch", "imdn", weights),
             note=torch_problem(weights))
