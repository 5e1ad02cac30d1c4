"""The four experiments as data: runs (what trains, in W/<run>/) and rows (what the table shows).

Every config is derived from the project's recipes (memsr/mssr/compress recipes, configs/edsr and
configs/compress files) with the budget's overrides; nothing here re-states a recipe.
"""
import copy
import dataclasses
import importlib.util
import os
import pathlib
from typing import Any

import jax
import ml_collections

from memsr_jax import pytrees
from memsr_jax.experiments import budgets
from memsr_jax.methods.memsr import config as memsr_config
from memsr_jax.methods.mssr import config as mssr_config
from memsr_jax.methods.mssr import masks
from memsr_jax.models import registry

REPO = pathlib.Path(__file__).resolve().parents[2]
TRAIN_SETS = "t91+bsd200"  # the classic 291-image training set


@dataclasses.dataclass
class Run:
  """One training run in W/<name>/ through the engine (train.py's dispatch on config.method)."""
  name: str
  config: ml_collections.ConfigDict
  steps: int  # training steps of the run, all stages together
  skip: str = ""  # reason this run cannot run here ("" = it runs)


@dataclasses.dataclass
class Row:
  """A table row. source: ("bicubic",) | ("checkpoint", path inside W/<run>) |
  ("mssr_level", k) | ("torch", model, weights path) | ("published", {set: psnr})."""
  label: str
  run: str  # the run it comes from ("" = none)
  source: tuple
  steps: int | None = None
  note: str = ""
  measure: bool = True  # compute the experiment's cost columns (memory, MACs) for this row


@dataclasses.dataclass
class Experiment:
  name: str
  scale: int
  title: str
  claim: str
  runs: list[Run]
  rows: list[Row]
  columns: tuple[str, ...] = ()  # extra columns: "memory", "macs", "sparsity"
  settings: dict = dataclasses.field(default_factory=dict)
  memory_hr: tuple[int, int] = (720, 1280)  # output (h, w) of the memory/MACs figures


def config_file(rel: str, *args) -> ml_collections.ConfigDict:
  """get_config(*args) of configs/<rel> (the files train.py takes)."""
  path = REPO / "configs" / rel
  spec = importlib.util.spec_from_file_location(f"experiment_cfg_{path.stem}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(*args)


def _train_data(c, s: dict, data_dir: str) -> None:
  """The budget's data and bookkeeping overrides, common to every run: 291 images, no validation
  during training (rows are evaluated once at the end, so nothing is picked on Set5)."""
  c.data.dataset = TRAIN_SETS
  c.data.root = data_dir
  c.data.skip_small = True  # T91 has images smaller than a ×4 HR patch
  c.data.lr_patch = s["lr_patch"]
  c.data.batch_size = s["batch"]
  c.data.num_workers = s["num_workers"]
  c.data.cache = s.get("cache", True)
  c.val.dataset = ""
  c.val.every_steps = 0
  c.ckpt_every = s["ckpt_every"]
  c.log_every = min(100, s["ckpt_every"])
  c.progress = False
  c.tensorboard = False


def _set(node, values: dict) -> None:
  for k, v in values.items():
    node[k] = v


# ----------------------------------------------------------------------------- 1. EDSR-baseline


def edsr_baseline_x2(budget: str, data_dir: str, weights_dir: str) -> Experiment:
  del weights_dir
  s = budgets.settings("edsr_baseline_x2", budget)
  c = config_file("edsr/baseline.py", "x2")
  _train_data(c, s, data_dir)
  c.total_steps = s["steps"]
  # The recipe halves the LR at 20/40/60/80 % of its 1M steps; same fractions of ours.
  c.schedule.milestones = tuple(int(s["steps"] * f) for f in (0.2, 0.4, 0.6, 0.8))
  _set(c.model.kwargs, s.get("model_kwargs", {}))
  rows = [
      Row("bicubic", "", ("bicubic",)),
      Row("EDSR-baseline ×2 (291 images)", "edsr", ("checkpoint", "."), s["steps"]),
      Row("VDSR, published (291 images)", "", ("published", {"set5": 37.53, "set14": 33.03}),
          note="anchor: Kim et al. 2016"),
      Row("bicubic, published", "", ("published", {"set5": 33.68, "set14": 30.33}),
          note="anchor"),
  ]
  return Experiment("edsr_baseline_x2", 2, "EDSR-baseline ×2 trained on T91 + BSD200",
                    "anchor: VDSR trained on the same 291 images reports 37.53 / 33.03 dB",
                    [Run("edsr", c, s["steps"])], rows, settings=s)


# ----------------------------------------------------------------------------- 2. MemSR


def memsr_x4(budget: str, data_dir: str, weights_dir: str, workdir: str = "W") -> Experiment:
  """Teacher-S ×4 (its own run), then four Plain-S students from it at equal steps."""
  del weights_dir
  s = budgets.settings("memsr_x4", budget)
  teacher_kwargs = dict(s.get("teacher_kwargs", {}))
  t = memsr_config.teacher_config("memsr_teacher_s", "x4")
  _train_data(t, s, data_dir)
  t.total_steps = s["teacher_steps"]
  t.schedule.lr = s["teacher_lr"]
  _set(t.model.kwargs, teacher_kwargs)
  runs = [Run("teacher", t, s["teacher_steps"])]
  teacher_dir = str(pathlib.Path(workdir).absolute() / "teacher")
  students = (("winning_distill", "winning", True), ("winning", "winning", False),
              ("random_distill", "random", True), ("random", "random", False))
  for name, init, distill in students:
    c = memsr_config.paper(size="s", scale=4, init=init, distill=distill)
    _train_data(c, s, data_dir)
    c.total_steps = s["student_steps"]
    c.schedule.lr = s["student_lr"]
    c.teacher_checkpoint = teacher_dir
    c.memsr.teacher.total_steps = s["teacher_steps"]  # informational: the teacher is loaded
    c.memsr.teacher.lr = s["teacher_lr"]
    _set(c.memsr.teacher.kwargs, teacher_kwargs)
    if "width" in s:
      c.memsr.width = s["width"]
    if "n_patches" in s:
      c.memsr.n_patches = s["n_patches"]
    runs.append(Run(name, c, s["student_steps"]))
  n = s["student_steps"]
  rows = [
      Row("bicubic", "", ("bicubic",)),
      Row("Teacher-S (residual)", "teacher", ("checkpoint", "."), s["teacher_steps"]),
      Row("Plain-S, winning init, before training", "winning_distill",
          ("checkpoint", "init/model"), 0, measure=False),
      Row("Plain-S, winning init + distillation", "winning_distill", ("checkpoint", "model"), n),
      # Same widths as the row above: the same memory (not measured again).
      Row("Plain-S, winning init only (L1)", "winning", ("checkpoint", "model"), n,
          measure=False),
      Row("Plain-S, random init + distillation", "random_distill", ("checkpoint", "model"), n),
      Row("Plain-S, random init only (L1)", "random", ("checkpoint", "model"), n,
          measure=False),
  ]
  return Experiment(
      "memsr_x4", 4, "MemSR ×4: Teacher-S → exact plain conversion → Plain-S students",
      "the distilled plain student (winning init) reaches its teacher at a fraction of the "
      "activation memory", runs, rows, columns=("memory",), settings=s,
      memory_hr=tuple(s["memory_hr"]))


# ----------------------------------------------------------------------------- 3. MSSR


def _params_of(model_name: str, kwargs: dict) -> Any:
  model = registry.build_model(model_name, **kwargs)
  return jax.eval_shape(lambda: registry.init_params(model, jax.random.key(0)))


def level_sizes(model_name: str, kwargs: dict, schedule: list[float], prunable: str
                ) -> list[int]:
  """Non-zero params of levels 0..K, from shapes alone (as masks.level_stats counts them)."""
  params = _params_of(model_name, kwargs)
  flags = jax.tree_util.tree_leaves(masks.prunable_tree(params, prunable))
  sizes = [x.size for x in jax.tree_util.tree_leaves(params)]
  n_prunable = sum(n for n, f in zip(sizes, flags) if f)
  n_dense = pytrees.count_params(params) - n_prunable
  return [n_prunable + n_dense] + [masks.keep_count(n_prunable, sp) + n_dense for sp in schedule]


def matching_width(model_name: str, kwargs: dict, target: int) -> int:
  """n_feats of the dense model (same depth) whose param count is closest to `target`."""
  best = None
  for f in range(1, int(kwargs["n_feats"]) + 1):
    n = pytrees.count_params(_params_of(model_name, {**kwargs, "n_feats": f}))
    if best is None or abs(n - target) < best[1]:
      best = (f, abs(n - target))
  return best[0]


def mssr_x2(budget: str, data_dir: str, weights_dir: str) -> Experiment:
  del weights_dir
  s = budgets.settings("mssr_x2", budget)
  if s.get("recipe") == "cpu":
    c = mssr_config.edsr_cpu(scale=2)
    s = {**s, "batch": c.data.batch_size, "lr_patch": c.data.lr_patch,
         "ckpt_every": c.ckpt_every}
  else:
    c = mssr_config.edsr_baseline_div2k(scale=2)
    c.model.name = s["model"]
    c.model.kwargs = ml_collections.ConfigDict(dict(s["model_kwargs"]))
    c.schedule.lr = s["lr"]
    _set(c.mssr, {k: s[k] for k in ("rounds", "prune_fraction", "dense_steps", "rewind_step",
                                     "round_steps", "expand_steps", "expand_lr")})
  _train_data(c, s, data_dir)
  c.mssr.eval_sets = ()  # rows are evaluated by the runner, with the protocol's SSIM too
  c.total_steps = c.mssr.dense_steps
  m = c.mssr
  schedule = masks.sparsity_schedule(m.prune_fraction, m.rounds,
                                                        tuple(m.sparsities) or None)
  steps = m.dense_steps + len(schedule) * m.round_steps + (
      (len(schedule) + 1) * m.expand_steps if m.expand else 0)
  kwargs = {**registry_kwargs(c.model.name, c.model.kwargs.to_dict()), "scale": 2}
  sizes = level_sizes(c.model.name, kwargs, schedule, m.prunable)
  runs = [Run("mssr", c, steps)]
  rows = [Row("bicubic", "", ("bicubic",))]
  for k in range(len(schedule) + 1):
    rows.append(Row(f"level {k} of the scalable checkpoint", "mssr", ("mssr_level", k), steps))
  for lvl in s.get("match_levels", ()):
    k = lvl % len(sizes)
    f = matching_width(c.model.name, kwargs, sizes[k])
    d = config_file("edsr/baseline.py", "x2")  # the supervised engine config, MSSR's optimizer
    _train_data(d, s, data_dir)
    d.model.name = c.model.name
    d.model.kwargs = ml_collections.ConfigDict({**c.model.kwargs.to_dict(), "n_feats": f})
    d.schedule = copy.deepcopy(c.schedule)
    d.optim = copy.deepcopy(c.optim)
    d.total_steps = m.dense_steps
    runs.append(Run(f"dense_level{k}", d, m.dense_steps))
    rows.append(Row(f"dense, {f} ch (size of level {k}), trained alone", f"dense_level{k}",
                    ("checkpoint", "."), m.dense_steps))
  return Experiment("mssr_x2", 2, f"MSSR ×2: {c.model.name}, nested lottery-ticket levels",
                    "one scalable checkpoint serves every size; compare each level with a dense "
                    "model of matching size", runs, rows, columns=("sparsity",), settings=s)


def registry_kwargs(name: str, overrides: dict) -> dict:
  kw = registry.model_kwargs(name, **overrides)
  kw.pop("scale", None)
  return kw


# ----------------------------------------------------------------------------- 4. Compression


def torch_problem(weights: str) -> str:
  """Why the IMDN teacher cannot be used here ("" when it can)."""
  if importlib.util.find_spec("torch") is None:
    return "torch is not installed (pip install -r requirements-torch.txt)"
  if not os.path.isfile(weights):
    return f"IMDN weights not found at {weights}"
  return ""


def compress_x2(budget: str, data_dir: str, weights_dir: str) -> Experiment:
  s = budgets.settings("compress_x2", budget)
  weights = str(pathlib.Path(weights_dir) / "imdn" / "IMDN_x2.pth")
  problem = torch_problem(weights)
  variants = (("kd_2i", 2.0, "torch", "EDSRmini + IMDN teacher, level weights 2^i (paper)"),
              ("kd_equal", 1.0, "torch", "EDSRmini + IMDN teacher, equal level weights"),
              ("no_teacher", 1.0, "none", "EDSRmini, no teacher (L1)"))
  runs, rows = [], [Row("bicubic", "", ("bicubic",))]
  rows.append(Row("IMDN ×2 teacher (official weights)", "", ("torch", "imdn", weights),
                  note=problem))
  for name, base, source, label in variants:
    c = config_file("compress/cpu_edsr_imdn_x2.py")
    _train_data(c, s, data_dir)
    d = c.compress.distill
    d.total_steps = s["steps"]
    d.level_weight_base = base
    d.teacher.source = source
    d.teacher.path = weights if source == "torch" else ""
    c.total_steps = s["steps"]
    runs.append(Run(name, c, s["steps"], skip=problem if source == "torch" else ""))
    rows.append(Row(label, name, ("checkpoint", "distill"), s["steps"]))
  return Experiment("compress_x2", 2, "Compression ×2: EDSRmini distilled from IMDN",
                    "Laplacian-pyramid distillation from a strong teacher beats training the "
                    "small model alone", runs, rows, columns=("macs",), settings=s)


BUILDERS = {"edsr_baseline_x2": edsr_baseline_x2, "memsr_x4": memsr_x4, "mssr_x2": mssr_x2,
            "compress_x2": compress_x2}
NAMES = tuple(BUILDERS)


def build(name: str, budget: str, data_dir: str, weights_dir: str, workdir: str) -> Experiment:
  if name not in BUILDERS:
    raise ValueError(f"unknown experiment {name!r}; use one of {NAMES}")
  if name == "memsr_x4":
    return memsr_x4(budget, data_dir, weights_dir, workdir)
  return BUILDERS[name](budget, data_dir, weights_dir)
