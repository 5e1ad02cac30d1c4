"""Alpha through SR: premultiplied colour hides transparent pixels, alpha upscaled by bicubic."""
import numpy as np

from memsr_jax.image import alpha as alpha_lib
from memsr_jax.image import bicubic


def test_premultiply_hides_colours_under_transparent_pixels():
  rgb = np.full((2, 3, 3), 200, np.uint8)
  rgb[0, 0] = [255, 0, 0]  # a loud colour under a fully transparent pixel
  a = np.array([[0, 255, 128], [1, 254, 0]], np.uint8)
  pre = alpha_lib.premultiply(rgb, a)
  np.testing.assert_array_equal(pre[0, 0], [0, 0, 0])
  np.testing.assert_array_equal(pre[..., 0], np.floor(rgb[..., 0].astype(int) * a / 255 + 0.5))
  back = alpha_lib.unpremultiply(pre, a)
  np.testing.assert_array_equal(back[a == 0], 0)
  assert np.abs(back[a >= 128].astype(int) - rgb[a >= 128]).max() <= 1


def test_upscale_alpha_is_matlab_bicubic(rng):
  a = rng.integers(0, 256, (7, 9)).astype(np.uint8)
  for s in (2, 3, 4):
    want = bicubic.round_like_matlab(bicubic.imresize_np(a, s))
    np.testing.assert_array_equal(alpha_lib.upscale_alpha(a, s), want)


def test_upscale_alpha_band_matches_the_whole_image(rng):
  a = rng.integers(0, 256, (13, 5)).astype(np.uint8)
  s = 3
  whole = alpha_lib.upscale_alpha(a, s)
  for row0, row1 in ((0, 7), (7, 20), (20, 39)):
    lo, hi = alpha_lib.alpha_rows_needed(13, s, row0, row1)
    band = alpha_lib.upscale_alpha_band(a[lo:hi], 13, s, row0, row1, lo)
    np.testing.assert_array_equal(band, whole[row0:row1])


def test_hidden_colour_never_reaches_the_output():
  """A transparent background hiding pure red around an opaque grey square: after SR (here a
  stand-in, bicubic on the premultiplied colour), no output pixel is reddish."""
  rgb = np.zeros((12, 12, 3), np.uint8)
  rgb[...] = [255, 0, 0]
  rgb[4:8, 4:8] = 128
  a = np.zeros((12, 12), np.uint8)
  a[4:8, 4:8] = 255
  s = 2
  sr = bicubic.round_like_matlab(bicubic.imresize_np(alpha_lib.premultiply(rgb, a), s))
  out = alpha_lib.unpremultiply(sr, alpha_lib.upscale_alpha(a, s))
  visible = alpha_lib.upscale_alpha(a, s) > 0
  red_excess = out[..., 0].astype(int) - out[..., 1]
  assert red_excess[visible].max() <= 1
  assert (out[~visible] == 0).all()
