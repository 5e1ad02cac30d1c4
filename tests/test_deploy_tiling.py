"""Tiled inference equals whole-image inference (plain nets, EDSR) and feathering is close."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.deploy import png_stream
from memsr_jax.deploy import receptive_field
from memsr_jax.deploy import tiling
from memsr_jax.measure import tiling_accuracy
from memsr_jax.models import registry
from memsr_jax.utils import cli
from memsr_jax.utils import numerics
from memsr_jax.utils import precision


def _plain(scale=2, bias_mode="vector", tail_kernel=1, widths=(3, 4, 4, 4)):
  model = registry.build_model("plain", scale=scale, widths=widths,
                               relu=(True, False, True, False)[:len(widths) - 1],
                               bias_mode=bias_mode, tail_kernel=tail_kernel)
  # random_params draws non-zero biases (the init leaves them at 0): border handling matters.
  return model, registry.random_params(model, 1)


def _whole(model, params, img, dtype=jnp.float32):
  """Whole-image reference under the precision policy (HIGHEST, like the tiles): with the backend
  default, GPUs would run it in TF32, ~1e-3 relative, far over the float32 rounding bound."""
  params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
  with precision.exact():
    return np.asarray(model.apply({"params": params}, jnp.asarray(img, dtype)[None]))[0]


def _assert_tiling_exact(model, params, img, mode, tiles):
  """Tiled == whole image, checked twice with tolerances derived from the computation
  (utils.numerics): in float64, where the bound is ~1e-7 and any geometry mistake (a halo one
  pixel short, a wrong border) shows as errors of whole grey levels; and in float32, the production
  path, within the worst-case rounding bound of two float32 evaluations (summation order differs
  between tile shapes, so bit equality is not promised)."""
  for dtype in (jnp.float64, jnp.float32):
    with jax.enable_x64(dtype == jnp.float64):
      ref = _whole(model, params, img, dtype)
      tol = numerics.rounding_tolerance(model, params, img[None], dtype)[0]
      fn = tiling.make_tile_fn(model, params, mode, dtype)
      for tile in tiles:
        out = tiling.upscale_array(model, params, img, tile=tile, mode=mode, tile_fn=fn,
                                   as_float=True)
        assert out.dtype == np.dtype(dtype)
        numerics.assert_within_bound(out, ref, tol, f"{mode} tiles of {tile} ({dtype.__name__})")
  return ref


@pytest.mark.parametrize("bias_mode,tail_kernel,scale,mode", [
    ("vector", 1, 2, "masked"), ("map", 3, 3, "masked"), ("map", 1, 2, "exact")])
def test_plain_tiling_equals_whole_image(rng, bias_mode, tail_kernel, scale, mode):
  model, params = _plain(scale, bias_mode, tail_kernel)
  img = rng.integers(0, 256, (19, 23, 3), dtype=np.uint8)  # odd sizes: partial last tiles
  halo = receptive_field.receptive_radius(model)
  tiles = (2 * halo + 2, 2 * halo + 5)  # 2-pixel cores; uneven cores
  ref = _assert_tiling_exact(model, params, img, mode, tiles)
  fn = tiling.make_tile_fn(model, params, mode)
  for tile in tiles:
    u8 = tiling.upscale_array(model, params, img, tile=tile, mode=mode, tile_fn=fn)
    # Rounding to uint8 can flip only where the float output lies within the bound of a .5.
    tol = numerics.rounding_tolerance(model, params, img[None])[0]
    near_half = np.abs(np.abs(ref - np.floor(ref)) - 0.5) <= tol
    want = np.clip(np.round(ref), 0, 255).astype(np.uint8)
    assert np.all((u8 == want) | near_half)


def test_masked_mode_compiles_one_shape(rng):
  model, params = _plain()
  fn = tiling.make_tile_fn(model, params, "masked")
  for shape in ((9, 14), (17, 5)):
    tiling.upscale_array(model, params, rng.integers(0, 256, shape + (3,), dtype=np.uint8),
                         tile=16, tile_fn=fn)
  assert list(fn._compiled) == [(16, 16)]


@pytest.mark.parametrize("name", ["plain", "edsr"])
def test_too_small_halo_is_not_exact(rng, monkeypatch, name):
  """The checks above can fail: a halo one pixel short of the receptive field breaks exactness far
  beyond the derived tolerances (float32 and float64)."""
  if name == "plain":
    model, params = _plain(bias_mode="map")
  else:
    model = registry.build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=1)
    params = registry.random_params(model, 0)
  img = rng.integers(0, 256, (21, 26, 3), dtype=np.uint8)
  halo = receptive_field.receptive_radius(model)
  monkeypatch.setattr(tiling, "receptive_radius", lambda m: halo - 1)
  mode = tiling.choose_mode(model)
  with pytest.raises(AssertionError, match="beyond the rounding bound"):
    _assert_tiling_exact(model, params, img, mode, [2 * halo + 1])


@pytest.mark.parametrize("name,kw", [
    ("plain", dict(widths=(3, 4, 4, 4), relu=None, tail_kernel=3)),
    ("edsr_mini", dict(n_feats=4, n_resblocks=1)),
    ("edsr_mini", dict(n_feats=4, n_resblocks=1, scale=4)),
])
def test_receptive_radius_bounds_the_true_support(name, kw):
  """The gradient of one output pixel is zero beyond the radius (and non-zero at the radius)."""
  kw = {"scale": 2, **kw}
  model = registry.build_model(name, **kw)
  params = registry.random_params(model, 0)
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
  params = registry.random_params(model, 0)
  img = rng.integers(0, 256, (21, 26, 3), dtype=np.uint8)
  assert tiling.choose_mode(model) == "exact"
  halo = receptive_field.receptive_radius(model)
  _assert_tiling_exact(model, params, img, "exact", (2 * halo + 1, 15))


def test_feather_blending(sample_image):
  """Feathered tiles (EDSR run in feather mode as a stand-in) on a real photo.

  The ramps drop the outer quarter of each overlap: once that quarter covers the receptive field
  (6 here) every pixel with non-zero weight is exact, so the blend is exact; smaller overlaps are
  approximate, and the error shrinks as the overlap grows.
  """
  model = registry.build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=1)
  params = registry.random_params(model, 0)
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
  whole = _whole(model, params, img)
  ref = np.clip(np.round(whole), 0, 255).astype(np.uint8)
  tol = numerics.rounding_tolerance(model, params, img[None])[0]
  near_half = np.abs(np.abs(whole - np.floor(whole)) - 0.5) <= tol  # rounding may flip only here
  assert np.all((np.concatenate(bands) == ref) | near_half)


def test_tiling_error_report(sample_image):
  model, params = _plain()
  img = sample_image[:24, :24]
  row = tiling_accuracy.measure(model, params, img, 10, [4], "random")
  exact = next(m for m in row["modes"] if m["mode"] == "masked")
  feather = next(m for m in row["modes"] if m["mode"] == "feather")
  tol = numerics.rounding_tolerance(model, params, img[None])
  assert exact["max_abs_diff"] <= tol.min() and exact["psnr_vs_whole_db"] > 60
  assert feather["max_abs_diff"] > 0 and feather["psnr_vs_whole_db"] > 20
  assert 20 < row["bf16_psnr_vs_fp32_db"] < float("inf")


def _tiling_error(argv):
  """The command as `python -m memsr_jax.tiling_error` runs it: its exit status."""
  try:
    return cli.run(tiling_accuracy.main, argv)
  except SystemExit as e:  # argparse-level errors
    return e.code


@pytest.mark.parametrize("argv,fragment", [
    (["--out", "FILE"], "exists: pass --overwrite"),
    (["--out", "DIR"], "is a folder"),
    (["--out", ""], "--out is empty"),
    (["--tile", "0"], "--tile"),
    (["--overlaps", "abc"], "--overlaps 'abc'"),
    (["--overlaps", "8,-1"], "--overlaps '8,-1'"),
])
def test_tiling_error_checks_flags_first(tmp_path, capsys, monkeypatch, argv, fragment):
  def no_model(*a, **k):
    raise AssertionError("a model was loaded before the flags were checked")

  monkeypatch.setattr(tiling_accuracy, "load_source", no_model)
  (tmp_path / "old.json").write_text("the user's file")
  argv = [a.replace("FILE", str(tmp_path / "old.json")).replace("DIR", str(tmp_path))
          for a in argv]
  rc = _tiling_error(["--models", "plain"] + argv)
  err = capsys.readouterr().err
  assert rc == 2 and err.count("\n") == 1 and fragment in err, err
  assert (tmp_path / "old.json").read_text() == "the user's file"


def test_tiling_error_writes_strict_json_atomically(tmp_path, capsys):
  out = tmp_path / "err.json"
  argv = ["--models", "plain", "--crop", "20", "--tile", "10", "--overlaps", "2", "--out",
          str(out)]
  assert _tiling_error(argv) == 0
  text = out.read_text()
  assert "Infinity" not in text and "NaN" not in text
  exact = next(m for m in json.loads(text)["plain"]["modes"] if m["mode"] == "masked")
  assert exact["psnr_vs_whole_db"] is None  # identical outputs: inf, written as null
  assert sorted(p.name for p in tmp_path.iterdir()) == ["err.json"]
  assert _tiling_error(argv) == 2 and "--overwrite" in capsys.readouterr().err
  assert _tiling_error(argv + ["--overwrite"]) == 0
