"""`memsr_jax.upscale --onnx` (ONNX Runtime backend): exact tiling = whole image (uint8), streaming,
budgets, folders, errors."""
import logging

import numpy as np
from PIL import Image
import pytest

pytest.importorskip("onnxruntime", reason="ONNX Runtime not installed (requirements-export.txt)")
pytest.importorskip("jax2onnx", reason="jax2onnx not installed (requirements-export.txt)")

import onnx_graphs  # noqa: E402

from memsr_jax import upscale  # noqa: E402
from memsr_jax.deploy import ort_backend  # noqa: E402
from memsr_jax.deploy import tiling  # noqa: E402

logging.getLogger("onnx_ir").setLevel(logging.ERROR)

MODELS = {
    "plain": dict(scale=2, widths=(3, 8, 8, 8, 8), bias_mode="map", tail_kernel=3),
    "edsr_mini": dict(scale=3, n_feats=8, n_resblocks=2),
}


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
  return onnx_graphs.export_tiny_models(MODELS, tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
  from skimage import data
  img = data.astronaut()[120:120 + 75, 160:160 + 90]  # non-square, not a multiple of the tile
  path = tmp_path_factory.mktemp("in") / "photo.png"
  Image.fromarray(img).save(path)
  return img, path


def _whole(sess, img):
  y = sess.run(img[None].astype(np.float32))[0]
  return np.clip(np.round(y), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", list(MODELS))
def test_exact_tiles_equal_whole_image(onnx_files, photo, name):
  img, _ = photo
  sess = ort_backend.Session(onnx_files[name])
  whole = _whole(sess, img)
  for tile in (2 * sess.radius + 6, 2 * sess.radius + 17):  # many tiles, ragged last ones
    tiled = tiling.tile_array(ort_backend.OrtTileFn(sess), img, tile=tile)
    np.testing.assert_array_equal(tiled, whole)


@pytest.mark.parametrize("stream", ["always", "never"])
def test_cli_streams_and_matches(onnx_files, photo, tmp_path, stream):
  img, path = photo
  sess = ort_backend.Session(onnx_files["plain"])
  rc = upscale.main(["--onnx", str(onnx_files["plain"]),
                     "--input", str(path), "--output", str(tmp_path), "--tile", "24",
                     "--stream_input", stream, "--quiet"])
  assert rc == 0
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "photo.png")), _whole(sess, img))


def test_cli_budget_folder_progress(onnx_files, photo, tmp_path, capsys):
  img, path = photo
  folder = tmp_path / "in"
  folder.mkdir()
  Image.fromarray(img).save(folder / "a.png")
  Image.fromarray(img[:40, :50]).save(folder / "b.png")
  (folder / "c.png").write_text("not an image")
  out = tmp_path / "out"
  rc = upscale.main(["--onnx", str(onnx_files["edsr_mini"]),
                     "--input", str(folder), "--output", str(out), "--max_memory", "2GB"])
  err = capsys.readouterr().err
  assert rc == 1 and "[1/3] a.png" in err and "c.png: SKIPPED" in err and "exact" in err
  sess = ort_backend.Session(onnx_files["edsr_mini"])
  np.testing.assert_array_equal(np.asarray(Image.open(out / "a.png")), _whole(sess, img))
  assert np.asarray(Image.open(out / "b.png")).shape == (120, 150, 3)


def test_budget_is_measured_and_grows(onnx_files):
  up = ort_backend.OrtUpscaler(onnx_files["plain"])
  small, big = up.fn.memory_bytes(32, 32), up.fn.memory_bytes(256, 256)
  # At least the float32 tile output (×4 pixels at ×2) and two 8-channel maps; grows with the tile.
  assert big >= 256 * 256 * 4 * (3 * 4 + 2 * 8) and big > small > 0


@pytest.mark.parametrize("extra,msg", [
    (["--max_memory", "20KB"], "too small"),
    (["--scale", "4"], "×2 model"),
    (["--bf16"], "--bf16"),
    (["--mode", "masked"], "masked"),
])
def test_cli_errors(onnx_files, photo, tmp_path, capsys, extra, msg):
  _, path = photo
  rc = upscale.main(["--onnx", str(onnx_files["plain"]),
                     "--input", str(path), "--output", str(tmp_path / "o")] + extra)
  err = capsys.readouterr().err
  assert rc == 2 and msg in err and "Traceback" not in err


def test_cli_bad_model_files(photo, tmp_path, capsys):
  _, path = photo
  bad = tmp_path / "bad.onnx"
  bad.write_bytes(b"not onnx")
  for model, msg in ((str(tmp_path / "missing.onnx"), "does not exist"),
                     (str(bad), "not a loadable ONNX model")):
    rc = upscale.main(["--onnx", model, "--input", str(path), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and err.count("\n") == 1, err
  # --model is a zoo preset on every backend; the ONNX Runtime backend takes --onnx.
  for source in (["--checkpoint", str(tmp_path)], ["--model", "model.onnx"]):
    rc = upscale.main(["--backend", "onnxruntime", *source, "--input", str(path), "--output",
                       str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "pass --onnx model.onnx" in err and err.count("\n") == 1, err
  rc = upscale.main(["--backend", "jax", "--onnx", str(bad), "--input", str(path), "--output",
                     str(tmp_path / "o")])
  assert rc == 2 and "drop --backend jax" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(meta={"scale": "0"}), "memsr_jax.scale='0'"),
    (dict(meta={"scale": "abc"}), "memsr_jax.scale='abc'"),
    (dict(meta={"scale": "3"}), "is not a ×3 super-resolution model"),
    (dict(input_type="int64"), "tensor(int64)"),
    (dict(layout="NCHW", declared_layout="NHWC"), "layout=NCHW does not fit the graph"),
    (dict(meta={"receptive_radius": "-2"}), "memsr_jax.receptive_radius='-2'"),
    (dict(shuffle=False), "is not a ×2 super-resolution model"),
    (dict(meta={"receptive_radius": "0"}), "receptive_radius=0 is wrong"),
])
def test_cli_checks_the_onnx_model_once_up_front(photo, tmp_path, capsys, kwargs, fragment):
  """Metadata that lies, or a graph that is no SR model: one line naming the file and the field,
  exit 2, before any image (no per-image skips, nothing written)."""
  _, path = photo
  model = tmp_path / "m.onnx"
  model.write_bytes(onnx_graphs.sr_graph(n_convs=3, scale=2, **kwargs))
  folder = tmp_path / "in"
  folder.mkdir()
  for name in ("a.png", "b.png"):
    (folder / name).write_bytes(path.read_bytes())
  rc = upscale.main(["--onnx", str(model), "--input", str(folder), "--output",
                     str(tmp_path / "o")])
  err = capsys.readouterr().err
  assert rc == 2 and err.count("\n") == 1 and fragment in err and str(model) in err, err
  assert "SKIPPED" not in err and not list((tmp_path / "o").glob("*.png"))


def test_a_lying_radius_is_refused_before_exact_tiling_only(photo, tmp_path, capsys):
  img, path = photo
  model = tmp_path / "m.onnx"
  model.write_bytes(onnx_graphs.sr_graph(n_convs=3, scale=2, meta={"receptive_radius": "1"}))
  with pytest.raises(ValueError, match="receptive_radius=1 is wrong"):
    ort_backend.OrtUpscaler(model)
  # Feathered tiles do not rely on the radius: allowed, and the truth passes exact tiling.
  assert upscale.main(["--onnx", str(model), "--mode", "feather", "--input", str(path),
                       "--output", str(tmp_path / "f"), "--quiet"]) == 0
  honest = tmp_path / "h.onnx"
  honest.write_bytes(onnx_graphs.sr_graph(n_convs=3, scale=2))
  sess = ort_backend.Session(honest)
  whole = _whole(sess, img)
  tiled = tiling.tile_array(ort_backend.OrtTileFn(sess), img, tile=2 * 3 + 9)
  np.testing.assert_array_equal(tiled, whole)


def _fixed_shape(data: bytes, h: int, w: int) -> bytes:
  import onnx
  model = onnx.load_from_string(data)
  for dim, value in zip(model.graph.input[0].type.tensor_type.shape.dim, (1, h, w, 3)):
    dim.dim_value = value  # replaces the named dim
  return model.SerializeToString()


def test_a_fixed_shape_model_tiles_images_that_hold_its_tiles(photo, tmp_path, capsys):
  img, path = photo  # 90×75
  data = onnx_graphs.sr_graph(n_convs=3, scale=2)
  whole = _whole(ort_backend.Session(data), img)
  small = tmp_path / "in" / "small.png"
  small.parent.mkdir()
  Image.fromarray(img[:20, :30]).save(small)
  (tmp_path / "in" / "photo.png").write_bytes(path.read_bytes())
  for h, w in ((32, 32), (8, 8)):
    model = tmp_path / f"fixed{h}.onnx"
    model.write_bytes(_fixed_shape(data, h, w))
    out = tmp_path / f"o{h}"
    rc = upscale.main(["--onnx", str(model), "--input", str(tmp_path / "in"), "--output",
                       str(out), "--max_memory", "64MB"])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    np.testing.assert_array_equal(np.asarray(Image.open(out / "photo.png")), whole)
    if h == 32:  # 30×20 cannot hold a 32×32 tile: skipped with the reason
      assert rc == 1 and "small.png: SKIPPED" in err and "images must be at least 32×32" in err
    else:
      assert rc == 0, err


def test_a_nan_onnx_model_is_refused_and_writes_no_png(photo, tmp_path, capsys):
  import nan_models
  _, path = photo
  model = nan_models.nan_onnx(tmp_path / "nan.onnx")
  out = tmp_path / "out"
  assert upscale.main(["--onnx", str(model), "--input", str(path), "--output", str(out)]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith("error: ") and "outputs NaN" in err[-1], err
  assert not out.exists()
