"""One model source for every command, experiment and method stage: a checkpoint, a zoo preset
with PyTorch weights, or a preset with random weights.

    src = load_source(checkpoint="runs/quickstart")                 # model folder or workdir
    src = load_source(preset="imdn", scale=2, torch_weights="IMDN_x{scale}.pth")
    src = load_source(preset="plain_s", scale=4)                     # random weights (seeded)
    src = load_source(checkpoint="runs/mssr", sparsity=0.94)         # one level of a scalable net
    sr = src.model.apply({"params": src.params}, lr)

A level (or the level nearest a sparsity) selects one nested size of a checkpoint that stores a
level map (memsr_jax/models/levels.py); the params come back with the pruned weights at exactly 0
and `meta["level"]` describes the level.
"""
import dataclasses
import pathlib
from typing import Any, Mapping

import flax.linen as nn

from memsr_jax.data import home
from memsr_jax.interop import torch_import
from memsr_jax.models import levels
from memsr_jax.models import registry
from memsr_jax.utils import cli

PyTree = Any


class SourceError(cli.UserError, ValueError):
  """The model source asked for does not exist or does not fit (one line, exit status 2)."""


@dataclasses.dataclass(frozen=True)
class ModelSource:
  """A network and its weights. `meta` holds at least `model` (preset name), `model_kwargs`,
  `scale` and `source` (where the weights came from: a path, or "random (seed N)")."""
  model: nn.Module
  params: PyTree
  meta: dict

  @property
  def scale(self) -> int:
    return int(self.meta["scale"])

  @property
  def name(self) -> str:
    return str(self.meta["model"])

  def describe(self) -> str:
    return f"{self.meta.get('model')} from {self.meta.get('source')}"


def load_source(checkpoint: str | pathlib.Path | None = None, *, preset: str | None = None,
                scale: int | None = None, torch_weights: str | None = None,
                torch_param_key: str | None = None, overrides: Mapping[str, Any] | None = None,
                seed: int = 0, level: int | None = None, sparsity: float | None = None,
                step: int | None = None) -> ModelSource:
  """The model named by exactly one of `checkpoint` or `preset`.

  checkpoint: a model checkpoint folder, a workdir holding `model/`, or a training workdir (its
    best, else latest, readable step; or `step`). `scale`, when given, must be the checkpoint's.
  preset (+ `scale`, `overrides` of the preset's kwargs): with `torch_weights` (a .pth file;
    "{scale}" in the path is replaced by the scale) its PyTorch weights, else random weights drawn
    in NumPy from `seed` (`registry.random_params`: no compile, non-zero biases).
  level / sparsity (None or negative: the full network): one nested size of a checkpoint that
    stores a level map.
  Raises SourceError (a cli.UserError) for anything the caller can fix.
  """
  if bool(checkpoint) == bool(preset):
    raise SourceError("give either a checkpoint or a model preset name (not both, not neither)")
  if checkpoint:
    src = _from_checkpoint(pathlib.Path(checkpoint).expanduser(), scale, step)
  else:
    src = _from_preset(preset, scale, torch_weights, torch_param_key, dict(overrides or {}), seed)
  return _at_level(src, checkpoint, level, sparsity)


def _from_checkpoint(path: pathlib.Path, scale: int | None, step: int | None) -> ModelSource:
  # Local import: Orbax adds tens of MB of resident memory that random-weight runs (the memory
  # budget benchmarks of deploy/) must not pay.
  from memsr_jax import checkpoints
  if not path.exists():
    raise SourceError(f"checkpoint {path} does not exist")
  model, params, meta = checkpoints.load_model_checkpoint(path, step=step)
  meta = dict(meta)
  meta.setdefault("scale", getattr(model, "scale", None))
  if scale and int(scale) != int(meta["scale"]):
    raise SourceError(f"checkpoint {path} is a ×{meta['scale']} model ({meta.get('model')}); it "
                      f"cannot serve ×{scale}: use a ×{scale} checkpoint or drop the scale")
  meta["source"] = str(path)
  return ModelSource(model, params, meta)


def _from_preset(preset: str, scale: int | None, torch_weights: str | None,
                 param_key: str | None, overrides: dict, seed: int) -> ModelSource:
  if scale:
    overrides["scale"] = int(scale)
  try:
    kwargs = registry.model_kwargs(preset, **overrides)
  except ValueError as e:
    raise SourceError(str(e)) from None
  model = registry.build_model(preset, **overrides)
  scale = int(kwargs.get("scale", model.scale))  # a preset may leave the class default
  if torch_weights:
    given = str(torch_weights).replace("{scale}", str(scale))
    try:  # as given, else under the data home's weights/ (memsr_jax/data/home.py)
      path = home.find_weights(given, home.weights_fetch_name(given))
    except FileNotFoundError as e:
      raise SourceError(f"{e} (×{scale})") from None
    kw = {k: v for k, v in overrides.items() if k != "scale"}
    params = torch_import.load_torch_weights(str(path), preset, scale, param_key=param_key or None,
                                             **kw)
    source = str(path)
  else:
    params = registry.random_params(model, seed)
    source = f"random (seed {seed})"
  meta = {"model": preset, "model_kwargs": {k: v for k, v in overrides.items()},
          "scale": scale, "source": source}
  return ModelSource(model, params, meta)


def _at_level(src: ModelSource, checkpoint, level: int | None,
              sparsity: float | None) -> ModelSource:
  wants = (level is not None and level >= 0) or (sparsity is not None and sparsity >= 0)
  if not wants:
    return src
  level_map = _level_map(checkpoint) if checkpoint else None
  if level_map is None:
    raise SourceError(f"a level/sparsity selects one size of a scalable (MSSR) model, but "
                      f"{checkpoint or 'a model without checkpoint'} holds no level map; use a "
                      "checkpoint written by train.py with config.method='mssr' (its model/ "
                      "folder or workdir), or leave level and sparsity unset")
  try:
    k = levels.select_level(level_map, level, sparsity)
  except ValueError as e:
    raise SourceError(str(e)) from None
  meta = dict(src.meta, level=levels.level_stats(level_map)[k])
  return ModelSource(src.model, levels.params_at_level(src.params, level_map, k), meta)


def _level_map(checkpoint) -> PyTree | None:
  from memsr_jax import checkpoints  # Orbax, imported when needed (see _from_checkpoint)
  return checkpoints.load_model_item(checkpoint, levels.LEVEL_MAP_ITEM)
