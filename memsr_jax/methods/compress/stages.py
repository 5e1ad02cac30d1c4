"""The compression method's stages (docs/COMPRESS.md): prune → compress → distill, from one config.

`run(config, workdir)` is what `train.py` calls when `config.method == "compress"`. Stages run in
`workdir/prune`, `workdir/compress`, `workdir/distill`; each is resumable (the engine resumes and
skips finished training stages; the compress stage's result is a JSON file that is reused).

Config (see configs/compress/*.py for complete examples):
  model.name / model.kwargs     the model M to compress (e.g. edsr_baseline, swinir_s)
  model.init.kind / .path       its starting weights: "random", "checkpoint" (a zoo checkpoint or
                                training workdir), "torch" (a .pth via interop.torch_import)
  compress.stages               e.g. "prune,compress,distill" (any ordered subset)
  compress.prune                engine overrides (total_steps, optim.*, schedule.*, data.*, val.*)
                                plus include/exclude (regexes of pruned leaves), charbonnier_eps
  compress.shrink               mode "fixed" (student = shrink.student preset) or "rule"
                                (shrink.py's rule on the prune stage's densities), tau_block/layer
  compress.distill              engine overrides plus alpha (0.1), levels (4), level_weight_base (2:
                                level i weighted 2**i, 0 = finest) and teacher:
                                source "original" (M as loaded), "pruned", "checkpoint", "torch",
                                "none" (baseline: plain L1, no teacher); model/model_kwargs/path.
`config.data.dataset` may join several training sets with "+" (e.g. "t91+bsd200").
"""
import json
import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.inference.source import load_source
from memsr_jax.methods import common
from memsr_jax.methods.compress import prox
from memsr_jax.methods.compress import shrink
from memsr_jax.methods.compress import tasks
from memsr_jax.models import registry
from memsr_jax.train import config_lib
from memsr_jax.train import loop
from memsr_jax.train import optim
from memsr_jax.train import state as state_lib
from memsr_jax.utils import cli
from memsr_jax.utils import jsonio
from memsr_jax.utils import pytrees

PyTree = Any
STAGES = ("prune", "compress", "distill")
TEACHER_SOURCES = ("original", "pruned", "checkpoint", "torch", "none")
_STAGE_GROUPS = ("optim", "schedule", "data", "val", "loss")
_STAGE_SCALARS = ("total_steps", "log_every", "ckpt_every", "seed", "keep_ckpts")


# ----------------------------------------------------------------------------- config helpers


def parse_stages(stages) -> list[str]:
  names = [s.strip() for s in stages.split(",")] if isinstance(stages, str) else list(stages)
  names = [s for s in names if s]
  bad = [s for s in names if s not in STAGES]
  if bad or not names:
    raise cli.UsageError(f"config.compress.stages={stages!r}: unknown or no stage(s) {bad}; use an "
                         f"ordered subset of {STAGES}, e.g. 'prune,compress,distill'")
  if names != sorted(names, key=STAGES.index):
    raise cli.UsageError(f"config.compress.stages={stages!r} is out of order; the order is "
                         f"{STAGES}")
  return names


def engine_config(config: ml_collections.ConfigDict, stage: ml_collections.ConfigDict
                 ) -> ml_collections.ConfigDict:
  """The engine config of one stage: the base config with the stage's overrides applied (its
  engine scalars, e.g. total_steps, and its optim/schedule/data/val/loss groups)."""
  overrides = {k: stage[k] for k in _STAGE_SCALARS if k in stage}
  for group in _STAGE_GROUPS:
    if group in stage:
      overrides.update({f"{group}.{k}": v for k, v in stage[group].items()})
  return common.stage_config(config, overrides)


def model_spec(config) -> tuple[str, dict]:
  kw = config_lib.as_dict(config.model.get("kwargs"))
  kw["scale"] = config.scale
  return config.model.name, kw


def load_weights(kind: str, path: str, model_name: str, model_kwargs: dict) -> PyTree | None:
  """Params for `model_name` from a zoo checkpoint, a PyTorch file, or None for "random"."""
  if kind == "random":
    return None
  if not path:
    raise ValueError(f"weights kind {kind!r} needs a path")
  if kind == "checkpoint":
    src = load_source(path)
    if src.name != model_name:
      raise ValueError(f"checkpoint {path} holds a {src.name!r} model, not "
                       f"{model_name!r}: set the model name to match")
    return src.params
  if kind == "torch":
    kw = dict(model_kwargs)
    scale = kw.pop("scale")
    return load_source(preset=model_name, scale=scale, torch_weights=path, overrides=kw).params
  raise ValueError(f"unknown weights kind {kind!r}; expected 'random', 'checkpoint' or 'torch'")


# ----------------------------------------------------------------------------- stages


def _raw_params_of_stage(cfg, workdir: pathlib.Path, task) -> PyTree:
  """The final raw (non-EMA) params of a finished stage, from its last checkpoint's state item.

  The engine returns and exports the EMA weights, which are never exactly sparse; densities must
  come from the weights the proximal step actually zeroed.
  """
  tx, _ = optim.make_optimizer(cfg, task.optimizers())
  params, _ = jax.eval_shape(task.init, jax.random.key(0))
  abstract = jax.eval_shape(
      lambda p: state_lib.create_train_state(p, tx, ema=cfg.optim.ema_decay > 0), params)
  state, _ = ckpt_lib.restore_train_state(workdir, abstract)
  return jax.tree.map(np.asarray, state.params)


def run_prune(config, workdir: pathlib.Path, init_params) -> dict:
  """Trains M with the L1-proximal optimizer; writes prune/densities.json; returns it."""
  pc = config.compress.prune
  cfg = engine_config(config, pc)
  include = pc.get("include", prox.DEFAULT_INCLUDE)
  exclude = pc.get("exclude", prox.DEFAULT_EXCLUDE)
  with cfg.unlocked():
    if cfg.optim.name != prox.PRUNE_OPTIMIZER:
      raise ValueError(f"the prune stage needs compress.prune.optim.name={prox.PRUNE_OPTIMIZER!r} "
                       f"(got {cfg.optim.name!r}): sparsity comes from its proximal step")
    cfg.optim.extra.l1 = float(pc.get("l1", 1e-4))
    cfg.optim.extra.include = include
    cfg.optim.extra.exclude = exclude
  name, kw = model_spec(config)
  task = tasks.PruneTask(name, kw, init_params, include, exclude,
                         charbonnier_eps=float(pc.get("charbonnier_eps", 1e-3)))
  loop.train(cfg, workdir, task, stage_name="prune")
  raw = _raw_params_of_stage(cfg, workdir / "prune", task)
  mask = prox.select_leaves(raw, include, exclude)
  dens = prox.densities(raw, mask)
  stats = shrink.kernel_stats(raw, mask)
  out = {"model": name, "model_kwargs": kw, "l1": cfg.optim.extra.l1, "steps": cfg.total_steps,
         "include": include, "exclude": exclude, "density": dens, "kernel_stats": stats,
         "n_params": pytrees.count_params(raw),
         "n_nonzero": int(sum(np.count_nonzero(x) for x in jax.tree.leaves(raw)))}
  if common.is_main():
    jsonio.write_json(workdir / "prune" / "densities.json", out)
  common.say(f"[prune] total density of pruned kernels: {dens['total']:.4f}")
  return out


def run_compress(config, workdir: pathlib.Path, pruned: dict | None) -> dict:
  """Picks the student configuration; writes compress/result.json (reused when present)."""
  path = workdir / "compress" / "result.json"
  if path.is_file():
    common.say(f"[compress] reusing {path}")
    return json.loads(path.read_text())
  sc = config.compress.shrink
  name, kw = model_spec(config)
  rule = None
  if pruned is not None:
    try:
      fam = shrink.family_of(name)
    except ValueError:
      fam = None
    if fam is not None:
      mkw = registry.model_kwargs(name, **kw)
      stats = {k: tuple(v) for k, v in pruned["kernel_stats"].items()}
      if fam == "EDSR":
        rule = shrink.shrink_rule(stats, fam, mkw["n_feats"], 4, sc.tau_block, sc.tau_layer)
      else:
        heads = tuple(mkw["num_heads"])
        rule = shrink.shrink_rule(stats, fam, mkw["embed_dim"], heads[0], sc.tau_block,
                                  sc.tau_layer)
        rule.model_kwargs["num_heads"] = (heads[0],) * rule.n_blocks
  if sc.mode == "rule":
    if rule is None:
      raise ValueError("compress.shrink.mode='rule' needs the prune stage's densities of an "
                       f"EDSR or SwinIR model (model {name!r}); run 'prune' first or use "
                       "mode='fixed'")
    student = name
    student_kwargs = dict(rule.model_kwargs)
  elif sc.mode == "fixed":
    student = sc.student or shrink.PAPER_MINIS.get(name, "")
    if not student:
      raise ValueError(f"compress.shrink.student is empty and {name!r} has no paper mini model "
                       f"({shrink.PAPER_MINIS}); name the student preset")
    student_kwargs = config_lib.as_dict(sc.get("student_kwargs"))
  else:
    raise ValueError(f"compress.shrink.mode={sc.mode!r}; expected 'fixed' or 'rule'")
  student_kwargs["scale"] = config.scale
  student_kwargs = registry.model_kwargs(student, **student_kwargs)  # validates, fills defaults
  sm = registry.build_model(student, **student_kwargs)
  n = pytrees.count_params(jax.eval_shape(lambda: registry.init_params(sm, jax.random.key(0))))
  out = {"student": student, "student_kwargs": student_kwargs, "student_params": n,
         "mode": sc.mode, "rule": rule.to_json() if rule is not None else None}
  if common.is_main():
    jsonio.write_json(path, out)
  common.say(f"[compress] student {student} {student_kwargs}: {n:,} params")
  return out


def build_teacher(config, workdir: pathlib.Path, original_params, pruned_dir: pathlib.Path):
  """(teacher model, params) or (None, None) for the distill stage."""
  t = config.compress.distill.teacher
  source = t.source
  if source not in TEACHER_SOURCES:
    raise ValueError(f"compress.distill.teacher.source={source!r}; expected one of "
                     f"{TEACHER_SOURCES}")
  if source == "none":
    return None, None
  if source in ("original", "pruned"):
    name, kw = model_spec(config)
    if source == "original":
      if original_params is None:
        raise ValueError("teacher.source='original' needs model.init weights (kind 'checkpoint' "
                         "or 'torch'); a randomly initialized model is no teacher")
      params = original_params
    else:
      params = load_source(pruned_dir).params
    return registry.build_model(name, **kw), params
  name = t.model or config.model.name
  kw = config_lib.as_dict(t.get("model_kwargs"))
  kw["scale"] = config.scale
  if source == "checkpoint":
    src = load_source(t.path)
    return src.model, src.params
  return registry.build_model(name, **kw), load_weights("torch", t.path, name, kw)


def run_distill(config, workdir: pathlib.Path, student: dict, original_params) -> PyTree:
  dc = config.compress.distill
  cfg = engine_config(config, dc)
  teacher, teacher_params = build_teacher(config, workdir, original_params, workdir / "prune")
  kw = dict(student["student_kwargs"])
  task = tasks.DistillTask(student["student"], kw, teacher, teacher_params,
                           alpha=float(dc.get("alpha", 0.1)), levels=int(dc.get("levels", 4)),
                           pyramid=dc.get("pyramid", "laplacian"),
                           level_weight_base=float(dc.get("level_weight_base", 2.0)))
  params, _ = loop.train(cfg, workdir, task, stage_name="distill")
  return params


def check(config) -> None:
  """config.compress is there and names its stages in order (`cli.UsageError`)."""
  if "compress" not in config:
    raise cli.UsageError("config.method='compress' needs a config.compress section; start from "
                         "configs/compress/edsr_x2.py")
  parse_stages(config.compress.stages)


def run(config: ml_collections.ConfigDict, workdir) -> dict:
  """Runs the configured stages; returns a summary (also written to workdir/summary.json)."""
  check(config)
  workdir = pathlib.Path(workdir)
  stages = parse_stages(config.compress.stages)
  name, kw = model_spec(config)
  init = config.model.get("init", ml_collections.ConfigDict({"kind": "random", "path": ""}))
  needs_original = "prune" in stages or (
      "distill" in stages and config.compress.distill.teacher.source == "original")
  original = load_weights(init.kind, init.path, name, kw) if needs_original else None
  summary: dict[str, Any] = {"stages": stages, "model": name, "model_kwargs": kw}

  pruned = None
  if "prune" in stages:
    pruned = run_prune(config, workdir, original)
    summary["prune_density"] = pruned["density"]["total"]
  elif (workdir / "prune" / "densities.json").is_file():
    pruned = json.loads((workdir / "prune" / "densities.json").read_text())

  student = None
  if "compress" in stages:
    student = run_compress(config, workdir, pruned)
  elif (workdir / "compress" / "result.json").is_file():
    student = json.loads((workdir / "compress" / "result.json").read_text())
  if "distill" in stages:
    if student is None:  # distill alone: the configured fixed student
      student = run_compress(config, workdir, pruned)
    run_distill(config, workdir, student, original)
  if student is not None:
    summary.update(student=student["student"], student_kwargs=student["student_kwargs"],
                   student_params=student["student_params"])
  if common.is_main():
    jsonio.write_json(workdir / "summary.json", summary)
  return summary
