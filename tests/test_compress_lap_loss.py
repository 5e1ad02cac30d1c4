"""The Laplacian-pyramid distillation loss against a slow, independent NumPy reference."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.methods.compress import lap_loss

K2 = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0


def _ref_blur(img):
  """Direct 2-D 5×5 binomial convolution of an [H, W] image with reflect padding."""
  p = np.pad(img, 2, mode="reflect")
  out = np.zeros_like(img)
  for y in range(img.shape[0]):
    for x in range(img.shape[1]):
      out[y, x] = np.sum(p[y:y + 5, x:x + 5] * K2)
  return out


def _ref_expand(small, shape):
  up = np.zeros((max(2 * small.shape[0], shape[0]), max(2 * small.shape[1], shape[1])))
  for y in range(small.shape[0]):
    for x in range(small.shape[1]):
      up[2 * y, 2 * x] = small[y, x]
  return 4.0 * _ref_blur(up[:shape[0], :shape[1]])


def _ref_decimate(g):
  return g[::2, ::2]


def _ref_avgpool(g):
  """2×2 mean of each block, odd trailing row/column dropped (PyTorch avg_pool2d(x, 2))."""
  h, w = g.shape[0] // 2, g.shape[1] // 2
  out = np.zeros((h, w))
  for y in range(h):
    for x in range(w):
      out[y, x] = g[2 * y:2 * y + 2, 2 * x:2 * x + 2].mean()
  return out


def _ref_pyramid(img, levels, down=_ref_decimate):
  out, g = [], img
  for _ in range(levels - 1):
    nxt = down(_ref_blur(g))
    out.append(g - _ref_expand(nxt, g.shape))
    g = nxt
  return out + [g]


def _ref_lap(a, b, levels, down=_ref_decimate):
  """Both images' pyramids built separately, per image and channel; mean L1 per level."""
  per_level = [[] for _ in range(levels)]
  for n in range(a.shape[0]):
    for c in range(a.shape[3]):
      pa = _ref_pyramid(a[n, :, :, c], levels, down)
      pb = _ref_pyramid(b[n, :, :, c], levels, down)
      for i in range(levels):
        per_level[i].append(np.abs(pa[i] - pb[i]))
  return sum(2.0 ** i * np.mean(np.stack(d)) for i, d in enumerate(per_level))


def _ref_distill(a, b, levels=4, down=_ref_decimate):
  hp = lambda x: np.stack([np.stack([x[n, :, :, c] - _ref_blur(x[n, :, :, c])
                                     for c in range(x.shape[3])], -1)
                           for n in range(x.shape[0])])
  return _ref_lap(a, b, levels, down) + _ref_lap(hp(a), hp(b), levels, down)


@pytest.mark.parametrize("shape", [(2, 20, 18, 2), (1, 19, 13, 1)])
def test_distill_loss_matches_numpy_reference(rng, shape):
  a = rng.uniform(0, 1, shape)
  b = rng.uniform(0, 1, shape)
  got = float(lap_loss.distill_loss(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))
  np.testing.assert_allclose(got, _ref_distill(a, b), rtol=1e-5)


def test_release_pyramid_matches_numpy_reference(rng):
  """pyramid='release': blur + 2×2 average pooling, 5 levels (the authors' MultiLapLoss)."""
  a = rng.uniform(0, 1, (2, 48, 40, 2))
  b = rng.uniform(0, 1, (2, 48, 40, 2))
  loss = lap_loss.LOSSES["release"]
  got = float(loss(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), 5))
  np.testing.assert_allclose(got, _ref_distill(a, b, 5, _ref_avgpool), rtol=1e-5)
  # It is not the decimating pyramid: the two constructions differ on the same input.
  assert abs(got - _ref_distill(a, b, 5)) > 1e-3 * got


def test_pyramid_reconstructs_the_image(rng):
  """A Laplacian pyramid is invertible: g_i = band_i + EXPAND(g_{i+1})."""
  x = jnp.asarray(rng.uniform(0, 1, (1, 21, 30, 3)), jnp.float32)
  pyr = lap_loss.laplacian_pyramid(x, 4)
  assert [p.shape[1:3] for p in pyr] == [(21, 30), (11, 15), (6, 8), (3, 4)]
  g = pyr[-1]
  for band in reversed(pyr[:-1]):
    g = band + lap_loss.expand(g, band.shape[1:3])
  np.testing.assert_allclose(np.asarray(g), np.asarray(x), atol=1e-5)


def test_blur_matches_reference_and_keeps_constants(rng):
  x = rng.uniform(0, 1, (1, 11, 13, 2))
  got = np.asarray(lap_loss.blur(jnp.asarray(x, jnp.float32)))
  want = np.stack([_ref_blur(x[0, :, :, c]) for c in range(2)], -1)[None]
  np.testing.assert_allclose(got, want, atol=1e-6)
  np.testing.assert_allclose(np.asarray(lap_loss.blur(jnp.full((1, 8, 8, 1), 3.5))), 3.5,
                             rtol=1e-6)


def test_level_weights_and_zero():
  a = jnp.zeros((1, 24, 24, 3))
  assert float(lap_loss.distill_loss(a, a)) == 0.0
  # A constant offset c lives only in the last (low-pass) level, weight 2^3, and has no high-pass.
  np.testing.assert_allclose(float(lap_loss.distill_loss(a + 0.5, a)), 8 * 0.5, rtol=1e-5)
  np.testing.assert_allclose(float(lap_loss.distill_loss(a + 0.5, a, levels=1)), 0.5, rtol=1e-5)
  np.testing.assert_allclose(float(lap_loss.distill_loss(a + 0.5, a, 4, 1.0)), 0.5, rtol=1e-5)
  np.testing.assert_allclose(float(lap_loss.distill_loss(a + 0.5, a, 3, 3.0)), 9 * 0.5, rtol=1e-5)
  # The first reading (Gaussian levels): the offset is in every level, Σ 2^i = 15.
  np.testing.assert_allclose(float(lap_loss.gaussian_lap_loss(a + 0.5, a)), 15 * 0.5, rtol=1e-5)


def test_gradient_is_finite(rng):
  a = jnp.asarray(rng.uniform(0, 1, (1, 24, 24, 3)), jnp.float32)
  b = jnp.asarray(rng.uniform(0, 1, (1, 24, 24, 3)), jnp.float32)
  g = jax.grad(lambda x: lap_loss.distill_loss(x, b))(a)
  assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0


def test_bad_inputs():
  with pytest.raises(ValueError, match="shapes differ"):
    lap_loss.distill_loss(jnp.zeros((1, 8, 8, 3)), jnp.zeros((1, 8, 9, 3)))
  with pytest.raises(ValueError, match="at least 3"):  # 8 → 4 → 2: level 2 cannot be blurred
    lap_loss.distill_loss(jnp.zeros((1, 8, 8, 3)), jnp.zeros((1, 8, 8, 3)), levels=4)
  with pytest.raises(ValueError, match="levels must be"):
    lap_loss.laplacian_pyramid(jnp.zeros((1, 8, 8, 3)), 0)
