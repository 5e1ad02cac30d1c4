"""Engine tasks of MSSR's stages: training one level (forward stage) or expanding to one level.

Both train the full-size param tree; the level map in the extras decides which weights exist
(`level_map >= level`) and which may move (`update_mask`). Pruned weights are exactly 0 in the
forward pass, get no update and no optimizer-state drift (the engine's update masking), and are
re-zeroed after each step (`post_update`) so nothing can leak into them.
"""
from typing import Any

import jax
import jax.numpy as jnp

from memsr_jax.methods.mssr import expand
from memsr_jax.methods.mssr import masks
from memsr_jax.methods.mssr import ssd
from memsr_jax.train import losses
from memsr_jax.train import sharding
from memsr_jax.train.task import Task

PyTree = Any


class _AtLevel(Task):
  """The level-`self.level` sub-network of the full-size params: what is evaluated and exported."""

  def _level_params(self, params, extras):
    return masks.params_at_level(params, extras["level_map"], self.level)

  def predict(self, params, extras, lr):
    return self.model.apply({"params": self._level_params(params, extras)}, lr)

  def export(self, params, extras):
    return self.model_name, dict(self.model_kwargs), self._level_params(params, extras)


class LevelTask(_AtLevel):
  """Forward stage: train the level-`level` sub-network (level 0 = dense), optionally with SSD.

  extras: "level_map" (int8), "rewind" (the rewind state, saved with every round so a round can
  be resumed or inspected alone; a checkpoint-only extra, not an argument of the step) and, with
  SSD, "teacher" (the frozen level-(level−1) params).
  """
  checkpoint_only_extras = frozenset({"rewind"})

  def __init__(self, name: str, model, model_name: str, model_kwargs: dict, level: int,
               params: PyTree, extras: dict, pixel_loss=losses.l1, ssd_weight: float = 0.0,
               ssd_target: str = "hr", ssd_depths: tuple = ()):
    self.name, self.model, self.level = name, model, int(level)
    self.model_name, self.model_kwargs = model_name, dict(model_kwargs)
    self._params, self._extras = params, dict(extras)
    self.pixel_loss = pixel_loss
    self.ssd_weight = float(ssd_weight) if "teacher" in extras else 0.0
    self.ssd_target = ssd_target
    self.ssd_choices = (ssd.depth_choices(ssd.n_blocks(params), ssd_depths) if self.ssd_weight
                        else ())

  def init(self, rng):
    del rng  # the stages prepared the params (rewound survivors) deterministically
    return self._params, self._extras

  def loss_fn(self, params, extras, batch, rng, step):
    del step
    student = self._level_params(params, extras)
    sr = self.model.apply({"params": student}, batch["lr"])
    loss = self.pixel_loss(sr, batch["hr"])
    metrics = {"pixel_loss": loss}
    if self.ssd_weight:
      d_loss, depth = ssd.ssd_loss(self.model, student, extras["teacher"], batch["lr"],
                                   batch["hr"], rng, self.ssd_choices, self.ssd_target)
      loss = loss + self.ssd_weight * d_loss
      metrics.update(ssd_loss=d_loss, ssd_depth=depth.astype(jnp.float32))
    return loss, metrics

  def update_mask(self, params, extras):
    del params
    return masks.mask_at_level(extras["level_map"], self.level)

  def post_update(self, params, extras):
    return self._level_params(params, extras)

  def metadata(self, params, extras):
    del params
    st = masks.level_stats(sharding.to_host(extras["level_map"]))
    return {"mssr_stage": "forward", "level": self.level,
            "level_stats": st[min(self.level, len(st) - 1)]}


class ExpandTask(_AtLevel):
  """Backward stage: fine-tune only the weights with level-map value `level` (P_{level+1}).

  extras: "level_map" and "base" (the params at the start of the stage). `post_update` restores
  every frozen entry from "base", so frozen weights are bit-identical by construction, not just
  up to `p + 0.0` (which would turn −0.0 into +0.0).
  """

  def __init__(self, name: str, model, model_name: str, model_kwargs: dict, level: int,
               params: PyTree, level_map: PyTree, pixel_loss=losses.l1):
    self.name, self.model, self.level = name, model, int(level)
    self.model_name, self.model_kwargs = model_name, dict(model_kwargs)
    self._params = params
    self._extras = {"level_map": level_map, "base": params}
    self.pixel_loss = pixel_loss

  def init(self, rng):
    del rng
    return self._params, self._extras

  def loss_fn(self, params, extras, batch, rng, step):
    del rng, step
    sr = self.model.apply({"params": self._level_params(params, extras)}, batch["lr"])
    loss = self.pixel_loss(sr, batch["hr"])
    return loss, {"pixel_loss": loss}

  def update_mask(self, params, extras):
    del params
    return expand.restored_mask(extras["level_map"], self.level)

  def post_update(self, params, extras):
    trainable = expand.restored_mask(extras["level_map"], self.level)
    return jax.tree_util.tree_map(lambda t, p, b: jnp.where(t, p, b), trainable, params,
                                  extras["base"])

  def metadata(self, params, extras):
    del params
    return {"mssr_stage": "backward", "level": self.level,
            "level_stats": masks.level_stats(sharding.to_host(extras["level_map"]))[self.level]}
