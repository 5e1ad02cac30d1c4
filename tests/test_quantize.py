"""int8 ONNX quantization (memsr_jax.deploy.quantize): verification, metadata, calibration-folder
errors, node groups, and exact tiling of int8 models."""
import json
import logging

import numpy as np
from PIL import Image
import pytest

pytest.importorskip("onnxruntime", reason="ONNX Runtime not installed (requirements-export.txt)")
pytest.importorskip("jax2onnx", reason="jax2onnx not installed (requirements-export.txt)")
onnx = pytest.importorskip("onnx", reason="onnx not installed (requirements-export.txt)")

import onnx_graphs  # noqa: E402

from memsr_jax.deploy import ort_backend  # noqa: E402
from memsr_jax.deploy import quant_nodes  # noqa: E402
from memsr_jax.deploy import quantize  # noqa: E402
from memsr_jax.deploy import tiling  # noqa: E402
from memsr_jax.models import registry  # noqa: E402
from memsr_jax.models.registry import random_params  # noqa: E402

logging.getLogger("onnx_ir").setLevel(logging.ERROR)
logging.getLogger().setLevel(logging.ERROR)  # the quantizer's pre-processing advice

MODELS = {
    "plain": dict(scale=2, widths=(3, 8, 8, 8), bias_mode="map", tail_kernel=3),
    "edsr_mini": dict(scale=2, n_feats=8, n_resblocks=2),
}
OPTS = quantize.Int8Options(crops=4, crop=24)  # the defaults, fewer and smaller crops


@pytest.fixture(scope="module")
def fp32_files(tmp_path_factory):
  return onnx_graphs.export_tiny_models(MODELS, tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory):
  """Six small photos (crops of skimage images): four calibrate, the rest are held out."""
  from skimage import data
  d = tmp_path_factory.mktemp("calib")
  photos = [data.astronaut(), data.coffee(), data.chelsea()]
  for i in range(6):
    img = photos[i % 3]
    y, x = 40 * i, 30 * i
    Image.fromarray(img[y:y + 72, x:x + 80]).save(d / f"img{i}.png")
  return d


@pytest.fixture(scope="module")
def int8_models(fp32_files, calib_dir):
  return {name: quantize.quantize_int8(path.read_bytes(), calib_dir, OPTS, scale=2, min_psnr=20)
          for name, path in fp32_files.items()}


def test_int8_verifies_and_records_metadata(int8_models, fp32_files, calib_dir):
  model, report = int8_models["edsr_mini"]
  proto = onnx.load_from_string(model)
  props = {p.key: p.value for p in proto.metadata_props}
  calib = json.loads(props["memsr_jax.int8_calibration"])
  assert calib["folder"] == calib_dir.name and calib["crops"] == 4 and calib["crop"] == 24
  method = json.loads(props["memsr_jax.int8_method"])
  assert method["method"] == "percentile" and method["per_channel"] and method["reduce_range"]
  assert method["keep_float"] == ["first_conv", "skip", "shallow", "last_conv", "concat",
                                 "attention"]
  assert method["kept_weights"] == "int8"
  ver = json.loads(props["memsr_jax.int8_verification"])
  assert ver == report["verification"]
  # Held-out images are the folder's images that gave no calibration crop.
  calib_set = quantize.calibration_set(calib_dir, OPTS, 2)
  held = set(ver["per_image"])
  assert len(held) == 2 and not held & set(calib_set.images)
  # The verification PSNR is the int8 model's, recomputed here, and it is finite (not identical).
  again = quantize.verify(fp32_files["edsr_mini"].read_bytes(), model,
                          quantize.verify_images(calib_set, OPTS, 2), 2)
  assert again["psnr_y_vs_fp32"] == ver["psnr_y_vs_fp32"]
  assert 20 < float(ver["psnr_y_vs_fp32"]) < 90
  # Really int8: quantize/dequantize nodes and int8 conv weights; the float file's metadata kept.
  ops = {n.op_type for n in proto.graph.node}
  assert {"QuantizeLinear", "DequantizeLinear"} <= ops
  assert any(t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4
             for t in proto.graph.initializer)
  assert props["memsr_jax.scale"] == "2" and "onnx.quant.pre_process" not in props
  assert len(model) < fp32_files["edsr_mini"].stat().st_size  # tiny net: metadata weighs in


def test_verification_refuses(fp32_files, calib_dir):
  with pytest.raises(quantize.Int8VerificationError, match="not written"):
    quantize.quantize_int8(fp32_files["plain"].read_bytes(), calib_dir, OPTS, scale=2,
                           min_psnr=200)


def test_keep_float_groups(fp32_files, calib_dir):
  opts = quantize.Int8Options(crops=2, crop=24, keep_float=("first_conv", "tail"),
                              method="minmax")
  model, report = quantize.quantize_int8(fp32_files["edsr_mini"].read_bytes(), calib_dir, opts,
                                         scale=2, min_psnr=20)
  proto = onnx.load_from_string(model)
  kept = report["float_nodes"]
  assert len(kept["first_conv"]) == 1 and kept["tail"]
  producer = {o: n for n in proto.graph.node for o in n.output}
  first = next(n for n in proto.graph.node if n.name == kept["first_conv"][0])
  # A conv kept in float reads a float weight initializer, not a DequantizeLinear output.
  assert first.input[1] not in producer
  assert json.loads(dict((p.key, p.value) for p in proto.metadata_props)[
      "memsr_jax.int8_float_nodes"]) == kept


@pytest.mark.parametrize("name", list(MODELS))
def test_int8_exact_tiles_equal_whole_image(int8_models, sample_image, tmp_path, name):
  """Static per-tensor scales do not depend on the input, so tiles of an int8 model equal its own
  whole-image output (uint8) like the float model's do."""
  model, _ = int8_models[name]
  path = tmp_path / "q.onnx"
  path.write_bytes(model)
  sess = ort_backend.Session(path)
  img = sample_image[120:120 + 61, 160:160 + 75]
  whole = np.clip(np.round(sess.run(img[None].astype(np.float32))[0]), 0, 255).astype(np.uint8)
  for tile in (2 * sess.radius + 5, 2 * sess.radius + 13):
    tiled = tiling.tile_array(ort_backend.OrtTileFn(sess), img, tile=tile)
    np.testing.assert_array_equal(tiled, whole)


@pytest.mark.parametrize("make,msg", [
    (lambda d: d / "missing", "does not exist"),
    (lambda d: d, "has no images"),
    (lambda d: (d / "x.png").write_text("not an image") and d, "no readable images"),
])
def test_calibration_folder_errors(tmp_path, make, msg):
  folder = make(tmp_path)
  with pytest.raises(quantize.CalibrationError, match=msg) as e:
    quantize.calibration_set(folder, OPTS, 2)
  assert "\n" not in str(e.value)


def test_small_folder_reuses_images(calib_dir):
  c = quantize.calibration_set(calib_dir, quantize.Int8Options(crops=9, crop=16), 2)
  assert len(c.crops) == 9 and len(set(c.images)) == 6 and not c.held_out
  assert all(x.shape == (16, 16, 3) and x.dtype == np.uint8 for x in c.crops)
  assert quantize.verify_images(c, OPTS, 2)[0][0] == "skimage astronaut"  # nothing left to hold out


def _graph():
  """x → Div 255 → Conv → [ReduceMean → Conv → Sigmoid] · → Conv → DepthToSpace → y."""
  h = onnx.helper
  w = lambda name, *shape: onnx.numpy_helper.from_array(  # noqa: E731
      np.full(shape, 0.1, np.float32), name)
  nodes = [
      h.make_node("Div", ["x", "c255"], ["d"]),
      h.make_node("Conv", ["d", "w0"], ["f"], pads=[1, 1, 1, 1]),
      h.make_node("ReduceMean", ["f"], ["m"], axes=[2, 3], keepdims=1),
      h.make_node("Conv", ["m", "w1"], ["a"]),
      h.make_node("Sigmoid", ["a"], ["s"]),
      h.make_node("Mul", ["f", "s"], ["g"]),
      h.make_node("Conv", ["g", "w2"], ["t"], pads=[1, 1, 1, 1]),
      h.make_node("DepthToSpace", ["t"], ["y"], blocksize=2),
  ]
  graph = h.make_graph(
      nodes, "g", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, "H", "W"])],
      [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, "H2", "W2"])],
      [w("w0", 4, 3, 3, 3), w("w1", 4, 4, 1, 1), w("w2", 12, 4, 3, 3),
       onnx.numpy_helper.from_array(np.array(255, np.float32), "c255")])
  model = h.make_model(graph)
  quant_nodes.name_nodes(model)
  return model


def test_node_groups_and_input_range():
  model = _graph()
  names = {n.output[0]: n.name for n in model.graph.node}
  g = quant_nodes.node_groups(model)
  assert g["first_conv"] == [names["f"]] and g["last_conv"] == [names["t"]]
  assert g["pixel_shuffle"] == [names["y"]] and g["tail"] == [names["y"]]
  assert g["attention"] == [names[t] for t in ("m", "a", "s", "g")]
  assert quant_nodes.input_ranges(model) == {"x": (0.0, 255.0), "d": (0.0, 1.0)}


# ------------------------------------------------------------------ the export and upscale CLIs

@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
  import jax

  from memsr_jax import checkpoints
  name, kw = "edsr_mini", MODELS["edsr_mini"]
  model = registry.build_model(name, **kw)
  params = jax.tree_util.tree_map(lambda a: a * 0.7, random_params(model, bias_std=0.05))
  path = tmp_path_factory.mktemp("ckpt") / "model"
  checkpoints.save_model_checkpoint(path, name, kw, params, {"step": 5})
  return path


def _export_int8(ckpt, out, calib, *extra):
  from memsr_jax import export
  return export.main(["--checkpoint", str(ckpt), "--output", str(out), "--quantize", "int8",
                      "--calibration", str(calib), *extra])


def test_cli_int8_export_and_upscale(tiny_checkpoint, calib_dir, sample_image, tmp_path, capsys):
  from memsr_jax import upscale
  out = tmp_path / "q.onnx"
  assert _export_int8(tiny_checkpoint, out, calib_dir, "--calibration_images", "4",
                      "--min_psnr", "20", "--json", str(tmp_path / "q.json")) == 0
  printed = capsys.readouterr().out
  assert printed.splitlines()[1].startswith("int8: ") and len(printed) < 600, printed
  rep = json.loads((tmp_path / "q.json").read_text())
  assert rep["int8"]["calibration"]["crops"] == 4
  props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
  assert json.loads(props["memsr_jax.int8_verification"]) == rep["int8"]["verification"]
  assert json.loads(props["memsr_jax.int8_float_nodes"])["first_conv"]  # the default keeps it
  img = sample_image[100:100 + 40, 200:200 + 52]
  Image.fromarray(img).save(tmp_path / "in.png")
  assert upscale.main(["--onnx", str(out), "--input", str(tmp_path / "in.png"), "--output",
                       str(tmp_path / "up"), "--tile", "20"]) == 0
  assert "exact, onnxruntime int8" in capsys.readouterr().err
  sess = ort_backend.Session(out)
  whole = np.clip(np.round(sess.run(img[None].astype(np.float32))[0]), 0, 255).astype(np.uint8)
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "up" / "in.png")), whole)


@pytest.mark.parametrize("calib,extra,msg", [
    ("missing", [], "does not exist"),
    ("empty", [], "has no images"),
    (None, [], "needs --calibration"),
])
def test_cli_calibration_errors(tiny_checkpoint, tmp_path, capsys, calib, extra, msg):
  from memsr_jax import export
  (tmp_path / "empty").mkdir()
  out = tmp_path / "q.onnx"
  argv = ["--checkpoint", str(tiny_checkpoint), "--output", str(out), "--quantize", "int8"]
  if calib:
    argv += ["--calibration", str(tmp_path / calib)]
  assert export.main(argv + extra) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and msg in err and "Traceback" not in err
  assert not out.exists()


def test_cli_int8_verification_failure_writes_nothing(tiny_checkpoint, calib_dir, tmp_path,
                                                      capsys):
  out = tmp_path / "q.onnx"
  assert _export_int8(tiny_checkpoint, out, calib_dir, "--calibration_images", "2",
                      "--min_psnr", "200") == 1
  assert "not written" in capsys.readouterr().err
  assert not list(tmp_path.iterdir())


def test_skip_and_shallow_groups():
  """x → Conv a → Conv b → Conv c; Add(c, a) → Conv d → y: the global skip and its two ends."""
  h = onnx.helper
  w = lambda name, cin: onnx.numpy_helper.from_array(  # noqa: E731
      np.full((4 if name != "wd" else 3, cin, 1, 1), 0.1, np.float32), name)
  nodes = [h.make_node("Conv", ["x", "wa"], ["a"]), h.make_node("Conv", ["a", "wb"], ["b"]),
           h.make_node("Conv", ["b", "wc"], ["c"]), h.make_node("Add", ["c", "a"], ["s"]),
           h.make_node("Conv", ["s", "wd"], ["y"])]
  graph = h.make_graph(
      nodes, "g", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, "H", "W"])],
      [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, "H", "W"])],
      [w("wa", 3), w("wb", 4), w("wc", 4), w("wd", 4)])
  model = h.make_model(graph)
  quant_nodes.name_nodes(model)
  names = {n.output[0]: n.name for n in model.graph.node}
  g = quant_nodes.node_groups(model)
  assert g["skip"] == [names["s"]] and g["shallow"] == [names["b"], names["c"]]
  assert g["first_conv"] == [names["a"]] and g["last_conv"] == [names["y"]]
  assert g["attention"] == [] and g["pixel_shuffle"] == [] and g["tail"] == []
  assert g["concat"] == []


def test_concat_group():
  h = onnx.helper
  w = lambda name, cin: onnx.numpy_helper.from_array(  # noqa: E731
      np.full((3 if name == "wc" else 2, cin, 1, 1), 0.1, np.float32), name)
  nodes = [h.make_node("Conv", ["x", "wa"], ["a"]), h.make_node("Conv", ["a", "wb"], ["b"]),
           h.make_node("Concat", ["a", "b"], ["j"], axis=1),
           h.make_node("Conv", ["j", "wc"], ["y"])]
  graph = h.make_graph(
      nodes, "g", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, "H", "W"])],
      [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, "H", "W"])],
      [w("wa", 3), w("wb", 2), w("wc", 4)])
  model = h.make_model(graph)
  quant_nodes.name_nodes(model)
  names = {n.output[0]: n.name for n in model.graph.node}
  assert quant_nodes.node_groups(model)["concat"] == [names["j"]]


def test_kept_convs_store_int8_weights(fp32_files, calib_dir):
  """kept_weights="int8": the kept convs (not the first or last) read their weights from a
  DequantizeLinear of an int8 initializer; the file shrinks; the output barely moves."""
  fp32 = fp32_files["edsr_mini"].read_bytes()
  base = dict(crops=2, crop=24, method="minmax",
              keep_float=("first_conv", "skip", "shallow", "last_conv"))
  out = {}
  for kw in ("float32", "int8"):
    out[kw] = quantize.quantize_int8(fp32, calib_dir, quantize.Int8Options(**base, kept_weights=kw),
                                     scale=2, min_psnr=20)
  (m32, r32), (m8, r8) = out["float32"], out["int8"]
  assert r8["float_nodes"] == r32["float_nodes"]
  proto = onnx.load_from_string(m8)
  inits = {t.name: t for t in proto.graph.initializer}
  producer = {o: n for n in proto.graph.node for o in n.output}
  nodes = {n.name: n for n in proto.graph.node}
  shallow = r8["float_nodes"]["shallow"]
  assert shallow
  for name in shallow:
    dq = producer[nodes[name].input[1]]
    assert dq.op_type == "DequantizeLinear"
    assert inits[dq.input[0]].data_type == onnx.TensorProto.INT8
  for name in r8["float_nodes"]["first_conv"] + r8["float_nodes"]["last_conv"]:
    assert nodes[name].input[1] in inits  # the image-side convs keep float32 weights
  assert len(m8) < len(m32)
  lr = np.asarray(Image.open(next(calib_dir.iterdir())), np.float32)
  y8, y32 = (ort_backend.Session(m).run(lr[None])[0] for m in (m8, m32))
  mse = float(np.mean((y8 - y32) ** 2))  # 0..255 scale; 8-bit weights of two convs
  print("kept int8 vs float32 weights: PSNR", 10 * np.log10(255 ** 2 / mse))
  assert 10 * np.log10(255 ** 2 / mse) > 45
  with pytest.raises(quantize.CalibrationError, match="kept_weights"):
    quantize.Int8Options(kept_weights="int4").check()


def test_an_int8_export_never_writes_into_its_calibration_folder(tiny_checkpoint, calib_dir,
                                                                  tmp_path, capsys):
  import shutil
  calib = tmp_path / "calib"
  shutil.copytree(calib_dir, calib)
  image = sorted(calib.iterdir())[0]
  before = image.read_bytes()
  for out in (image, calib / "q.onnx"):
    assert _export_int8(tiny_checkpoint, out, calib, "--overwrite") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lies inside the input --calibration" in err, err
  assert image.read_bytes() == before
  assert sorted(p.name for p in calib.iterdir()) == sorted(p.name for p in calib_dir.iterdir())


def test_sigterm_during_int8_quantization_removes_its_temporary_folder(tmp_path):
  # The temporary folder holds copies of the model: SIGTERM while it exists must remove it.
  import os
  import pathlib
  import subprocess
  import sys
  repo = pathlib.Path(__file__).resolve().parents[1]
  code = (
      "import os, pathlib, signal\n"
      "from memsr_jax.deploy import quantize\n"
      "def preprocess(model, workdir):\n"
      "  (workdir / 'fp32.onnx').write_bytes(model)\n"
      "  os.kill(os.getpid(), signal.SIGTERM)\n"
      "  raise AssertionError('still running after SIGTERM')\n"
      "quantize.preprocess = preprocess\n"
      "quantize.quantize(b'the model', None, quantize.Int8Options())\n")
  p = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True,
                     timeout=120, env=dict(os.environ, TMPDIR=str(tmp_path),
                                           PYTHONPATH=str(repo)))
  assert p.returncode == 128 + 15, (p.returncode, p.stderr[-2000:])
  assert not list(tmp_path.glob("memsr_int8_*"))
