"""PSNR / SSIM on the Y channel, against known answers and independent reference math."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal
from skimage.metrics import structural_similarity

from memsr_jax.image import metrics


def _gray(v, shape=(20, 24)):
  return np.full(shape + (3,), v, np.uint8)


def _ref_ssim_valid(a: np.ndarray, b: np.ndarray) -> float:
  """SSIM from its definition with a 2-D 11×11 Gaussian and scipy's 'valid' convolution."""
  x = np.arange(11) - 5.0
  g = np.exp(-x**2 / (2 * 1.5**2))
  win = np.outer(g, g)
  win /= win.sum()
  f = lambda z: signal.convolve2d(z, win, mode="valid")
  mu_a, mu_b = f(a), f(b)
  saa, sbb, sab = f(a * a) - mu_a**2, f(b * b) - mu_b**2, f(a * b) - mu_a * mu_b
  c1, c2 = (0.01 * 255)**2, (0.03 * 255)**2
  m = (2 * mu_a * mu_b + c1) * (2 * sab + c2) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
  return float(m.mean())


def test_rgb_to_y_matches_bt601_formula(rng):
  img = rng.integers(0, 256, (5, 7, 3)).astype(np.uint8)
  r, g, b = (img[..., i] / 255.0 for i in range(3))
  want = 16 + 65.481 * r + 128.553 * g + 24.966 * b
  np.testing.assert_allclose(metrics.rgb_to_y(img), want, atol=1e-12)
  assert metrics.rgb_to_y(_gray(0))[0, 0] == pytest.approx(16.0)
  assert metrics.rgb_to_y(_gray(255))[0, 0] == pytest.approx(235.0)


def test_psnr_known_answers():
  hr, sr = _gray(100), _gray(101)
  # A grey step of 1 is a Y step of 219/255.
  assert metrics.psnr(sr, hr, crop=2) == pytest.approx(10 * math.log10(255**2 / (219 / 255)**2))
  assert metrics.psnr(sr, hr, crop=2, y_only=False) == pytest.approx(20 * math.log10(255))
  assert metrics.psnr(hr, hr, crop=2) == math.inf


def test_psnr_crops_the_border():
  hr = _gray(50)
  sr = hr.copy()
  sr[:3] = 200  # only inside the cropped border
  assert metrics.psnr(sr, hr, crop=3) == math.inf
  assert metrics.psnr(sr, hr, crop=2) < 30


def test_psnr_random_matches_direct_formula(rng):
  hr = rng.integers(0, 256, (30, 26, 3)).astype(np.uint8)
  sr = rng.integers(0, 256, (30, 26, 3)).astype(np.uint8)
  y = lambda im: 16 + (65.481 * im[..., 0] + 128.553 * im[..., 1] + 24.966 * im[..., 2]) / 255
  d = (y(sr.astype(float)) - y(hr.astype(float)))[4:-4, 4:-4]
  assert metrics.psnr(sr, hr, crop=4) == pytest.approx(10 * math.log10(255**2 / np.mean(d**2)),
                                                       abs=1e-10)


def test_ssim_matches_reference_and_skimage(sample_image):
  hr = sample_image[100:164, 200:260]
  noise = np.random.default_rng(1).normal(0, 12, hr.shape)
  sr = np.clip(hr + noise, 0, 255).round().astype(np.uint8)
  got = metrics.ssim(sr, hr, crop=3)
  y_sr, y_hr = metrics.rgb_to_y(sr)[3:-3, 3:-3], metrics.rgb_to_y(hr)[3:-3, 3:-3]
  assert got == pytest.approx(_ref_ssim_valid(y_sr, y_hr), abs=1e-10)
  # skimage filters the whole image and then averages after dropping a 5-pixel margin: that is
  # exactly the 'valid' region for an 11×11 window (radius int(3.5·1.5 + 0.5) = 5).
  sk = structural_similarity(y_sr, y_hr, gaussian_weights=True, sigma=1.5,
                             use_sample_covariance=False, data_range=255)
  assert got == pytest.approx(sk, abs=1e-8)
  assert 0.3 < got < 0.99


def test_ssim_rgb_is_mean_of_channels(sample_image):
  hr = sample_image[:40, :48]
  sr = np.roll(hr, 1, axis=1)
  want = np.mean([_ref_ssim_valid(sr[2:-2, 2:-2, c].astype(float), hr[2:-2, 2:-2, c].astype(float))
                  for c in range(3)])
  assert metrics.ssim(sr, hr, crop=2, y_only=False) == pytest.approx(want, abs=1e-10)
  assert metrics.ssim(hr, hr, crop=2) == pytest.approx(1.0, abs=1e-12)


def test_bad_inputs_are_reported():
  with pytest.raises(ValueError, match="uint8"):
    metrics.psnr(_gray(1).astype(np.float32), _gray(1), crop=2)
  with pytest.raises(ValueError, match="differ in shape"):
    metrics.psnr(_gray(1, (10, 10)), _gray(1), crop=2)
  with pytest.raises(ValueError, match="at least 11x11"):
    metrics.ssim(_gray(1, (14, 14)), _gray(1, (14, 14)), crop=2)


def test_to_uint8_clips_and_rounds_half_up():
  np.testing.assert_array_equal(metrics.to_uint8([-3.2, 0.5, 1.49, 254.5, 256.0]),
                                [0, 1, 1, 255, 255])


def test_psnr_y_batch_matches_protocol(rng):
  hr = rng.integers(0, 256, (3, 24, 20, 3)).astype(np.uint8)
  sr = hr + rng.normal(0, 6, hr.shape)  # float, outside 0..255 at places, unrounded
  got = jax.jit(metrics.psnr_y_batch, static_argnums=2)(
      jnp.asarray(sr, jnp.float32), jnp.asarray(hr, jnp.float32), 2)
  want = [metrics.psnr(metrics.to_uint8(s), h, crop=2) for s, h in zip(sr, hr)]
  np.testing.assert_allclose(np.asarray(got), want, atol=2e-3)
  same = metrics.psnr_y_batch(jnp.asarray(hr[:1], jnp.float32), jnp.asarray(hr[:1], jnp.float32), 2)
  assert np.isinf(np.asarray(same)).all()
