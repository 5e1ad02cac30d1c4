"""Cost of a model on one input size: params, multiply-adds, XLA flops, peak memory, latency.

Multiply-add convention (as in the SR papers' "Mult-Adds"): one multiply-accumulate of a
convolution or matrix product counts once; biases, activations, normalisation, softmax, pixel
shuffle and additions of skips are not counted. Counted from the traced program (jaxpr), so it
holds for every model: conv = output elements × kh·kw·cin/groups, dot = output elements ×
contracted size.
"""
import dataclasses
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np


def _subjaxprs(eqn):
  for v in eqn.params.values():
    vals = v if isinstance(v, (list, tuple)) else [v]
    for x in vals:
      if hasattr(x, "jaxpr") and hasattr(x, "consts"):  # ClosedJaxpr
        yield x.jaxpr
      elif hasattr(x, "eqns"):
        yield x


def _count(jaxpr) -> dict[str, int]:
  """{"conv": MACs, "dot": MACs} of a jaxpr, recursing into sub-jaxprs (jit, cond, scan …)."""
  counts = {"conv": 0, "dot": 0}
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "conv_general_dilated":
      out = eqn.outvars[0].aval
      rhs = eqn.invars[1].aval
      dn = eqn.params["dimension_numbers"]
      k_spec = dn.rhs_spec  # (out_feature_dim, in_feature_dim, spatial...)
      per_out = rhs.shape[k_spec[1]] * int(np.prod([rhs.shape[d] for d in k_spec[2:]]))
      counts["conv"] += int(np.prod(out.shape)) * per_out
    elif name == "dot_general":
      (lc, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval
      contracted = int(np.prod([lhs.shape[d] for d in lc])) if lc else 1
      counts["dot"] += int(np.prod(eqn.outvars[0].aval.shape)) * contracted
    else:
      # A scan body runs `length` times; other sub-programs (jit, cond branches) count once.
      mult = eqn.params.get("length", 1) if name == "scan" else 1
      for sub in _subjaxprs(eqn):
        for kind, n in _count(sub).items():
          counts[kind] += mult * n
  return counts


def count_macs(fn, *args) -> dict[str, int]:
  """{"macs", "conv_macs", "dot_macs"} of `fn(*args)` (args may be ShapeDtypeStructs)."""
  counts = _count(jax.make_jaxpr(fn)(*args).jaxpr)
  return {"macs": counts["conv"] + counts["dot"], "conv_macs": counts["conv"],
          "dot_macs": counts["dot"]}


def model_macs(model, params, lr_shape) -> int:
  """Multiply-adds of one forward of `model` on an LR batch of `lr_shape`."""
  x = jax.ShapeDtypeStruct(lr_shape, jnp.float32)
  return count_macs(lambda p, x: model.apply({"params": p}, x), params, x)["macs"]


@dataclasses.dataclass
class XlaCost:
  flops: float
  argument_bytes: int
  output_bytes: int
  temp_bytes: int
  alias_bytes: int

  @property
  def peak_bytes(self) -> int:
    """Arguments (params + input) + outputs + temporaries, as XLA's buffer assignment sizes them."""
    return self.argument_bytes + self.output_bytes + self.temp_bytes - self.alias_bytes


def _flops(compiled) -> float:
  ca = compiled.cost_analysis()
  if isinstance(ca, (list, tuple)):
    ca = ca[0] if ca else {}
  return float((ca or {}).get("flops", float("nan")))


def cpu_flops(fn, *args) -> float:
  """XLA's flop count of `fn` compiled for the CPU: the same number on every machine. GPU compilers
  pad channels for tensor cores and turn convs into cuDNN calls, so their counts vary by backend."""
  specs = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), args)
  with jax.default_device(jax.devices("cpu")[0]):
    return _flops(jax.jit(fn).lower(*specs).compile())


def xla_cost(fn, *args) -> tuple[XlaCost, object]:
  """(cost, compiled) of `jax.jit(fn)` lowered for `args` (arrays or ShapeDtypeStructs): memory
  from the default device's compile, flops from the CPU compile (`cpu_flops`)."""
  compiled = jax.jit(fn).lower(*args).compile()
  flops = _flops(compiled) if jax.default_backend() == "cpu" else cpu_flops(fn, *args)
  m = compiled.memory_analysis()
  return XlaCost(flops, int(m.argument_size_in_bytes),
                 int(m.output_size_in_bytes), int(m.temp_size_in_bytes),
                 int(m.alias_size_in_bytes)), compiled


def time_call(fn, *args, repeats: int = 3) -> float:
  """Median wall seconds of `fn(*args)` after one warm-up call."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def device_peak_bytes() -> int | None:
  """Peak bytes in use on the default device since start (GPU/TPU allocators; None on CPU)."""
  stats = jax.devices()[0].memory_stats()
  return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


# ------------------------------------------------------------------------------------------------
# Plain nets: how close to "two feature maps alive" does XLA get?

def plain_layer_fns(model):
  """A plain net as its per-layer functions `f(params, h) -> h` (`PlainNet.layer`: mean handling in
  the first/last), so each can be jitted alone with its input buffer donated."""
  return [lambda p, h, i=i: model.apply({"params": p}, h, i, method=type(model).layer)
          for i in range(model.n_layers + 1)]


def plain_layerwise_peak(model, params, lr_shape) -> dict:
  """Peak bytes when a plain net runs one jitted layer at a time with its input donated:
  max over layers of (layer params + input + output + temporaries − aliased), plus the params of
  the other layers, which stay resident. Compared with the two-feature-map ideal."""
  h = jax.ShapeDtypeStruct(lr_shape, jnp.float32)
  total_param_bytes = sum(np.size(x) * 4 for x in jax.tree_util.tree_leaves(params))
  peak, per_layer = 0, []
  for i, f in enumerate(plain_layer_fns(model)):
    key = "tail" if i == model.n_layers else f"conv_{i}"
    sub = {key: params[key]}
    with warnings.catch_warnings():  # a layer's output differs in shape: donation is best effort
      warnings.simplefilter("ignore")
      compiled = jax.jit(f, donate_argnums=1).lower(sub, h).compile()
    m = compiled.memory_analysis()
    layer_bytes = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                   - m.alias_size_in_bytes)
    sub_bytes = sum(np.size(x) * 4 for x in jax.tree_util.tree_leaves(sub))
    per_layer.append(int(layer_bytes))
    peak = max(peak, int(layer_bytes + total_param_bytes - sub_bytes))
    h = jax.eval_shape(f, sub, h)
  widest = max(model.widths[1:])
  ideal = 2 * int(np.prod(lr_shape[:3])) * widest * 4
  return {"layerwise_peak_bytes": peak, "two_feature_maps_bytes": ideal,
          "per_layer_bytes": per_layer}
