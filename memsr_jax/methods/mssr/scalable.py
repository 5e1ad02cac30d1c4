"""One MSSR checkpoint, every size: switch the network's size in memory by choosing a level.

    sr_model = ScalableSR(model, params, level_map)
    small = sr_model.at_sparsity(0.94)      # a view; nothing is reloaded or copied on the host
    sr = small(lr)                          # float32 NHWC 0..255
    sr_model.at_level(0)(lr)                # the dense network from the same weights
"""
import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.methods.mssr import masks
from memsr_jax.models import levels
from memsr_jax.utils import precision

PyTree = Any


@functools.partial(jax.jit, static_argnums=(0,))
def _apply_at_level(model, params, level_map, level, lr):
  return model.apply({"params": masks.params_at_level(params, level_map, level)}, lr)


@dataclasses.dataclass(frozen=True)
class ScalableSR:
  """A scalable SR model: one params pytree plus its int8 level map.

  The level is a traced argument of one jitted function, so switching sizes re-uses the same
  compiled program and the same device buffers.
  """
  model: nn.Module
  params: PyTree
  level_map: PyTree
  level: int = 0

  def __post_init__(self):
    masks.check_level(self.level_map, self.level)

  @property
  def num_levels(self) -> int:
    """K: levels are 0 (dense) … K (sparsest)."""
    return masks.num_levels(self.level_map)

  def at_level(self, level: int) -> "ScalableSR":
    return dataclasses.replace(self, level=masks.check_level(self.level_map, level))

  def at_sparsity(self, sparsity: float) -> "ScalableSR":
    """The level whose sparsity (of the prunable weights) is closest to `sparsity`."""
    return self.at_level(masks.level_for_sparsity(self.level_map, sparsity))

  def stats(self) -> dict:
    return masks.level_stats(self.level_map)[self.level]

  def level_params(self) -> PyTree:
    """Params of the current level with pruned weights at exactly 0 (e.g. to export one size)."""
    return masks.params_at_level(self.params, self.level_map, self.level)

  def __call__(self, lr):
    with precision.exact():  # level switching promises the per-level model's exact output
      return _apply_at_level(self.model, self.params, self.level_map, self.level, lr)


LEVEL_MAP_ITEM = levels.LEVEL_MAP_ITEM


def save_scalable(path, model_name: str, model_kwargs: dict, params: PyTree, level_map: PyTree,
                  meta: dict | None = None):
  """One model checkpoint holding every size: params + meta (as any model) + a level-map item.

  The folder is a regular `save_model_checkpoint` folder, so `load_model_checkpoint` (eval.py,
  deploy) reads it as the dense model; `load_scalable` also reads its `level_map` item.
  """
  level_map = jax.tree_util.tree_map(lambda l: jax.numpy.asarray(l, jax.numpy.int8), level_map)
  meta = dict(meta or {})
  meta["mssr"] = {"num_levels": masks.num_levels(level_map),
                  "levels": masks.level_stats(level_map), "level_map_item": LEVEL_MAP_ITEM}
  return ckpt_lib.save_model_checkpoint(path, model_name, model_kwargs, params, meta,
                                        extra_items={LEVEL_MAP_ITEM: level_map})


def load_level_map(path) -> PyTree | None:
  """The level map saved with a model checkpoint (None when it has none)."""
  return ckpt_lib.load_model_item(path, LEVEL_MAP_ITEM)


def load_scalable(path) -> tuple[ScalableSR, dict]:
  """(ScalableSR at level 0, meta) from an MSSR model checkpoint (or a workdir holding `model/`)."""
  model, params, meta = ckpt_lib.load_model_checkpoint(path)
  level_map = load_level_map(path)
  if level_map is None:
    raise ValueError(f"{path} holds no MSSR level map ({LEVEL_MAP_ITEM}/): it is a single-size "
                     "model; train it with config.method='mssr' to get every size in one file")
  return ScalableSR(model, params, level_map), meta
