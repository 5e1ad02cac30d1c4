"""ONNX export (memsr_jax.export): metadata, ORT vs JAX (HIGHEST) bound, CLI errors, Set5 parity."""
import json
import logging

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="ONNX Runtime not installed (requirements-export.txt)")
pytest.importorskip("jax2onnx", reason="jax2onnx not installed (requirements-export.txt)")
onnx = pytest.importorskip("onnx", reason="onnx not installed (requirements-export.txt)")

from memsr_jax import export  # noqa: E402
from memsr_jax.deploy import model_source  # noqa: E402
from memsr_jax.deploy import onnx_export  # noqa: E402
from memsr_jax.deploy import ort_backend  # noqa: E402
from memsr_jax.models import registry  # noqa: E402
from memsr_jax.models.registry import random_params  # noqa: E402

logging.getLogger("onnx_ir").setLevel(logging.ERROR)  # jax2onnx's serializer chatter
TOL = 1e-3


def _small_params(model, seed=0):
  # Random weights scaled so outputs stay on the 0..255 scale of a real model (the bound is
  # absolute on that scale; untrained deep nets reach values in the thousands).
  import jax
  p = random_params(model, seed, bias_std=0.05)
  return jax.tree_util.tree_map(lambda a: a * 0.7, p)


PLAIN_MAP = ("plain", dict(scale=3, widths=(3, 8, 8, 8), bias_mode="map", tail_kernel=3))
EDSR_TINY = ("edsr_mini", dict(scale=2, n_feats=8, n_resblocks=2))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """{name: (model, params, path, report)} for a plain net with bias maps and a tiny EDSR."""
  out = {}
  d = tmp_path_factory.mktemp("onnx")
  for (name, kw), layout in ((PLAIN_MAP, "NHWC"), (EDSR_TINY, "NCHW")):
    model = registry.build_model(name, **kw)
    params = _small_params(model)
    path = d / f"{name}.onnx"
    rep = onnx_export.export_onnx(model, params, {"model": name, "step": 123}, path, layout=layout)
    out[name] = (model, params, path, rep)
  return out


def test_metadata_and_verified_diff(exported):
  model, _, path, rep = exported["plain"]
  props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
  assert props["memsr_jax.scale"] == "3" and props["memsr_jax.layout"] == "NHWC"
  assert props["memsr_jax.model"] == "plain" and props["memsr_jax.step"] == "123"
  import memsr_jax
  assert props["memsr_jax.version"] == memsr_jax.__version__
  assert props["memsr_jax.receptive_radius"] == "4"  # 3 body convs + the 3×3 tail
  assert json.loads(props["memsr_jax.model_kwargs"])["bias_mode"] == "map"
  assert 0 <= rep["max_abs_diff"] <= TOL
  assert float(props["memsr_jax.verified_max_abs_diff"]) == pytest.approx(rep["max_abs_diff"],
                                                                           rel=1e-2)


@pytest.mark.parametrize("name", ["plain", "edsr_mini"])
def test_dynamic_size_matches_jax_highest(exported, sample_image, name):
  """Sizes the export never saw (odd, non-square) and both layouts, vs JAX at HIGHEST."""
  model, params, path, _ = exported[name]
  sess = ort_backend.Session(path)
  for h, w in ((23, 41), (64, 37)):
    lr = sample_image[100:100 + h, 200:200 + w]
    got = sess.run(lr[None].astype(np.float32))
    ref = onnx_export.jax_reference(model, params, lr)
    assert got.shape == ref.shape == (1, h * model.scale, w * model.scale, 3)
    assert np.abs(got - ref).max() <= TOL
    assert np.abs(ref).max() > 50  # the bound is meaningful on this output's scale


def test_nchw_file_takes_nchw(exported):
  _, _, path, _ = exported["edsr_mini"]
  sess = ort_backend.Session(path)
  assert sess.layout == "NCHW"
  assert [d if isinstance(d, int) else "sym" for d in sess.sess.get_inputs()[0].shape] == \
      ["sym", 3, "sym", "sym"]
  x = np.random.default_rng(0).uniform(0, 255, (1, 12, 10, 3)).astype(np.float32)
  raw = sess.sess.run(None, {"lr": x.transpose(0, 3, 1, 2).copy()})[0]
  np.testing.assert_array_equal(raw.transpose(0, 2, 3, 1), sess.run(x))


def test_swinir_is_a_clear_error(tmp_path):
  model = registry.build_model("swinir_mini", scale=2)
  params = random_params(model)
  with pytest.raises(onnx_export.ExportError, match=r"SwinIR.*dynamic height and width.*pad"):
    onnx_export.export_onnx(model, params, {"model": "swinir_mini"}, tmp_path / "s.onnx")
  assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
  from memsr_jax import checkpoints
  name, kw = EDSR_TINY
  model = registry.build_model(name, **kw)
  path = tmp_path_factory.mktemp("ckpt") / "model"
  checkpoints.save_model_checkpoint(path, name, kw, _small_params(model), {"step": 77})
  return path


def test_cli_checkpoint_export(tiny_checkpoint, tmp_path, capsys):
  out = tmp_path / "m.onnx"
  assert export.main(["--checkpoint", str(tiny_checkpoint), "--output", str(out), "--json",
                      str(tmp_path / "m.json")]) == 0
  printed = capsys.readouterr().out.splitlines()  # a short summary; the report is in --json
  assert len(printed) == 2 and printed[0].startswith(f"wrote {out} (") and "{" not in printed[0]
  assert printed[1] == f"report: {tmp_path / 'm.json'}"
  rep = json.loads((tmp_path / "m.json").read_text())
  assert rep["memsr_jax.step"] == "77" and rep["memsr_jax.scale"] == "2"
  assert rep["max_abs_diff"] <= TOL
  assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.onnx"]  # no temp file left
  (tmp_path / "m.json").unlink()
  # Existing output: one line, exit 2, file untouched; --overwrite replaces it.
  before = out.read_bytes()
  assert export.main(["--checkpoint", str(tiny_checkpoint), "--output", str(out)]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "--overwrite" in err
  assert out.read_bytes() == before
  assert export.main(["--checkpoint", str(tiny_checkpoint), "--output", str(out),
                      "--overwrite"]) == 0


@pytest.mark.parametrize("argv,msg", [
    (["--checkpoint", "/nonexistent/ckpt"], "does not exist"),
    (["--checkpoint", "CKPT", "--format", "tflite"], "only onnx"),
    (["--checkpoint", "CKPT", "--scale", "4"], "×2 model"),
    (["--model", "imdn", "--scale", "2", "--torch_weights", "/nonexistent.pth"], "does not exist"),
    (["--model", "imdn", "--scale", "2"], "--torch_weights"),
    (["--checkpoint", "CKPT", "--set", "n_feats=16"], "--set goes with --model"),
    (["--checkpoint", "CKPT", "--torch_weights", "w.pth"], "--torch_weights goes with --model"),
])
def test_cli_usage_errors(tiny_checkpoint, tmp_path, capsys, argv, msg):
  argv = [a.replace("CKPT", str(tiny_checkpoint)) for a in argv]
  assert export.main(argv + ["--output", str(tmp_path / "x.onnx")]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and msg in err and "Traceback" not in err
  assert not (tmp_path / "x.onnx").exists()


def test_cli_verification_failure_writes_nothing(tiny_checkpoint, tmp_path, capsys):
  out = tmp_path / "m.onnx"
  assert export.main(["--checkpoint", str(tiny_checkpoint), "--output", str(out),
                      "--tolerance", "-1"]) == 1
  assert "not written" in capsys.readouterr().err
  assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ official IMDN weights (shared)

@pytest.fixture(scope="module")
def imdn_x2(shared_dir, tmp_path_factory):
  pytest.importorskip("torch", reason="torch reads the official .pth")
  weights = shared_dir / "weights" / "imdn" / "IMDN_x2.pth"
  if not weights.is_file():
    pytest.skip(f"{weights} not found")
  model, params, info = model_source.load(model="imdn", scale=2, torch_weights=str(weights))
  path = tmp_path_factory.mktemp("imdn") / "imdn_x2.onnx"
  rep = onnx_export.export_onnx(model, params, info, path)
  return model, params, path, rep


@pytest.mark.shared
@pytest.mark.torch
def test_imdn_official_export_diff(imdn_x2):
  _, _, path, rep = imdn_x2
  assert rep["max_abs_diff"] <= TOL
  assert rep["memsr_jax.receptive_radius"] == ""  # channel attention: unbounded
  assert ort_backend.Session(path).radius is None


@pytest.mark.shared
@pytest.mark.torch
@pytest.mark.slow
def test_imdn_set5_x2_psnr_parity(imdn_x2, shared_dir):
  """Set5 ×2 through the exported file by the evaluation protocol = eval.py's number (README,
  tests/test_imdn_parity.py) within 0.005 dB."""
  from memsr_jax import evaluation
  _, _, path, _ = imdn_x2
  sess = ort_backend.Session(path)
  r = evaluation.evaluate_dataset(sess.run, "set5", 2, str(shared_dir / "datasets"))
  assert r["n_images"] == 5 and not r["errors"]
  assert abs(r["psnr"] - 38.0061) <= 0.005, r["psnr"]


# ------------------------------------------------------------------ outputs checked up front


def _fake_workdir(root):
  """The layout train.py leaves (checkpoints/<step>/ with Orbax's markers)."""
  for step in (20, 40):
    (root / "checkpoints" / str(step)).mkdir(parents=True)
    (root / "checkpoints" / str(step) / "_CHECKPOINT_METADATA").write_text("{}")
  return root


def _assert_refused(capsys, argv, fragment):
  try:
    rc = export.main(argv)
  except SystemExit as e:  # argparse-level errors exit from parse_args
    rc = e.code
  assert rc == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and fragment in err and "Traceback" not in err, err


@pytest.mark.parametrize("step", ["40", "60"])
def test_export_refuses_outputs_inside_a_checkpoint_tree(tiny_checkpoint, tmp_path, capsys, step):
  run = _fake_workdir(tmp_path / "run")
  before = sorted(p.relative_to(run) for p in run.rglob("*"))
  _assert_refused(capsys, ["--checkpoint", str(tiny_checkpoint), "--output",
                           str(run / "checkpoints" / step / "m.onnx")], "checkpoint tree")
  _assert_refused(capsys, ["--checkpoint", str(tiny_checkpoint), "--output",
                           str(run / "checkpoints" / step)], "checkpoint tree")
  assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_export_never_writes_over_its_input(tmp_path, capsys):
  w = tmp_path / "w.pth"
  w.write_bytes(b"the user's weights")
  (tmp_path / "alias.pth").symlink_to(w)
  for out, extra in ((w, ["--overwrite"]), (tmp_path / "alias.pth", ["--overwrite"]), (w, [])):
    _assert_refused(capsys, ["--model", "imdn", "--scale", "2", "--torch_weights", str(w),
                             "--output", str(out)] + extra, "is the input --torch_weights")
  _assert_refused(capsys, ["--model", "imdn", "--scale", "2", "--torch_weights",
                           str(tmp_path / "w{scale}.pth"), "--output", str(tmp_path / "w2.pth"),
                           "--overwrite"], "is the input --torch_weights")
  assert w.read_bytes() == b"the user's weights"


@pytest.mark.parametrize("argv,fragment", [
    (["--output", "DIR"], "is a folder"),
    (["--output", "/sys/m.onnx"], "cannot be written"),
    (["--output", ""], "--output is empty"),
    (["--output", "OUT", "--tolerance", "nan"], "--tolerance must be a finite number"),
    (["--output", "OUT", "--set", "n_feats=abc"], "n_feats='abc'"),
    (["--output", "OUT", "--set", "n_feats=-3"], "n_feats=-3"),
])
def test_export_checks_flags_before_exporting(tmp_path, capsys, monkeypatch, argv, fragment):
  def no_export(*a, **k):
    raise AssertionError("exported before the flags were checked")

  monkeypatch.setattr(onnx_export, "to_onnx_proto", no_export)
  w = tmp_path / "w.pth"
  w.write_bytes(b"x")
  argv = [a.replace("DIR", str(tmp_path)).replace("OUT", str(tmp_path / "m.onnx")) for a in argv]
  _assert_refused(capsys, ["--model", "imdn", "--scale", "2", "--torch_weights", str(w)] + argv,
                  fragment)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth"]


def test_export_cleans_temp_files_of_a_killed_export(tiny_checkpoint, tmp_path, capsys):
  import subprocess
  import sys
  p = subprocess.Popen([sys.executable, "-c", "pass"])
  p.wait()
  stale = tmp_path / f".m.onnx.{p.pid}.tmp"
  stale.write_bytes(b"half a model")
  assert export.main(["--checkpoint", str(tiny_checkpoint), "--output",
                      str(tmp_path / "m.onnx")]) == 0
  assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_a_nan_model_is_refused_before_the_export(tmp_path, capsys):
  import nan_models
  ckpt = nan_models.nan_checkpoint(tmp_path / "model")
  out = tmp_path / "m.onnx"
  assert export.main(["--checkpoint", str(ckpt), "--output", str(out)]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "outputs NaN" in err and "differs" not in err, err
  assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["model"]
