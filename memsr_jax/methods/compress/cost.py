"""Multiply-accumulate counts of a model, read off its jaxpr (exact for the traced shapes).

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
import numpy as np

from memsr_jax import pytrees
from memsr_jax.models import registry


def _count_eqns(jaxpr) -> tuple[int, dict[str, int]]:
  total, by_kind = 0, {"conv": 0, "dot": 0}
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "conv_general_dilated":
      out = eqn.outvars[0].aval.shape
      rhs = eqn.invars[1].aval.shape
      dn = eqn.params["dimension_numbers"]
      # rhs_spec: (out feature dim, in feature dim, spatial dims…)
      in_dim = rhs[dn.rhs_spec[1]]
      spatial = int(np.prod([rhs[d] for d in dn.rhs_spec[2:]]))
      macs = int(np.prod(out)) * spatial * in_dim
      by_kind["conv"] += macs
      total += macs
    elif name == "dot_general":
      (lhs_contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      k = int(np.prod([lhs[d] for d in lhs_contract])) if lhs_contract else 1
      macs = int(np.prod(eqn.outvars[0].aval.shape)) * k
      by_kind["dot"] += macs
      total += macs
    for sub in jax.core.subjaxprs(eqn) if hasattr(jax.core, "subjaxprs") else _subjaxprs(eqn):
      t, b = _count_eqns(sub)
      total += t
      for kk, v in b.items():
        by_kind[kk] += v
  return total, by_kind


def _subjaxprs(eqn):
  for v in eqn.params.values():
    vals = v if isinstance(v, (tuple, list)) else (v,)
    for x in vals:
      if hasattr(x, "jaxpr") and hasattr(x.jaxpr, "eqns"):  # ClosedJaxpr
        yield x.jaxpr
      elif hasattr(x, "eqns"):
        yield x


def count_macs(fn, *args) -> dict[str, int]:
  """{"macs", "conv_macs", "dot_macs"} of `fn(*args)` (args may be ShapeDtypeStructs)."""
  closed = jax.make_jaxpr(fn)(*args)
  total, by_kind = _count_eqns(closed.jaxpr)
  return {"macs": total, "conv_macs": by_kind["conv"], "dot_macs": by_kind["dot"]}


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
    cost = jax.jit(fn).lower(params, x).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):
      cost = cost[0]
    out["xla_flops"] = float(cost.get("flops", float("nan")))
  return out
