"""MATLAB-bicubic resize: NumPy and JAX versions against a slow per-pixel reference."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.image import bicubic


def _ref_kernel(t: float) -> float:
  """Keys cubic, a = -0.5, written from its definition."""
  a = -0.5
  t = abs(t)
  if t <= 1:
    return (a + 2) * t**3 - (a + 3) * t**2 + 1
  if t < 2:
    return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
  return 0.0


def _ref_mirror(i: int, n: int) -> int:
  """0-based index into [0, n) with symmetric (edge-repeating) reflection."""
  while i < 0 or i >= n:
    i = -1 - i if i < 0 else 2 * n - 1 - i
  return i


def _ref_resize_axis0(img: np.ndarray, out_len: int, s: float) -> np.ndarray:
  """Resize along axis 0, one output sample at a time (MATLAB's imresize, from the docs)."""
  n = img.shape[0]
  out = np.zeros((out_len,) + img.shape[1:], np.float64)
  stretch = s if s < 1 else 1.0  # antialiasing: kernel k(s·d)·s, support 2/s
  support = 2.0 / stretch
  for o in range(out_len):
    center = (o + 0.5) / s - 0.5  # 0-based input coordinate of output pixel o
    first = math.floor(center - support) - 1
    last = math.ceil(center + support) + 1
    acc, wsum = 0.0, 0.0
    for j in range(first, last + 1):
      wgt = stretch * _ref_kernel(stretch * (center - j))
      if wgt == 0:
        continue
      acc = acc + wgt * img[_ref_mirror(j, n)].astype(np.float64)
      wsum += wgt
    out[o] = acc / wsum
  return out


def _ref_imresize(img: np.ndarray, scale: float) -> np.ndarray:
  h, w = img.shape[:2]
  out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
  x = _ref_resize_axis0(img.astype(np.float64), out_h, scale)
  x = np.swapaxes(_ref_resize_axis0(np.swapaxes(x, 0, 1), out_w, scale), 0, 1)
  return x


@pytest.mark.parametrize("shape,scale", [
    ((12, 16, 3), 1 / 2), ((13, 17, 3), 1 / 3), ((16, 20, 3), 1 / 4), ((9, 11), 0.37),
    ((7, 9, 3), 2), ((5, 6, 3), 3), ((6, 5), 4), ((11, 13, 3), 1.5), ((3, 4, 3), 1 / 3)])
def test_matches_slow_reference(rng, shape, scale):
  img = rng.integers(0, 256, shape).astype(np.uint8)
  got = bicubic.imresize_np(img, scale=scale)
  want = _ref_imresize(img, scale)
  assert got.shape == want.shape == (math.ceil(shape[0] * scale), math.ceil(shape[1] * scale)) + \
      shape[2:]
  np.testing.assert_allclose(got, want, atol=1e-9)


def test_output_shape_argument_matches_scale_for_exact_divisions(rng):
  img = rng.random((24, 36, 3)) * 255
  np.testing.assert_allclose(bicubic.imresize_np(img, output_shape=(8, 12)),
                             bicubic.imresize_np(img, scale=1 / 3), atol=1e-12)


@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 0.37, 2, 3, 4])
def test_constant_image_stays_constant(scale):
  img = np.full((17, 10, 3), 123, np.uint8)
  np.testing.assert_allclose(bicubic.imresize_np(img, scale=scale), 123.0, atol=1e-10)


def test_linear_ramp_is_preserved_in_the_interior():
  # A cubic with a = -0.5 reproduces linear functions exactly; the antialiased kernel is symmetric
  # and sums to one, so a ramp maps to the ramp sampled at the output pixel centres.
  h, w, s = 40, 48, 4
  cols = np.arange(w, dtype=np.float64) * 3 + 10
  img = np.broadcast_to(cols[None, :], (h, w))
  out = bicubic.imresize_np(img, scale=1 / s)
  centers = (np.arange(w // s) + 0.5) * s - 0.5  # input coordinate of each output pixel
  want = centers * 3 + 10
  inner = slice(2, w // s - 2)  # borders see the mirrored (non-linear) extension
  np.testing.assert_allclose(out[:, inner], np.broadcast_to(want[inner], (h // s, w // s - 4)),
                             atol=1e-9)


def test_bicubic_downscale_rounds_like_matlab_and_checks_input(rng):
  hr = rng.integers(0, 256, (24, 18, 3)).astype(np.uint8)
  lr = bicubic.bicubic_downscale(hr, 3)
  assert lr.dtype == np.uint8 and lr.shape == (8, 6, 3)
  exact = _ref_imresize(hr, 1 / 3)
  np.testing.assert_array_equal(lr, np.floor(np.clip(exact, 0, 255) + 0.5).astype(np.uint8))
  with pytest.raises(ValueError, match="mod_crop"):
    bicubic.bicubic_downscale(hr[:23], 3)
  with pytest.raises(ValueError, match="uint8"):
    bicubic.bicubic_downscale(hr.astype(np.float32), 3)


def test_round_half_away_from_zero():
  x = np.array([0.5, 1.5, 2.5, -3.0, 254.5, 300.0])
  np.testing.assert_array_equal(bicubic.round_like_matlab(x), [1, 2, 3, 0, 255, 255])


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 0.37, 2, 3])
def test_jax_matches_numpy(rng, scale):
  batch = rng.random((2, 13, 10, 3)) * 255
  want = np.stack([bicubic.imresize_np(b, scale=scale) for b in batch])
  fn = jax.jit(lambda x: bicubic.imresize_jax(x, scale))
  got32 = np.asarray(fn(jnp.asarray(batch, jnp.float32)))
  assert got32.dtype == np.float32
  np.testing.assert_allclose(got32, want, atol=2e-3)  # float32 on values up to 255
  with jax.enable_x64(True):
    got64 = np.asarray(jax.jit(lambda x: bicubic.imresize_jax(x, scale))(jnp.asarray(batch)))
  assert got64.dtype == np.float64
  np.testing.assert_allclose(got64, want, atol=1e-6)
  np.testing.assert_allclose(got64[1], _ref_imresize(batch[1], scale), atol=1e-6)


def test_rejects_bad_arguments():
  with pytest.raises(ValueError, match="exactly one"):
    bicubic.imresize_np(np.zeros((4, 4)), scale=2, output_shape=(8, 8))
  with pytest.raises(ValueError, match="shape"):
    bicubic.imresize_np(np.zeros((4,)), scale=2)
