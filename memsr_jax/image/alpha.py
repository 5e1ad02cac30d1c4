"""Keeping an image's alpha channel through super-resolution.

The model sees premultiplied colour (`premultiply`: colour × alpha / 255), so colours stored
under fully transparent pixels never reach it and never leak into visible pixels; alpha itself is
upscaled with MATLAB's bicubic (`upscale_alpha`, the kernel of `image.bicubic`), as other SR tools
do; `unpremultiply` divides the SR colour by the upscaled alpha and sets the colour of fully
transparent output pixels to 0. All three work on row bands, so streamed images keep alpha too.
"""
import functools
import math

import numpy as np

from memsr_jax.image import bicubic


def premultiply(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
  """round(rgb · alpha / 255) as uint8: the colour of a fully transparent pixel becomes 0."""
  rgb = np.asarray(rgb, np.uint32)
  a = np.asarray(alpha, np.uint32)[..., None]
  return ((rgb * a * 2 + 255) // 510).astype(np.uint8)  # round half up, integer-exact


def unpremultiply(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
  """round(rgb · 255 / alpha) clipped to 255, and 0 where alpha is 0."""
  rgb = np.asarray(rgb, np.float64)
  a = np.asarray(alpha, np.float64)[..., None]
  out = np.where(a > 0, np.floor(rgb * 255.0 / np.maximum(a, 1.0) + 0.5), 0.0)
  return np.clip(out, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=8)  # every band of an image asks for the same tables
def _taps(in_length: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
  """(0-based input indices, weights), each [in_length · scale, 6]: MATLAB bicubic upscaling of
  one axis (`bicubic.resize_matrix` as a sparse table, so wide images need no dense matrix)."""
  out = np.arange(1, in_length * scale + 1, dtype=np.float64)
  u = out / scale + 0.5 * (1.0 - 1.0 / scale)
  taps = int(math.ceil(4.0)) + 2
  indices = np.floor(u - 2.0)[:, None] + np.arange(taps)[None, :]  # 1-based
  weights = bicubic.cubic(u[:, None] - indices)
  weights /= weights.sum(axis=1, keepdims=True)
  period = 2 * in_length  # symmetric padding, as MATLAB
  folded = np.mod(indices.astype(np.int64) - 1, period)
  folded = np.where(folded < in_length, folded, period - 1 - folded)
  folded.setflags(write=False)
  weights.setflags(write=False)
  return folded, weights


def alpha_rows_needed(in_height: int, scale: int, row0: int, row1: int) -> tuple[int, int]:
  """The LR alpha rows [a, b) that output rows [row0, row1) of `upscale_alpha` read."""
  idx, _ = _taps(in_height, scale)
  used = idx[row0:row1]
  return int(used.min()), int(used.max()) + 1


def upscale_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
  """Bicubic ×scale of an alpha plane [h, w] uint8, rounded and clipped to uint8."""
  alpha = np.asarray(alpha)
  if alpha.ndim != 2 or alpha.dtype != np.uint8:
    raise ValueError(f"alpha must be uint8 [H, W], got {alpha.dtype} {alpha.shape}")
  return _upscale(alpha, scale, 0, alpha.shape[0] * scale, 0, alpha.shape[0])


def upscale_alpha_band(alpha_band: np.ndarray, in_height: int, scale: int, row0: int,
                       row1: int, first_row: int) -> np.ndarray:
  """Output rows [row0, row1) from the LR alpha rows [first_row, first_row + len(band)) of an
  image `in_height` rows high (those `alpha_rows_needed` names)."""
  return _upscale(np.asarray(alpha_band), scale, row0, row1, first_row, in_height)


def _upscale(alpha, scale, row0, row1, first_row, in_height):
  r_idx, r_w = _taps(in_height, scale)
  c_idx, c_w = _taps(alpha.shape[1], scale)
  rows_idx = r_idx[row0:row1] - first_row
  if rows_idx.size and (rows_idx.min() < 0 or rows_idx.max() >= alpha.shape[0]):
    raise ValueError(f"output rows {row0}..{row1} need LR alpha rows outside the band given")
  a = alpha.astype(np.float64)
  tall = np.einsum("ot,otw->ow", r_w[row0:row1], a[rows_idx])  # [rows, w]
  wide = np.einsum("pt,opt->op", c_w, tall[:, c_idx])  # [rows, w · scale]
  return bicubic.round_like_matlab(wide)
