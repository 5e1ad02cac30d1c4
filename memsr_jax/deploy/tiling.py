"""Tiled super-resolution of images of any size, streamed through row bands.

Three tiling modes, picked from the model (`choose_mode`, `tile_function.pick_mode`):
- "masked" (plain nets): exact. Tiles of one fixed shape sit on a grid of cores with a halo of the
  receptive radius on every side; the parts of a tile beyond the true image are zero and a validity
  mask re-zeroes them after every conv, so zero padding happens at the true border only and 'map'
  biases see the true distance to it. One compiled shape serves every image.
- "exact" (other models with a finite receptive field, e.g. EDSR): windows are shifted inward to lie
  inside the image (so the model's own zero padding is the true border) and each tile keeps only the
  pixels at least one halo away from its interior edges. Identical to whole-image inference.
- "feather" (unbounded receptive field: IMDN's channel attention, SwinIR): overlapping windows
  blended with linear ramps across the middle half of the overlap (its outer quarters, which see
  the least context, are dropped); approximate (docs/DEPLOY.md measures the error).

Output is produced in row bands: a band's rows are handed to `sink(rows_uint8)` as soon as no later
tile touches them, so the SR image never exists whole in memory. The loop sees the model only
through `tile_function.TileFunction`; `TileFn` is the JAX implementation.
"""
import dataclasses
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.deploy.receptive_field import receptive_radius
from memsr_jax.deploy.tile_function import MODES
from memsr_jax.deploy.tile_function import TileFunction
from memsr_jax.deploy.tile_function import pick_mode
from memsr_jax.models.plain import PlainNet
from memsr_jax.utils import numerics
from memsr_jax.utils import precision as precision_lib


def choose_mode(model, mode: str | None = None) -> str:
  """`mode` checked against a JAX model, or the model's best: masked (plain nets, which take a
  validity mask), exact (finite receptive field), else feather."""
  return pick_mode(mode, receptive_radius(model), isinstance(model, PlainNet),
                   type(model).__name__)


# ----------------------------------------------------------------------------------------------
# Tile functions.

def make_tile_fn(model, params, mode: str | None = None, dtype=jnp.float32,
                 precision: str | None = "highest") -> "TileFn":
  return TileFn(model, params, mode, dtype, precision)


class TileFn:
  """A Flax model + params as a `TileFunction`: `fn(x[, mask]) -> sr` on one [1, h, w, 3] tile
  (float32 0..255 in and out), compiled once per tile shape; params are an argument (not constants
  baked into the executable), so `memory_bytes(h, w)` accounts for them through XLA's own memory
  analysis. `precision` is the policy the tiles are traced under (utils.precision; "highest":
  exact tiling on any backend)."""

  def __init__(self, model, params, mode: str | None = None, dtype=jnp.float32,
               precision: str | None = "highest"):
    self.mode = choose_mode(model, mode)
    self.model, self.dtype, self.precision = model, dtype, precision
    self.scale, self.receptive_radius = int(model.scale), receptive_radius(model)
    self.params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    out_dtype = jnp.promote_types(dtype, jnp.float32)  # float64 tiles (exactness checks) stay so
    if self.mode == "masked":
      def fn(p, x, mask):  # the plain net's own forward with its validity-mask hook
        return model.apply({"params": p}, x.astype(dtype), valid=mask.astype(dtype)).astype(
            out_dtype)
    else:
      def fn(p, x):
        return model.apply({"params": p}, x.astype(dtype)).astype(out_dtype)
    self._jit = jax.jit(fn)
    self._compiled = {}
    self.compile_rss = None  # RSS growth across the first compile (measured by budget.plan_bytes)

  def compiled(self, h: int, w: int):
    if (h, w) not in self._compiled:
      x = jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32)
      args = (self.params, x) + ((jax.ShapeDtypeStruct((1, h, w, 1), jnp.float32),)
                                 if self.mode == "masked" else ())
      with precision_lib.maybe(self.precision):  # lowering is where the precision is fixed
        self._compiled[(h, w)] = self._jit.lower(*args).compile()
    return self._compiled[(h, w)]

  def forget(self, keep: int | None = None) -> None:
    """Drops compiled executables (those probed while choosing a tile) except shapes ≤ `keep`."""
    self._compiled = {k: v for k, v in self._compiled.items()
                      if keep is not None and max(k) <= keep}

  def memory_bytes(self, h: int, w: int) -> int:
    """XLA's buffer-assignment peak for one tile: arguments + outputs + temporaries."""
    m = self.compiled(h, w).memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
               - m.alias_size_in_bytes)

  def __call__(self, x, mask=None):
    c = self.compiled(x.shape[1], x.shape[2])
    return c(self.params, x) if mask is None else c(self.params, x, mask)


# ----------------------------------------------------------------------------------------------
# Geometry: windows along one axis.

@dataclasses.dataclass(frozen=True)
class Window:
  start: int          # first LR pixel read (may be < 0 or run past the image in masked mode)
  size: int           # LR pixels read
  weight: np.ndarray  # [size * scale] weight of each HR pixel of the tile's output


def axis_windows(n: int, tile: int, halo: int, scale: int, mode: str,
                 overlap: int = 0) -> list[Window]:
  """Windows covering LR pixels [0, n) for one axis.

  masked/exact: `tile` includes the halo on both sides; weights are 0/1 and the cores they select
  partition [0, n). feather: consecutive windows overlap by at least `overlap` pixels (at most
  half a window) and their weights ramp across the overlap (`_ramp`).
  """
  wins = []
  if mode == "masked":
    core = tile - 2 * halo
    if core < 1:
      raise ValueError(f"tile {tile} leaves no core inside a halo of {halo}")
    for a in range(0, n, core):
      w = np.zeros(tile * scale, np.float32)
      w[halo * scale:(halo + min(core, n - a)) * scale] = 1
      wins.append(Window(a - halo, tile, w))
    return wins
  size = min(tile, n)
  if mode == "exact":
    if size < n and size <= 2 * halo:
      raise ValueError(f"tile {tile} leaves no core inside a halo of {halo}")
    pos = 0
    while pos < n:
      start = min(max(pos - halo, 0), n - size)
      hi = n if start + size == n else start + size - halo
      w = np.zeros(size * scale, np.float32)
      w[(pos - start) * scale:(hi - start) * scale] = 1
      wins.append(Window(start, size, w))
      pos = hi
    return wins
  if mode != "feather":
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
  if size == n:
    return [Window(0, n, np.ones(n * scale, np.float32))]
  overlap = max(1, min(overlap, size // 2))  # at most two windows overlap anywhere
  stride = size - overlap
  starts = list(range(0, n - size, stride)) + [n - size]
  x = np.arange(size * scale, dtype=np.float32) + 0.5  # HR pixel centres, from the tile edge
  for i, a in enumerate(starts):
    w = np.ones(size * scale, np.float32)
    if i > 0:  # ramp up over the overlap with the previous window
      w = np.minimum(w, _ramp(x, (starts[i - 1] + size - a) * scale))
    if i + 1 < len(starts):  # ramp down over the overlap with the next window
      w = np.minimum(w, _ramp(size * scale - x, (a + size - starts[i + 1]) * scale))
    wins.append(Window(a, size, w))
  return wins


def _ramp(dist: np.ndarray, ov: int) -> np.ndarray:
  """Feather weight at `dist` HR pixels from a window's interior edge, for an overlap of `ov`.

  The outer quarter of the overlap (the pixels that miss most context) gets weight 0 and the
  middle half a linear ramp to 1; the neighbour's ramp is its mirror image, so the two sum to 1.
  """
  margin = ov // 4
  return np.clip((dist - margin) / max(ov - 2 * margin, 1), 0, 1)


def _weight_sums(wins: Sequence[Window], n_hr: int, scale: int) -> np.ndarray:
  total = np.zeros(n_hr, np.float64)
  for w in wins:
    lo, hi = w.start * scale, (w.start + w.size) * scale
    a, b = max(lo, 0), min(hi, n_hr)
    total[a:b] += w.weight[a - lo:b - lo]
  return total


def _nonzero_range(w: Window, scale: int, n_hr: int) -> tuple[int, int]:
  nz = np.flatnonzero(w.weight)
  lo = w.start * scale
  return max(lo + nz[0], 0), min(lo + nz[-1] + 1, n_hr)


# ----------------------------------------------------------------------------------------------
# Row sources (LR input) and the band loop.

class ArraySource:
  """LR rows from an in-memory uint8 [H, W, 3] array."""

  def __init__(self, image: np.ndarray):
    self.image = image
    self.height, self.width = image.shape[:2]

  def rows(self, a: int, b: int) -> np.ndarray:
    out = np.zeros((b - a, self.width, 3), np.uint8)
    lo, hi = max(a, 0), min(b, self.height)
    if hi > lo:
      out[lo - a:hi - a] = self.image[lo:hi]
    return out


class StreamSource:
  """LR rows decoded on demand from a row reader (`read(n)`, `height`, `width`); requests must
  move forward (a window's first row never goes back), so only one window of rows is held."""

  def __init__(self, reader):
    self.reader = reader
    self.height, self.width = reader.height, reader.width
    self._buf = np.zeros((0, self.width, 3), np.uint8)
    self._lo = 0  # image row of _buf[0]

  def rows(self, a: int, b: int) -> np.ndarray:
    lo, hi = max(a, 0), min(b, self.height)
    if lo < self._lo:
      raise ValueError("StreamSource: rows must be requested in increasing order")
    have_hi = self._lo + len(self._buf)
    if hi > have_hi:
      self._buf = np.concatenate([self._buf, self.reader.read(hi - have_hi)])
    self._buf = self._buf[lo - self._lo:]
    self._lo = lo
    out = np.zeros((b - a, self.width, 3), np.uint8)
    if hi > lo:
      out[lo - a:hi - a] = self._buf[:hi - lo]
    return out


def _crop_cols(rows: np.ndarray, a: int, size: int) -> np.ndarray:
  """Columns [a, a + size) of a row band, zero outside the image."""
  w = rows.shape[1]
  if a >= 0 and a + size <= w:
    return rows[:, a:a + size]
  out = np.zeros((rows.shape[0], size, 3), rows.dtype)
  lo, hi = max(a, 0), min(a + size, w)
  out[:, lo - a:hi - a] = rows[:, lo:hi]
  return out


def _validity(start: int, size: int, n: int) -> np.ndarray:
  idx = np.arange(start, start + size)
  return ((idx >= 0) & (idx < n)).astype(np.float32)


@dataclasses.dataclass
class TilePlan:
  mode: str
  tile: int      # LR window side (halo included)
  halo: int      # exact modes: receptive radius; feather: overlap
  scale: int


def run_tiled(source, tile_fn: Callable, plan: TilePlan, sink: Callable[[np.ndarray], None],
              progress: Callable[[int, int], None] | None = None) -> None:
  """Super-resolves `source` tile by tile; `sink` receives uint8 HR row bands top to bottom. A tile
  output holding NaN or Inf raises `numerics.NonFiniteOutputError`."""
  s, h_lr, w_lr = plan.scale, source.height, source.width
  h_hr, w_hr = h_lr * s, w_lr * s
  ywins = axis_windows(h_lr, plan.tile, plan.halo, s, plan.mode, overlap=plan.halo)
  xwins = axis_windows(w_lr, plan.tile, plan.halo, s, plan.mode, overlap=plan.halo)
  exact = plan.mode != "feather"
  if not exact:  # normalisers of the separable blending weights
    ysum = _weight_sums(ywins, h_hr, s)
    xsum = _weight_sums(xwins, w_hr, s).astype(np.float32)
  # Output rows [acc_lo, acc_lo + len(acc)): final uint8 pixels in the exact modes (each pixel has
  # one owner tile), a float32 weighted sum when feathering.
  acc_dtype = np.uint8 if exact else np.float32
  acc, acc_lo = np.zeros((0, w_hr, 3), acc_dtype), 0
  xmasks = [_validity(xw.start, xw.size, w_lr) for xw in xwins]
  n_tiles, done = len(ywins) * len(xwins), 0
  for iy, yw in enumerate(ywins):
    band_lo, band_hi = _nonzero_range(yw, s, h_hr)
    if band_hi > acc_lo + len(acc):  # grow the accumulator down to this window's last row
      acc = np.concatenate([acc, np.zeros((band_hi - acc_lo - len(acc), w_hr, 3), acc_dtype)])
    rows = source.rows(yw.start, yw.start + yw.size)
    ymask = _validity(yw.start, yw.size, h_lr)
    t_lo = yw.start * s  # HR row of the tile output's first row
    ysel = slice(band_lo - t_lo, band_hi - t_lo)
    wy = yw.weight[ysel][:, None, None]
    for xw, xm in zip(xwins, xmasks):
      x = _crop_cols(rows, xw.start, xw.size).astype(np.float32)[None]
      if plan.mode == "masked":
        out = tile_fn(x, (ymask[:, None] * xm[None, :])[None, :, :, None])
      else:
        out = tile_fn(x)
      out = np.asarray(out)
      numerics.check_finite_output(out)  # NaN/Inf would become black or white pixels
      out = out[0, ysel]
      c_lo, c_hi = _nonzero_range(xw, s, w_hr)
      xsel = slice(c_lo - xw.start * s, c_hi - xw.start * s)
      target = acc[band_lo - acc_lo:band_hi - acc_lo, c_lo:c_hi]
      if exact:  # weights are 0/1 and select one rectangle, the tile's core
        rows_in = np.flatnonzero(wy[:, 0, 0])
        cols_in = np.flatnonzero(xw.weight[xsel])
        core = out[rows_in[0]:rows_in[-1] + 1, xsel][:, cols_in[0]:cols_in[-1] + 1]
        target[rows_in[0]:rows_in[-1] + 1, cols_in[0]:cols_in[-1] + 1] = np.clip(
            np.round(core), 0, 255).astype(np.uint8)
      else:
        target += out[:, xsel] * wy * xw.weight[xsel][None, :, None]
      done += 1
      if progress:
        progress(done, n_tiles)
    # Rows above the next window's first contributing row are final.
    final_hi = _nonzero_range(ywins[iy + 1], s, h_hr)[0] if iy + 1 < len(ywins) else h_hr
    n_final = final_hi - acc_lo
    if n_final > 0:
      band = acc[:n_final]
      if not exact:  # normalise and round in place: no second float copy of the band
        band /= ysum[acc_lo:final_hi, None, None].astype(np.float32)
        band /= xsum[None, :, None]
        np.round(band, out=band)
        np.clip(band, 0, 255, out=band)
        band = band.astype(np.uint8)
      sink(band)
      acc, acc_lo = acc[n_final:], final_hi


def tile_array(fn: TileFunction, image: np.ndarray, tile: int | None = None, overlap: int = 16,
               as_float: bool = False) -> np.ndarray:
  """Tiled SR of an in-memory uint8 image through any backend → uint8 [H*s, W*s, 3].

  `tile` (halo included) defaults to the whole image in one tile. With `as_float=True` it returns
  the unrounded output (float32, or float64 for float64 tiles; exactness checks); this keeps the
  full float output in memory, unlike `run_tiled` with a streaming sink.
  """
  halo = fn.receptive_radius if fn.mode != "feather" else overlap
  tile = tile or max(image.shape[:2]) + (2 * halo if fn.mode == "masked" else 0)
  plan = TilePlan(fn.mode, tile, halo, fn.scale)
  if as_float:
    return _float_tiled(ArraySource(image), fn, plan)
  bands = []
  run_tiled(ArraySource(image), fn, plan, bands.append)
  return np.concatenate(bands)


def upscale_array(model, params, image: np.ndarray, tile: int | None = None,
                  mode: str | None = None, overlap: int = 16, dtype=jnp.float32,
                  tile_fn: TileFn | None = None, as_float: bool = False) -> np.ndarray:
  """`tile_array` for a Flax model + params (or its `tile_fn`, reused across calls)."""
  fn = tile_fn or make_tile_fn(model, params, choose_mode(model, mode), dtype)
  return tile_array(fn, image, tile, overlap, as_float)


def _float_tiled(source, fn, plan) -> np.ndarray:
  """Float output of the same tiling (for tests): run_tiled's logic without rounding."""
  s = plan.scale
  img = np.zeros((source.height * s, source.width * s, 3), np.float64)
  wsum = np.zeros(img.shape[:2], np.float64)
  out_dtype = np.float32
  rows_all = source.rows(-plan.tile, source.height + plan.tile)
  for yw in axis_windows(source.height, plan.tile, plan.halo, s, plan.mode, plan.halo):
    rows = rows_all[yw.start + plan.tile:yw.start + plan.tile + yw.size]
    for xw in axis_windows(source.width, plan.tile, plan.halo, s, plan.mode, plan.halo):
      x = _crop_cols(rows, xw.start, xw.size).astype(np.float32)[None]
      if plan.mode == "masked":
        m = _validity(yw.start, yw.size, source.height)[:, None] * _validity(
            xw.start, xw.size, source.width)[None, :]
        out = np.asarray(fn(x, m[None, :, :, None]))[0]
      else:
        out = np.asarray(fn(x))[0]
      out_dtype = np.result_type(out_dtype, out.dtype)
      wgt = yw.weight[:, None] * xw.weight[None, :]
      y0, x0 = yw.start * s, xw.start * s
      a, b = max(y0, 0), min(y0 + wgt.shape[0], img.shape[0])
      c, d = max(x0, 0), min(x0 + wgt.shape[1], img.shape[1])
      ww = wgt[a - y0:b - y0, c - x0:d - x0]
      img[a:b, c:d] += out[a - y0:b - y0, c - x0:d - x0] * ww[..., None]
      wsum[a:b, c:d] += ww
  return (img / wsum[..., None]).astype(out_dtype)
