"""The model a deploy command runs, from its model-source flags (`cli.add_model_source_flags`):
`memsr_jax.inference.source.load_source` with the flags' names in its messages."""
import pathlib

from memsr_jax.inference.source import load_source
from memsr_jax.utils import cli


def load(checkpoint=None, model=None, scale=None, torch_weights=None, param_key=None,
         overrides=None, seed: int = 0):
  """(model, params, info) from --checkpoint, or preset --model with --torch_weights (random
  params from `seed` without them); info: model, scale, step, source (an absolute path, or how
  the random params were drawn). --scale is checked against a checkpoint's; --set and
  --torch_weights go with --model only (a checkpoint holds its own hyperparameters and weights)."""
  if checkpoint and (overrides or torch_weights or param_key):
    flag = "--set" if overrides else "--torch_weights" if torch_weights else "--param_key"
    raise cli.UsageError(f"{flag} goes with --model; --checkpoint {checkpoint} holds its own "
                         f"hyperparameters and weights: drop {flag}")
  src = load_source(checkpoint, preset=model, scale=None if checkpoint else scale,
                    torch_weights=torch_weights, torch_param_key=param_key,
                    overrides=overrides, seed=seed)
  if checkpoint and scale and scale != src.scale:
    raise cli.UsageError(f"checkpoint {checkpoint} is a ×{src.scale} model ({src.name}) but "
                         f"--scale {scale} was given: use a ×{scale} checkpoint or drop --scale")
  source = src.meta.get("source", "")
  if source and pathlib.Path(source).exists():
    source = str(pathlib.Path(source).resolve())
  return src.model, src.params, {"model": src.meta.get("model"), "scale": src.scale,
                                 "step": src.meta.get("step"), "source": source}
