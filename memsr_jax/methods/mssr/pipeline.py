"""MSSR end to end: `run(config, workdir)` (train.py calls it when config.method == "mssr").

Stages, each a resumable engine run in `workdir/<stage>/` (rerunning skips finished ones):
  dense_rewind   dense training up to the rewind step k (its end is the rewind state)
  dense          dense training for the remaining steps (level 0)
  round_01..K    prune p of the remaining weights, rewind survivors to step k (fresh optimizer),
                 retrain level k (with stochastic self-distillation from level k−1 when enabled)
  expand_K-1..0  backward stage: re-enable P_{k+1}, fine-tune only it, everything else frozen
  model/         the scalable model: one params tree + int8 level map (every size)
Results: `forward_levels.json` (each round's own network at its level) and, after the backward
stage, `levels.json` (every level of the one scalable model) on config.mssr.eval_sets.
"""
import copy
import json
import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np

from memsr_jax.methods.mssr import evaluate, expand, imp, masks, scalable, tasks
from memsr_jax.models import registry
from memsr_jax.train import data as data_lib
from memsr_jax.train import losses
from memsr_jax.train import loop
from memsr_jax.train import sharding

PyTree = Any
REWIND_CHOICES = ("rewind", "init")
EXPAND_INITS = ("zero", "forward")


def default_mssr_config() -> ml_collections.ConfigDict:
  """config.mssr defaults (documented in docs/MSSR.md)."""
  m = ml_collections.ConfigDict()
  m.prunable = masks.DEFAULT_PRUNABLE  # regex over param paths ('body_0/conv1/kernel')
  m.prune_fraction = 0.2  # of the remaining prunable weights, per round
  m.rounds = 13  # K; 1 − 0.8^13 ≈ 94.5 % sparsity
  m.sparsities = ()  # explicit level sparsities (overrides fraction/rounds)
  m.dense_steps = 1000  # dense training, rewind step included
  m.rewind_step = 100  # k: the rewind state is the dense params after k steps
  m.rewind_to = "rewind"  # "rewind" (step k) | "init" (reset to the initial params; ablation)
  m.round_steps = 1000  # retraining steps per round
  m.expand = True  # run the backward stage
  m.expand_steps = 500  # fine-tuning steps per level in the backward stage
  m.expand_lr = 0.0  # 0: config.schedule.lr
  # Start values of the re-enabled weights: "zero" (the larger network starts as exactly the
  # smaller one, so fine-tuning can only add to it) or "forward" (their values in the
  # forward-stage level-k network, which was trained around other shared weights).
  m.expand_init = "zero"
  m.ssd_weight = 1.0  # 0 disables stochastic self-distillation
  m.ssd_target = "hr"  # "hr" | "teacher"
  m.ssd_depths = ()  # () = uniform over 1..N−1 residual blocks
  m.eval_sets = ("set5",)  # per-level PSNR after training; () to skip
  m.eval_root = ""  # "" = config.val.root
  return m


def _check(config) -> ml_collections.ConfigDict:
  if "mssr" not in config:
    raise ValueError("config.method='mssr' needs a config.mssr block; start from "
                     "memsr_jax.methods.mssr.pipeline.default_mssr_config()")
  m = config.mssr
  unknown = sorted(set(m.keys()) - set(default_mssr_config().keys()))
  if unknown:
    raise ValueError(f"unknown config.mssr key(s) {unknown}; valid: "
                     f"{sorted(default_mssr_config().keys())}")
  if m.rewind_to not in REWIND_CHOICES:
    raise ValueError(f"config.mssr.rewind_to must be one of {REWIND_CHOICES}, got {m.rewind_to!r}")
  if not 0 <= m.rewind_step < m.dense_steps:
    raise ValueError(f"config.mssr.rewind_step ({m.rewind_step}) must be in [0, dense_steps="
                     f"{m.dense_steps})")
  if m.round_steps <= 0 or (m.expand and m.expand_steps <= 0):
    raise ValueError("config.mssr.round_steps and expand_steps must be positive")
  if m.expand_init not in EXPAND_INITS:
    raise ValueError(f"config.mssr.expand_init must be one of {EXPAND_INITS}, got "
                     f"{m.expand_init!r}")
  if m.ssd_target not in ("hr", "teacher"):
    raise ValueError(f"config.mssr.ssd_target must be 'hr' or 'teacher', got {m.ssd_target!r}")
  return m


def stage_config(config, steps: int, lr: float | None = None) -> ml_collections.ConfigDict:
  c = copy.deepcopy(config)
  with c.unlocked():
    c.total_steps = int(steps)
    if lr:
      c.schedule.lr = float(lr)
  return c


class _RestartingSource:
  """One data loader for all stages (images are decoded once); every stage starts its stream
  from the same position, so a resumed pipeline sees exactly the batches of an uninterrupted one
  (the engine restores a stage's own position from its checkpoint)."""

  def __init__(self, source):
    self.source = source
    self.start = source.get_state()

  def restart(self):
    self.source.set_state(self.start)
    return self.source


def run(config: ml_collections.ConfigDict, workdir) -> dict:
  """Runs every MSSR stage; returns {"levels": [...], "forward_levels": [...]} (also as JSON)."""
  m = _check(config)
  workdir = pathlib.Path(workdir)
  model_kwargs = dict(config.model.kwargs.to_dict())
  model_kwargs["scale"] = config.scale
  model = registry.build_model(config.model.name, **model_kwargs)
  pixel_loss = losses.get_pixel_loss(config.loss.name, config.loss.charbonnier_eps)
  schedule = masks.sparsity_schedule(m.prune_fraction, m.rounds, tuple(m.sparsities) or None)
  n_levels = len(schedule)
  init_params = jax.device_get(registry.init_params(model, jax.random.key(config.seed)))
  lm0 = masks.init_level_map(init_params, m.prunable)

  source = _RestartingSource(data_lib.make_source(
      config, local_batch_size=sharding.local_batch_size(config.data.batch_size),
      process_index=jax.process_index(), process_count=jax.process_count()))
  common = dict(model=model, model_name=config.model.name, model_kwargs=model_kwargs,
                pixel_loss=pixel_loss)

  def train(task, steps, lr=None):
    return loop.train(stage_config(config, steps, lr), workdir, task, stage_name=task.name,
                      data_source=source.restart())

  # Dense training, split at the rewind step so the rewind state is a stage's final params.
  extras0 = {"level_map": lm0}
  params = init_params
  if m.rewind_step > 0:
    params, _ = train(tasks.LevelTask("dense_rewind", level=0, params=params, extras=extras0,
                                      **common), m.rewind_step)
  rewind_state = params if m.rewind_to == "rewind" else init_params
  trained, _ = train(tasks.LevelTask("dense", level=0, params=params, extras=extras0, **common),
                     m.dense_steps - m.rewind_step)

  # Forward stage: IMP with rewinding (+ SSD). per_level[k] = trained level-k params (masked).
  per_level = [trained]
  lm = lm0
  for k in range(1, n_levels + 1):
    lm = imp.prune_round(per_level[-1], lm, k, schedule[k - 1])
    extras = {"level_map": lm, "rewind": rewind_state}
    if m.ssd_weight:
      extras["teacher"] = jax.device_get(imp.teacher(per_level[-1], lm, k - 1))
    task = tasks.LevelTask(f"round_{k:02d}", level=k, params=jax.device_get(
        imp.rewind(rewind_state, lm, k)), extras=extras, ssd_weight=m.ssd_weight,
        ssd_target=m.ssd_target, ssd_depths=tuple(m.ssd_depths), **common)
    trained, _ = train(task, m.round_steps)
    per_level.append(trained)

  results = {"schedule": schedule}
  eval_sets = tuple(m.eval_sets)
  sets = evaluate.load_sets(eval_sets, m.eval_root or config.val.root, config.scale) \
      if eval_sets else {}
  if sets:
    rows = []
    for k, p in enumerate(per_level):
      rows.extend(evaluate.sweep_levels(model, p, lm, sets, config.scale, levels=[k]))
    results["forward_levels"] = rows
    _dump(workdir / "forward_levels.json", rows)
    print("MSSR forward stage (each round's own network):\n" + evaluate.format_table(rows),
          flush=True)
  if not m.expand:
    return results

  # Backward stage: grow from the sparsest level, freezing everything already placed.
  merged = per_level[-1]
  for k in range(n_levels - 1, -1, -1):
    values = per_level[k] if m.expand_init == "forward" else jax.tree_util.tree_map(
        np.zeros_like, merged)
    start = jax.device_get(expand.start_expand(merged, values, lm, k))
    task = tasks.ExpandTask(f"expand_{k:02d}", level=k, params=start, level_map=lm, **common)
    merged, _ = train(task, m.expand_steps, m.expand_lr or None)
    changed = expand.frozen_changes(start, merged, expand.restored_mask(lm, k))
    if changed:
      raise RuntimeError(f"backward stage {task.name}: frozen weights changed: {changed}")
  merged = jax.device_get(masks.params_at_level(merged, lm, 0))
  meta = {"method": "mssr", "config": json.loads(config.to_json_best_effort())}
  path = scalable.save_scalable(workdir / "model", config.model.name, model_kwargs, merged, lm, meta)
  print(f"MSSR scalable model ({n_levels + 1} levels) saved to {path}", flush=True)
  if sets:
    rows = evaluate.sweep_levels(model, merged, lm, sets, config.scale)
    results["levels"] = rows
    _dump(workdir / "levels.json", rows)
    print("MSSR scalable model (one checkpoint, every level):\n" + evaluate.format_table(rows),
          flush=True)
  return results


def _dump(path: pathlib.Path, rows) -> None:
  if jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1))
