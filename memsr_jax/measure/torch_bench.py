"""Side-by-side with PyTorch (optional): the same plain net / EDSR in torch (the references of
`memsr_jax.interop.torch_models`), weights copied from JAX, timed and memory-measured the same way
as the JAX version on the same machine.

Memory method (both frameworks, CPU): glibc is told to serve blocks ≥ 1 MiB by mmap (so freed
buffers leave RSS), the process's peak RSS (VmHWM) is reset through /proc/self/clear_refs just
before one warm inference call, and the growth of VmHWM over the RSS at that moment is the call's
peak memory (activations + output; params and input are resident before). Outputs are compared
(max |JAX − torch|) so the two really run the same network. Needs Linux for the reset; torch is
imported lazily.
"""
import time

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.models.edsr import EDSR
from memsr_jax.models.plain import PlainNet
from memsr_jax.utils import optional
from memsr_jax.utils import procmem


def _require_torch():
  """torch (optional); missing, it is one line saying what to install."""
  return optional.require("torch", "the PyTorch side-by-side (--torch)")


def supported(model) -> bool:
  return isinstance(model, PlainNet) or (isinstance(model, EDSR) and model.res_scale == 1.0
                                         and model.body_bias == "vector")


def build_torch(model, params):
  """The torch reference (`memsr_jax.interop.torch_models`) computing
  `model.apply({"params": params}, x)` in NCHW."""
  _require_torch()
  from memsr_jax.interop import torch_models
  if not supported(model):
    raise ValueError(f"no torch twin for {type(model).__name__}")
  return torch_models.from_jax(model, params)


def measure_call(fn, repeats: int = 3) -> dict:
  """Latency (median of `repeats` after a warm-up) and peak RSS growth of one warm call."""
  fn()  # warm-up (compiles JAX; torch allocator warm-up)
  base = procmem.reset_peak()  # VmHWM reset to the current RSS
  out = fn()
  growth = procmem.peak_growth_bytes(base)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return {"latency_s": float(np.median(times)), "peak_rss_growth_bytes": growth,
          "output": out}


def measure_call_gpu(fn, repeats: int, framework: str) -> dict:
  """GPU: latency (median after a warm-up; `fn` returns host arrays, so each call is synchronized)
  and the device allocator's peak over one warm call, above what was in use before it. torch
  resets its peak counter; JAX cannot, so its figure counts only when the call sets a new
  process peak (`peak_is_lower_bound`)."""
  import jax
  fn()
  if framework == "torch":
    import torch
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = fn()
    peak = torch.cuda.max_memory_allocated() - base
  else:
    stats = jax.local_devices()[0].memory_stats() or {}
    base = stats.get("bytes_in_use", 0)
    out = fn()
    peak = (jax.local_devices()[0].memory_stats() or {}).get("peak_bytes_in_use", 0) - base
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return {"latency_s": float(np.median(times)), "device_peak_bytes": int(peak), "output": out,
          "peak_is_lower_bound": framework == "jax"}


def side_by_side(model, params, lr_shape, repeats: int = 3, threads: int | None = None) -> dict:
  """JAX vs torch on the same input (NHWC `lr_shape`), same process, same method: on a GPU (JAX
  on a GPU and torch.cuda available) device latency and allocator peaks, else CPU peak RSS."""
  torch = _require_torch()
  if jax.default_backend() == "gpu" and torch.cuda.is_available():
    return _side_by_side_gpu(torch, model, params, lr_shape, repeats)
  # Big blocks via mmap: freed buffers leave RSS, so a warm call's growth is its real peak.
  procmem.tighten_allocator()
  if threads:
    torch.set_num_threads(threads)
  x = np.random.default_rng(0).uniform(0, 255, lr_shape).astype(np.float32)
  f = jax.jit(lambda p, x: model.apply({"params": p}, x))
  xj, pj = jnp.asarray(x), jax.tree_util.tree_map(jnp.asarray, params)
  jx = measure_call(lambda: np.asarray(f(pj, xj)), repeats)
  tmodel = build_torch(model, params)
  xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

  def run_torch():
    with torch.inference_mode():
      return tmodel(xt).numpy().transpose(0, 2, 3, 1)
  tx = measure_call(run_torch, repeats)
  diff = float(np.abs(jx.pop("output") - tx.pop("output")).max())
  return {"lr_shape": list(lr_shape), "jax": jx, "torch": tx, "max_abs_diff": diff,
          "latency_ratio_jax_over_torch": jx["latency_s"] / tx["latency_s"],
          "memory_ratio_jax_over_torch": (jx["peak_rss_growth_bytes"]
                                          / max(tx["peak_rss_growth_bytes"], 1)),
          "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
          "memory_method": "peak RSS growth (VmHWM reset via /proc/self/clear_refs) during one "
                           "warm call, same process"}


def _side_by_side_gpu(torch, model, params, lr_shape, repeats: int) -> dict:
  import jax
  import jax.numpy as jnp
  x = np.random.default_rng(0).uniform(0, 255, lr_shape).astype(np.float32)
  f = jax.jit(lambda p, x: model.apply({"params": p}, x))
  xj, pj = jnp.asarray(x), jax.tree_util.tree_map(jnp.asarray, params)
  jx = measure_call_gpu(lambda: np.asarray(f(pj, xj)), repeats, "jax")
  tmodel = build_torch(model, params).cuda()
  xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).cuda()

  def run_torch():
    with torch.inference_mode():
      return tmodel(xt).cpu().numpy().transpose(0, 2, 3, 1)
  tx = measure_call_gpu(run_torch, repeats, "torch")
  diff = float(np.abs(jx.pop("output") - tx.pop("output")).max())
  return {"lr_shape": list(lr_shape), "jax": jx, "torch": tx, "max_abs_diff": diff,
          "device": str(jax.devices()[0].device_kind),
          "latency_ratio_jax_over_torch": jx["latency_s"] / tx["latency_s"],
          "memory_ratio_jax_over_torch": (jx["device_peak_bytes"]
                                          / max(tx["device_peak_bytes"], 1)),
          "torch_version": torch.__version__,
          # Both at their backends' defaults (TF32 convs on Ampere+), like the JAX profile.
          "torch_cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
          "memory_method": "device allocator peak over one warm call above the bytes in use "
                           "before it (torch: reset_peak_memory_stats; JAX: peak_bytes_in_use, a "
                           "lower bound when an earlier call peaked higher)"}
