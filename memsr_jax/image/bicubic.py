"""MATLAB `imresize(..., 'bicubic')`, exactly (protocol step 3).

MATLAB's algorithm, per axis: output pixel x (1-based) maps to input coordinate
u = x / s + 0.5 · (1 − 1/s); it takes the cubic kernel (a = −0.5) at the distances to the
⌈width⌉ + 2 input pixels from ⌊u − width/2⌋ on, normalizes the weights to sum to one, and folds
out-of-range indices back into the image by mirroring (symmetric padding, the edge pixel repeated).
When downscaling (s < 1) the kernel is stretched to s · k(s · x) with width 4 / s, which is the
antialiasing that `jax.image.resize`, PIL and OpenCV do differently. Output size is ⌈n · s⌉.

Both axes are applied as dense weight matrices built in float64, so one resize is two matmuls.
Unlike MATLAB on uint8 input (which rounds to uint8 between the two axes), everything stays in
float64 until the single final rounding in `bicubic_downscale`, as the protocol specifies.
"""
import functools
import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def cubic(x: np.ndarray) -> np.ndarray:
  """Keys' cubic convolution kernel with a = −0.5 (MATLAB's 'bicubic')."""
  ax = np.abs(x)
  ax2, ax3 = ax * ax, ax * ax * ax
  near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
  far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
  return near + far


def _output_length(in_length: int, scale: float) -> int:
  return int(math.ceil(in_length * scale - 1e-9))  # guard ceil against 0.5 * 2 = 1.0000000001


@functools.lru_cache(maxsize=64)
def resize_matrix(in_length: int, out_length: int, scale: float) -> np.ndarray:
  """The [out_length, in_length] float64 matrix that resizes one axis like MATLAB.

  `scale` is MATLAB's per-axis scale (out/in when an output size is given, else the requested
  scale); it sets the sample positions and the antialiasing stretch.
  """
  if in_length < 1 or out_length < 1:
    raise ValueError(f"cannot resize an axis of length {in_length} to {out_length}")
  kernel_width = 4.0
  if scale < 1:  # antialiasing: stretch the kernel by 1 / scale
    kernel = lambda d: scale * cubic(scale * d)
    kernel_width /= scale
  else:
    kernel = cubic
  x = np.arange(1, out_length + 1, dtype=np.float64)
  u = x / scale + 0.5 * (1.0 - 1.0 / scale)
  left = np.floor(u - kernel_width / 2.0)
  taps = int(math.ceil(kernel_width)) + 2
  indices = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
  weights = kernel(u[:, None] - indices)
  weights /= weights.sum(axis=1, keepdims=True)
  # Symmetric padding: fold index i into [1, n] over the period 2n (1..n, n..1).
  period = 2 * in_length
  folded = np.mod(indices.astype(np.int64) - 1, period)
  folded = np.where(folded < in_length, folded, period - 1 - folded)  # now 0-based
  matrix = np.zeros((out_length, in_length), np.float64)
  rows = np.broadcast_to(np.arange(out_length)[:, None], folded.shape)
  np.add.at(matrix, (rows, folded), weights)
  matrix.setflags(write=False)
  return matrix


def _plan(in_hw: Sequence[int], scale: Optional[float],
          output_shape: Optional[Sequence[int]]) -> tuple[tuple[int, int], tuple[float, float]]:
  """(out_h, out_w) and per-axis scales, as MATLAB derives them from `scale` or `output_shape`."""
  h, w = in_hw
  if (scale is None) == (output_shape is None):
    raise ValueError("give exactly one of scale or output_shape")
  if scale is not None:
    if scale <= 0:
      raise ValueError(f"scale must be positive, got {scale}")
    return (_output_length(h, scale), _output_length(w, scale)), (float(scale), float(scale))
  out_h, out_w = (int(v) for v in output_shape)
  return (out_h, out_w), (out_h / h, out_w / w)


def resize_matrices(in_hw: Sequence[int], scale: Optional[float] = None,
                    output_shape: Optional[Sequence[int]] = None) -> tuple[np.ndarray, np.ndarray]:
  """(rows [out_h, h], cols [out_w, w]) float64 matrices: out = rows @ img @ cols.T per channel."""
  (out_h, out_w), (sh, sw) = _plan(in_hw, scale, output_shape)
  return resize_matrix(int(in_hw[0]), out_h, sh), resize_matrix(int(in_hw[1]), out_w, sw)


def imresize_np(img: np.ndarray, scale: Optional[float] = None,
                output_shape: Optional[Sequence[int]] = None) -> np.ndarray:
  """MATLAB bicubic `imresize` of an [H, W] or [H, W, C] image (uint8 or float); float64 result.

  Not rounded or clipped: values may overshoot the input range, as MATLAB's double output does.
  """
  img = np.asarray(img)
  if img.ndim not in (2, 3):
    raise ValueError(f"expected [H, W] or [H, W, C], got shape {img.shape}")
  rows, cols = resize_matrices(img.shape[:2], scale, output_shape)
  x = img.astype(np.float64)
  if img.ndim == 2:
    return rows @ x @ cols.T
  return np.einsum("oh,hwc,pw->opc", rows, x, cols, optimize=True)


def round_like_matlab(x: np.ndarray) -> np.ndarray:
  """float → uint8 as MATLAB casts: clip to [0, 255], round half away from zero."""
  return np.floor(np.clip(x, 0.0, 255.0) + 0.5).astype(np.uint8)


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
  """LR = imresize(HR, 1/scale, 'bicubic') rounded to uint8; HR must be mod-cropped to `scale`."""
  hr = np.asarray(hr)
  if hr.dtype != np.uint8:
    raise ValueError(f"bicubic_downscale expects a uint8 image, got {hr.dtype}")
  h, w = hr.shape[:2]
  if h % scale or w % scale:
    raise ValueError(f"HR size {h}x{w} is not divisible by scale {scale}; mod_crop it first")
  if h < scale or w < scale:
    raise ValueError(f"HR size {h}x{w} is smaller than the scale {scale}")
  return round_like_matlab(imresize_np(hr, output_shape=(h // scale, w // scale)))


def imresize_jax(x: jax.Array, scale: Optional[float] = None,
                 output_shape: Optional[Sequence[int]] = None) -> jax.Array:
  """MATLAB bicubic resize of an NHWC (or HWC) float batch, as two einsums; jit-able.

  The weights are NumPy float64 constants built at trace time from the static shape, cast to the
  input dtype (float32, or float64 when x64 is enabled). Matmuls run at HIGHEST precision so
  accelerators do not drop to bf16/tf32 passes.
  """
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  if x.ndim not in (3, 4):
    raise ValueError(f"expected NHWC or HWC, got shape {x.shape}")
  hw = x.shape[-3:-1]
  rows, cols = resize_matrices(hw, scale, output_shape)
  rows = jnp.asarray(rows, x.dtype)
  cols = jnp.asarray(cols, x.dtype)
  hi = jax.lax.Precision.HIGHEST
  y = jnp.einsum("oh,...hwc->...owc", rows, x, precision=hi)
  return jnp.einsum("pw,...owc->...opc", cols, y, precision=hi)
