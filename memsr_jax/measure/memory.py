"""Process-memory helpers: allocator settings that make RSS follow live memory, random params
without an XLA compile, and peak-RSS readings."""
import ctypes
import ctypes.util
import resource
import sys

import jax
import jax.numpy as jnp
import numpy as np

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def tighten_allocator(mmap_threshold: int = 1 << 20) -> bool:
  """Asks glibc to serve blocks ≥ `mmap_threshold` with mmap (returned to the OS on free), to trim
  the heap eagerly and to use few arenas, so that freed tiles and compile-time scratch do not keep
  the process's RSS high. No-op (False) off glibc."""
  if not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    ok = libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, mmap_threshold)
    ok &= libc.mallopt(_M_ARENA_MAX, 2)
    return bool(ok)
  except (OSError, AttributeError):
    return False


def peak_rss_bytes() -> int:
  """This process's peak resident set size (Linux reports ru_maxrss in KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def random_params(model, seed: int = 0, lr_shape=(1, 16, 16, 3), bias_std: float = 0.5):
  """Random params with the shapes of `model.init`, drawn in NumPy (no XLA compile, whose memory
  would count against a small budget): kernels N(0, 1/fan_in) (LeCun), biases N(0, bias_std²)
  (non-zero on purpose, so border handling matters), other leaves N(0, 0.02²)."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(lr_shape)))["params"]
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = str(getattr(path[-1], "key", path[-1]))
    if name == "kernel" and len(leaf.shape) >= 2:
      fan_in = int(np.prod(leaf.shape[:-1]))
      return (rng.standard_normal(leaf.shape) / np.sqrt(fan_in)).astype(leaf.dtype)
    if name.startswith("bias"):
      return (bias_std * rng.standard_normal(leaf.shape)).astype(leaf.dtype)
    if name == "scale":  # normalisation scales
      return np.ones(leaf.shape, leaf.dtype)
    return (0.02 * rng.standard_normal(leaf.shape)).astype(leaf.dtype)

  return jax.tree_util.tree_map_with_path(draw, shapes)
