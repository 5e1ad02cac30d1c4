"""Memory budgets: parse '256MB', estimate one tiling plan's peak bytes, pick the largest tile.

Estimate = XLA_FACTOR × XLA's memory analysis of the compiled tile function (params + tile
input/mask + output + temporaries; the runtime needs somewhat more than its buffer assignment)
+ the host buffers of `tiling.run_tiled` (LR row window, output band, PNG filter buffers, one tile's
output copy) + the whole decoded input when the input is not streamed + the RSS growth measured
across the first compile of the tile function (LLVM's memory, which stays resident). The
runtime's fixed overhead (the Python/JAX/XLA process itself, ~hundreds of MB) is not part of the
budget; benchmarks/upscale_100mp.py measures both.
"""
import re

import numpy as np
import psutil

from memsr_jax.deploy.tile_function import TileFunction

_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9,
          "KIB": 2 ** 10, "MIB": 2 ** 20, "GIB": 2 ** 30}


# Share of the budget the estimate may use: the rest is headroom for what the estimate does not see
# (the LLVM compile of the tile function, allocator slack, the PNG zlib state).
HEADROOM = 0.85
XLA_FACTOR = 1.25


class BudgetTooSmall(ValueError):
  """Not even the smallest tile fits in the memory budget."""


# A size written without a unit is bytes; below this many it is refused (a "256" meant as MB).
MIN_UNITLESS_BYTES = 10 ** 6


def parse_memory(text: str | int) -> int:
  """'256MB' → 256e6 bytes (KB/MB/GB decimal, KiB/MiB/GiB binary). Text without a unit is bytes
  and must be at least MIN_UNITLESS_BYTES (ValueError otherwise); ints are bytes."""
  if isinstance(text, (int, float)):
    return int(text)
  m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
  if not m or m.group(2).upper() not in _UNITS:
    raise ValueError(f"cannot read memory size {text!r}: use e.g. 256MB, 1.5GB, 512MiB or bytes")
  value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
  if not m.group(2) and value < MIN_UNITLESS_BYTES:
    raise ValueError(f"memory size {text.strip()!r} has no unit, so it would be {value} bytes: "
                     f"write the unit, e.g. {m.group(1)}MB or {m.group(1)}GB (a number without "
                     f"a unit is bytes and must be at least {MIN_UNITLESS_BYTES})")
  return value


def fmt_mb(n: float) -> str:
  return f"{n / 1e6:.1f} MB"


def host_bytes(mode: str, tile: int, halo: int, scale: int, height: int, width: int,
               input_in_memory: bool) -> int:
  """Host-side buffers of `run_tiled` for one plan (bytes, a safe upper estimate)."""
  th, tw = (tile, tile) if mode == "masked" else (min(tile, height), min(tile, width))
  w_hr = width * scale
  band_rows = (tile - 2 * halo if mode == "masked" else th) * scale
  # Output band: uint8 in the exact modes, float32 when feathering; x2 for the growth copy.
  acc = band_rows * w_hr * 3 * (4 if mode == "feather" else 1) * 2
  band_u8 = band_rows * w_hr * 3 + 16 * w_hr * 3 * 3  # rounded band, PNG filter chunks
  rows = th * width * 3 * 2                     # LR row window (+ the reader's buffer)
  tile_io = th * tw * 4 * 8 + (th * scale) * (tw * scale) * 3 * 4 * 3  # tile in/mask, out copies
  image = height * width * 3 if input_in_memory else 0
  return int(acc + band_u8 + rows + tile_io + image)


def _rss() -> int:
  return psutil.Process().memory_info().rss


def plan_bytes(fn: TileFunction, tile: int, halo: int, height: int, width: int,
               input_in_memory: bool) -> int:
  th, tw = (tile, tile) if fn.mode == "masked" else (min(tile, height), min(tile, width))
  if fn.compile_rss is None:  # measure what the first compile leaves resident
    before = _rss()
    fn.compiled(th, tw)
    fn.compile_rss = max(0, _rss() - before)
  return int(XLA_FACTOR * fn.memory_bytes(th, tw)) + fn.compile_rss + host_bytes(
      fn.mode, tile, halo, fn.scale, height, width, input_in_memory)


def min_tile(mode: str, halo: int) -> int:
  return 2 * halo + 8 if mode != "feather" else max(2 * halo, 16)


def choose_tile(fn: TileFunction, halo: int, height: int, width: int, budget: int | None,
                input_in_memory: bool, max_tile: int = 1024) -> tuple[int, int]:
  """Largest tile (multiple of 8, halo included) whose plan fits `budget` → (tile, est. bytes).

  Without a budget: the whole image in one tile (capped at `max_tile`). Raises `BudgetTooSmall`
  naming the minimum budget when even the smallest tile does not fit.
  """
  lo = min_tile(fn.mode, halo)
  extra = 2 * halo if fn.mode == "masked" else 0
  hi = max(lo, min(max_tile, max(height, width) + extra))
  if fn.mode != "masked":  # windows never exceed the image
    lo, hi = min(lo, max(height, width)), min(hi, max(height, width))
  if budget is None:
    return hi, plan_bytes(fn, hi, halo, height, width, input_in_memory)
  cost = lambda t: plan_bytes(fn, t, halo, height, width, input_in_memory)
  need = cost(lo)
  usable = budget * HEADROOM
  if need > usable:
    minimum = need / HEADROOM
    raise BudgetTooSmall(
        f"memory budget {fmt_mb(budget)} is too small: the smallest tile ({lo}×{lo} LR pixels "
        f"with a halo of {halo}) of this {width}×{height} image needs about {fmt_mb(need)} "
        f"(+{100 - HEADROOM * 100:.0f}% headroom); pass --max_memory "
        f"{int(np.ceil(minimum / 1e6))}MB or more")
  # Binary search over the candidate sides (cost grows with the tile side).
  sides = sorted({lo, hi, *range(lo - lo % 8 + 8, hi, 8)})
  a, b = 0, len(sides) - 1
  best, best_cost = lo, need
  while a <= b:
    mid = (a + b) // 2
    c = cost(sides[mid])
    if c <= usable:
      best, best_cost, a = sides[mid], c, mid + 1
    else:
      b = mid - 1
  fn.forget(keep=best)
  return best, best_cost
