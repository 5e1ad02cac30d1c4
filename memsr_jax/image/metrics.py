"""PSNR and SSIM as SR papers compute them (protocol steps 4-7).

Inputs are uint8 RGB images. By default both are converted to the Y channel of BT.601 (MATLAB
`rgb2ycbcr`, not rounded), `crop` pixels are cut from every border, and the metric is computed in
float64: PSNR = 10·log10(255² / MSE); SSIM with an 11×11 Gaussian window (σ = 1.5), K1 = 0.01,
K2 = 0.03, L = 255, 'valid' filtering, mean of the SSIM map.
"""
import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], np.float64)  # per unit of R, G, B in [0, 1]
_SSIM_SIGMA = 1.5
_SSIM_SIZE = 11
_K1, _K2, _L = 0.01, 0.03, 255.0


def to_uint8(x) -> np.ndarray:
  """Protocol step 4: clip to [0, 255] and round (half away from zero, as MATLAB) to uint8."""
  return np.floor(np.clip(np.asarray(x, np.float64), 0.0, 255.0) + 0.5).astype(np.uint8)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
  """Y of BT.601 in [16, 235] (MATLAB rgb2ycbcr on uint8 input, before rounding), float64."""
  img = np.asarray(img)
  if img.ndim != 3 or img.shape[-1] != 3:
    raise ValueError(f"rgb_to_y expects [H, W, 3], got {img.shape}")
  return 16.0 + img.astype(np.float64) @ _Y_WEIGHTS / 255.0


def _prepare(sr: np.ndarray, hr: np.ndarray, crop: int, y_only: bool) -> tuple[np.ndarray, ...]:
  sr, hr = np.asarray(sr), np.asarray(hr)
  for name, a in (("sr", sr), ("hr", hr)):
    if a.dtype != np.uint8:
      raise ValueError(f"{name} must be uint8 (quantize SR with to_uint8 first), got {a.dtype}")
    if a.ndim != 3 or a.shape[-1] != 3:
      raise ValueError(f"{name} must be [H, W, 3], got {a.shape}")
  if sr.shape != hr.shape:
    raise ValueError(f"SR {sr.shape} and HR {hr.shape} differ in shape")
  if crop < 0 or 2 * crop >= min(sr.shape[:2]):
    raise ValueError(f"crop {crop} leaves nothing of a {sr.shape[0]}x{sr.shape[1]} image")
  if y_only:
    sr, hr = rgb_to_y(sr)[..., None], rgb_to_y(hr)[..., None]
  else:
    sr, hr = sr.astype(np.float64), hr.astype(np.float64)
  if crop:
    sr, hr = sr[crop:-crop, crop:-crop], hr[crop:-crop, crop:-crop]
  return sr, hr


def psnr(sr: np.ndarray, hr: np.ndarray, crop: int, y_only: bool = True) -> float:
  """PSNR in dB (inf for identical images). With y_only=False, the MSE is over all RGB values."""
  sr, hr = _prepare(sr, hr, crop, y_only)
  mse = np.mean((sr - hr) ** 2)
  if mse == 0:
    return float("inf")
  return float(10.0 * np.log10(_L**2 / mse))


def gaussian_window_1d(size: int = _SSIM_SIZE, sigma: float = _SSIM_SIGMA) -> np.ndarray:
  """Normalized 1-D Gaussian; the 2-D SSIM window is its outer product (MATLAB fspecial)."""
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  g = np.exp(-(x**2) / (2.0 * sigma**2))
  return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
  """'valid' 2-D filtering with the separable window outer(g, g): filter, then cut the margins."""
  y = ndimage.correlate1d(x, g, axis=0, mode="constant")
  y = ndimage.correlate1d(y, g, axis=1, mode="constant")
  m = len(g) // 2
  return y[m:-m, m:-m]


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """SSIM map of two float64 [H, W] images (valid region, (H-10) × (W-10))."""
  if min(a.shape) < _SSIM_SIZE:
    raise ValueError(f"SSIM needs at least {_SSIM_SIZE}x{_SSIM_SIZE} pixels after cropping, "
                     f"got {a.shape[0]}x{a.shape[1]}")
  g = gaussian_window_1d()
  c1, c2 = (_K1 * _L) ** 2, (_K2 * _L) ** 2
  mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
  var_a = _filter_valid(a * a, g) - mu_a**2
  var_b = _filter_valid(b * b, g) - mu_b**2
  cov = _filter_valid(a * b, g) - mu_a * mu_b
  return (((2 * mu_a * mu_b + c1) * (2 * cov + c2))
          / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))


def ssim(sr: np.ndarray, hr: np.ndarray, crop: int, y_only: bool = True) -> float:
  """Mean SSIM; with y_only=False, the mean over R, G, B of each channel's SSIM."""
  sr, hr = _prepare(sr, hr, crop, y_only)
  return float(np.mean([ssim_map(sr[..., c], hr[..., c]).mean() for c in range(sr.shape[-1])]))


def psnr_y_batch(sr: jax.Array, hr: jax.Array, crop: int) -> jax.Array:
  """Per-image Y-PSNR [B] of float NHWC batches in 0..255, for validation inside jit.

  SR is clipped and rounded like the protocol (HR too, a no-op for uint8-valued HR); the math is in
  the input dtype (float32 normally: within ~1e-4 dB of `psnr`). Identical images give inf.
  """
  def quantize(x):
    return jnp.floor(jnp.clip(x, 0.0, 255.0) + 0.5)

  def luma(x):  # an explicit weighted sum: a matmul could run in TF32/bf16 on accelerators
    w = _Y_WEIGHTS / 255.0
    return w[0] * x[..., 0] + w[1] * x[..., 1] + w[2] * x[..., 2]  # +16 cancels in differences

  y_sr = luma(quantize(sr))
  y_hr = luma(quantize(hr.astype(sr.dtype)))
  if crop:
    y_sr, y_hr = y_sr[:, crop:-crop, crop:-crop], y_hr[:, crop:-crop, crop:-crop]
  mse = jnp.mean((y_sr - y_hr) ** 2, axis=(1, 2))
  return 10.0 * jnp.log10(_L**2 / mse)
