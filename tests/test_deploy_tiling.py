"""Tiled inference equals whole-image inference (plain nets, EDSR) and feathering is close."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.deploy import memory, receptive_field, tiling
from memsr_jax.models import registry


def _plain(scale=2, bias_mode="vector", tail_kernel=1, widths=(3, 4, 4, 4)):
  model = registry.build_model("plain", scale=scale, widths=widths,
                               relu=(True, False, True, False)[:len(widths) - 1],
                               bias_mode=bias_mode, tail_kernel=tail_kernel)
  # random_params draws non-zero biases (the init leaves them at 0): border handling matters.
  return model, memory.random_params(model, 1)


def _whole(model, params, img):
  return np.asarray(model.apply({"params": params}, jnp.asarray(img, jnp.float32)[None]))[0]


@pytest.mark.parametrize("bias_mode,tail_kernel,scale,mode", [
    ("vector", 1, 2, "masked"), ("map", 3, 3, "masked"), ("map", 1, 2, "exact")])
def test_plain_tiling_equals_whole_image(rng, bias_mode, tail_kernel, scale, mode):
  model, params = _plain(scale, bias_mode, tail_kernel)
  img = rng.integers(0, 256, (19, 23, 3), dtype=np.uint8)  # odd sizes: partial last tiles
  ref = _whole(model, params, img)
  halo = receptive_field.receptive_radius(model)
  fn = tiling.make_tile_fn(model, params, mode)
  for tile in (2 * halo + 2, 2 * halo + 5):  # 2-pixel cores; uneven cores
    out = tiling.upscale_array(model, params, img, tile=tile, mode=mode, tile_fn=fn,
                               as_float=True)
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-6)  # ≤ a few float32 ulps at 0..255
    u8 = tiling.upscale_array(model, params, img, tile=tile, mode=mode, tile_fn=fn)
    np.testing.assert_array_equal(u8, np.clip(np.round(ref), 0, 255).astype(np.uint8))


def test_masked_mode_compiles_one_shape(rng):
  model, params = _plain()
  fn = tiling.make_tile_fn(model, params, "masked")
  for shape in ((9, 14), (17, 5)):
    tiling.upscale_array(model, params, rng.integers(0, 256, shape + (3,), dtype=np.uint8),
                         tile=16, tile_fn=fn)
  assert list(fn._compiled) == [(16, 16)]


def test_too_small_halo_is_not_exact(rng, monkeypatch):
  """The check above can fail: a halo one pixel short of the receptive field breaks exactness."""
  model, params = _plain(bias_mode="map")
  img = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
  ref = _whole(model, params, img)
  halo = receptive_field.receptive_radius(model)
  monkeypatch.setattr(tiling, "receptive_radius", lambda m: halo - 1)
  out = tiling.upscale_array(model, params, img, tile=2 * halo + 2, mode="masked",
                             as_float=True)
  assert np.abs(out - ref).max() > 1e-3


@pytest.mark.parametrize("name,kw", [
    ("plain", dict(widths=(3, 4, 4, 4), relu=None, tail_kernel=3)),
    ("edsr_mini", dict(n_feats=4, n_resblocks=1)),
    ("edsr_mini", dict(n_feats=4, n_resblocks=1, scale=4)),
])
def test_receptive_radius_bounds_the_true_support(name, kw):
  """The gradient of one output pixel is zero beyond the radius (and non-zero at the radius)."""
  kw = {"scale": 2, **kw}
  model = registry.build_model(name, **kw)
  params = memory.random_params(model, 0)
  n = 31
  x = jax.random.uniform(jax.random.key(2), (1, n, n, 3)) * 255
  s = model.scale
  pixel_grad = jax.jit(jax.grad(lambda x, oy, ox: jax.lax.dynamic_slice(
      model.apply({"params": params}, x), (0, oy, ox, 0), (1, 1, 1, 3)).sum()))
  for oy, ox in ((n // 2 * s, n // 2 * s), (n // 2 * s + s - 1, n // 2 * s + s - 1)):
    g = pixel_grad(x, oy, ox)
    ys, xs = np.nonzero(np.abs(np.asarray(g[0])).sum(-1))
    reach = max(abs(ys - oy // s).max(), abs(xs - ox // s).max())
    r = receptive_field.receptive_radius(model)
    assert reach <= r
    assert reach >= r - (2 if name == "edsr_mini" else 0)  # EDSR's bound is conservative


def test_edsr_exact_tiling(rng):
  model = registry.build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=1)
  params = memory.random_params(model, 0)
  img = rng.integers(0, 256, (21, 26, 3), dtype=np.uint8)
  ref = _whole(model, params, img)
  assert tiling.choose_mode(model) == "exact"
  halo = receptive_field.receptive_radius(model)
  fn = tiling.make_tile_fn(model, params, "exact")
  for tile in (2 * halo + 1, 15):
    out = tiling.upscale_array(model, params, img, tile=tile, tile_fn=fn, as_float=True)
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-6)  # ≤ a few float32 ulps at 0..255


def test_feather_blending(sample_image):
  """Feathered tiles (EDSR run in feather mode as a stand-in) on a real photo.

  The ramps drop the outer quarter of each overlap: once that quarter covers the receptive field
  (6 here) every pixel with non-zero weight is exact, so the blend is exact; smaller overlaps are
  approximate, and the error shrinks as the overlap grows.
  """
  model = registry.build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=1)
  params = memory.random_params(model, 0)
  img = sample_image[100:160, 180:250]
  ref = _whole(model, params, img)
  out = tiling.upscale_array(model, params, img, tile=48, mode="feather", overlap=24,
                             as_float=True)
  np.testing.assert_allclose(out, ref, atol=1e-4)
  errs = [np.abs(tiling.upscale_array(model, params, img, tile=24, mode="feather", overlap=ov,
                                      as_float=True) - ref).mean() for ov in (2, 8)]
  assert errs[0] > errs[1] > 1e-3


def test_feather_weights_cover_every_pixel():
  for n, tile, ov in ((50, 16, 5), (16, 16, 4), (17, 16, 15)):
    wins = tiling.axis_windows(n, tile, ov, 2, "feather", overlap=ov)
    total = tiling._weight_sums(wins, n * 2, 2)
    assert total.min() > 0
    assert wins[0].start == 0 and wins[-1].start + wins[-1].size == n


@pytest.mark.parametrize("mode", ["masked", "exact"])
def test_axis_cores_partition(mode):
  for n in (1, 7, 30, 31):
    wins = tiling.axis_windows(n, 11, 3, 2, mode)
    total = tiling._weight_sums(wins, 2 * n, 2)
    np.testing.assert_array_equal(total, np.ones(2 * n))


def test_streamed_bands_equal_in_memory(tmp_path, rng):
  from memsr_jax.deploy import png_stream
  model, params = _plain(scale=2, bias_mode="map")
  img = rng.integers(0, 256, (27, 13, 3), dtype=np.uint8)
  with png_stream.PNGRowWriter(tmp_path / "in.png", 13, 27) as w:
    w.write_rows(img)
  halo = receptive_field.receptive_radius(model)
  plan = tiling.TilePlan("masked", 2 * halo + 3, halo, 2)
  fn = tiling.make_tile_fn(model, params, "masked")
  bands = []
  with png_stream.PNGRowReader(tmp_path / "in.png") as r:
    tiling.run_tiled(tiling.StreamSource(r), fn, plan, bands.append)
  assert len(bands) > 3  # really streamed in several bands
  ref = np.clip(np.round(_whole(model, params, img)), 0, 255).astype(np.uint8)
  np.testing.assert_array_equal(np.concatenate(bands), ref)


def test_tiling_error_report(sample_image):
  from memsr_jax.deploy import tiling_error
  model, params = _plain()
  row = tiling_error.measure(model, params, sample_image[:24, :24], 10, [4], "random")
  exact = next(m for m in row["modes"] if m["mode"] == "masked")
  feather = next(m for m in row["modes"] if m["mode"] == "feather")
  assert exact["max_abs_diff"] <= 1e-5 and exact["psnr_vs_whole_db"] == float("inf")
  assert feather["max_abs_diff"] > 0 and feather["psnr_vs_whole_db"] > 20
  assert 20 < row["bf16_psnr_vs_fp32_db"] < float("inf")
