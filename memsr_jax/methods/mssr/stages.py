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
import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np

from memsr_jax.methods import common
from memsr_jax.methods.mssr import config as mssr_config
from memsr_jax.methods.mssr import evaluate
from memsr_jax.methods.mssr import expand
from memsr_jax.methods.mssr import imp
from memsr_jax.methods.mssr import masks
from memsr_jax.methods.mssr import scalable
from memsr_jax.methods.mssr import tasks
from memsr_jax.models import registry
from memsr_jax.train import config_lib
from memsr_jax.train import data as data_lib
from memsr_jax.train import loop
from memsr_jax.train import losses
from memsr_jax.train import sharding
from memsr_jax.utils import cli
from memsr_jax.utils import jsonio

PyTree = Any
REWIND_CHOICES = ("rewind", "init", "random")
EXPAND_INITS = ("zero", "forward")


def check(config) -> ml_collections.ConfigDict:
  """config.mssr's keys and values (`cli.UsageError`); returns the section."""
  if "mssr" not in config:
    raise cli.UsageError("config.method='mssr' needs a config.mssr block; start from "
                         "memsr_jax.methods.mssr.config.default_mssr_config()")
  m = config.mssr
  valid = sorted(mssr_config.default_mssr_config().keys())
  unknown = sorted(set(m.keys()) - set(valid))
  if unknown:
    raise cli.UsageError(f"unknown config.mssr key(s) {unknown}; valid: {valid}")
  if m.rewind_to not in REWIND_CHOICES:
    raise cli.UsageError(f"config.mssr.rewind_to must be one of {REWIND_CHOICES}, got "
                         f"{m.rewind_to!r}")
  if not 0 <= m.rewind_step < m.dense_steps:
    raise cli.UsageError(f"config.mssr.rewind_step ({m.rewind_step}) must be in [0, dense_steps="
                         f"{m.dense_steps})")
  if m.round_steps <= 0 or (m.expand and m.expand_steps <= 0):
    raise cli.UsageError("config.mssr.round_steps and expand_steps must be positive")
  if m.expand_init not in EXPAND_INITS:
    raise cli.UsageError(f"config.mssr.expand_init must be one of {EXPAND_INITS}, got "
                         f"{m.expand_init!r}")
  if m.ssd_target not in ("hr", "teacher"):
    raise cli.UsageError(f"config.mssr.ssd_target must be 'hr' or 'teacher', got {m.ssd_target!r}")
  return m


class _RestartingSource:
  """One data loader for all stages (images are decoded once); every stage starts its stream
  from the same position, so a resumed run sees exactly the batches of an uninterrupted one
  (the engine restores a stage's own position from its checkpoint)."""

  def __init__(self, source):
    self.source = source
    self.start = source.get_state()

  def restart(self):
    self.source.set_state(self.start)
    return self.source


def run(config: ml_collections.ConfigDict, workdir) -> dict:
  """Runs every MSSR stage; returns {"levels": [...], "forward_levels": [...]} (also as JSON)."""
  m = check(config)
  workdir = pathlib.Path(workdir)
  model_kwargs = config_lib.as_dict(config.model.kwargs)
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
  task_kwargs = dict(model=model, model_name=config.model.name, model_kwargs=model_kwargs,
                     pixel_loss=pixel_loss)

  def train(task, steps, lr=None):
    overrides = {"total_steps": int(steps), **({"schedule.lr": float(lr)} if lr else {})}
    return loop.train(common.stage_config(config, overrides), workdir, task,
                      stage_name=task.name, data_source=source.restart())

  # Dense training, split at the rewind step so the rewind state is a stage's final params.
  extras0 = {"level_map": lm0}
  params = init_params
  if m.rewind_step > 0:
    params, _ = train(tasks.LevelTask("dense_rewind", level=0, params=params, extras=extras0,
                                      **task_kwargs), m.rewind_step)
  rewind_state = {"rewind": params, "init": init_params}.get(m.rewind_to)
  if rewind_state is None:  # "random": a fresh draw, independent of the initial params
    rewind_state = jax.device_get(registry.init_params(
        model, jax.random.fold_in(jax.random.key(config.seed), 1)))
  trained, _ = train(tasks.LevelTask("dense", level=0, params=params, extras=extras0,
                                     **task_kwargs), m.dense_steps - m.rewind_step)

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
        ssd_target=m.ssd_target, ssd_depths=tuple(m.ssd_depths), **task_kwargs)
    trained, _ = train(task, m.round_steps)
    per_level.append(trained)

  results = {"schedule": schedule}
  eval_sets = tuple(m.eval_sets)
  sets = evaluate.load_sets(eval_sets, m.eval_root or config.val.root, config.scale) \
      if eval_sets else {}
  if sets:
    rows = []
    for k, p in enumerate(per_level):
      rows.extend(evaluate.sweep_levels(model, p, lm, sets, config.scale, which=[k]))
    results["forward_levels"] = rows
    if common.is_main():
      jsonio.write_json(workdir / "forward_levels.json", rows)
    common.say("MSSR forward stage (each round's own network):\n"
               + evaluate.format_level_table(rows))
  if not m.expand:
    return results

  merged = _backward(per_level, lm, m, train, task_kwargs)
  meta = {"method": "mssr", "config": config_lib.to_json_dict(config)}
  path = scalable.save_scalable(workdir / "model", config.model.name, model_kwargs, merged, lm,
                                meta)
  common.say(f"MSSR scalable model ({n_levels + 1} levels) saved to {path}")
  if sets:
    rows = evaluate.sweep_levels(model, merged, lm, sets, config.scale)
    results["levels"] = rows
    if common.is_main():
      jsonio.write_json(workdir / "levels.json", rows)
    common.say("MSSR scalable model (one checkpoint, every level):\n"
               + evaluate.format_level_table(rows))
  return results


def _backward(per_level: list, lm, m, train, task_kwargs: dict):
  """Backward stage: grow from the sparsest level, freezing everything already placed; returns
  the merged params (every level in one tree, masked at level 0)."""
  n_levels = len(per_level) - 1
  merged = per_level[-1]
  for k in range(n_levels - 1, -1, -1):
    values = per_level[k] if m.expand_init == "forward" else jax.tree_util.tree_map(
        np.zeros_like, merged)
    start = jax.device_get(expand.start_expand(merged, values, lm, k))
    task = tasks.ExpandTask(f"expand_{k:02d}", level=k, params=start, level_map=lm,
                            **task_kwargs)
    merged, _ = train(task, m.expand_steps, m.expand_lr or None)
    changed = expand.frozen_changes(start, merged, expand.restored_mask(lm, k))
    if changed:
      raise RuntimeError(f"backward stage {task.name}: frozen weights changed: {changed}")
  return jax.device_get(masks.params_at_level(merged, lm, 0))
