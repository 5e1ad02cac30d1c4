"""The compression paper's cost report: params and multiply-adds of a registry model for one HR
output. MACs come from the one jaxpr counter, `memsr_jax.measure.cost.count_macs` (re-exported).

Convention (what the compression paper's "FLOPs" tables mean by multiply-adds):
  * every convolution: (output elements) × (kernel h · w · input channels / groups);
  * every dot_general (dense layers, attention's q·kᵀ and attn·v): (output elements) × (size of
    the contracted dimensions);
  * biases, activations, normalizations, softmax, pixel shuffle, additions: not counted.
So 1 MAC = one multiply and one add; FLOPs ≈ 2 × MACs.
"""
from typing import Any

import jax
import jax.numpy as jnp

from memsr_jax.measure.cost import count_macs
from memsr_jax.measure.cost import xla_cost
from memsr_jax.models import registry
from memsr_jax.utils import pytrees


def model_cost(model_name: str, scale: int, hr_size=(720, 1280), xla: bool = False,
               **overrides) -> dict[str, Any]:
  """Params and MACs of a registry model for one HR output of `hr_size` (h, w)."""
  h, w = hr_size
  if h % scale or w % scale:
    raise ValueError(f"HR size {hr_size} is not divisible by scale {scale}")
  model = registry.build_model(model_name, scale=scale, **overrides)
  params = jax.eval_shape(lambda: registry.init_params(model, jax.random.key(0)))
  x = jax.ShapeDtypeStruct((1, h // scale, w // scale, 3), jnp.float32)
  fn = lambda p, x: model.apply({"params": p}, x)
  out = {"model": model_name, "scale": scale, "hr_size": [h, w],
         "params": pytrees.count_params(params), **count_macs(fn, params, x)}
  if xla:  # XLA's own estimate, which also counts elementwise work: for reference only
    out["xla_flops"] = xla_cost(fn, params, x)[0].flops
  return out
