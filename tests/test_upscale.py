"""The upscale CLI: folders, bad input, budgets, checkpoints, exactness of its output."""
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from memsr_jax import upscale
from memsr_jax.image import io as image_io
from memsr_jax.models import registry

TINY_PLAIN = dict(widths=(3, 4, 4, 4), relu=(True, False, False), bias_mode="map",
                  tail_kernel=1)


def _reference(model, params, img):
  y = model.apply({"params": params}, jnp.asarray(img, jnp.float32)[None])[0]
  return np.clip(np.round(np.asarray(y)), 0, 255).astype(np.uint8)


@pytest.fixture
def inputs(tmp_path, sample_image):
  d = tmp_path / "in"
  d.mkdir()
  Image.fromarray(sample_image[:21, :17]).save(d / "a.png")
  Image.fromarray(sample_image[200:219, 300:330]).save(d / "b.jpg", quality=95)
  (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
  return d


def test_folder_with_a_bad_file(tmp_path, inputs, capsys):
  out = tmp_path / "out"
  rc = upscale.main(["--model", "plain_s", "--scale", "2", "--input", str(inputs),
                     "--output", str(out), "--tile", "46"])  # 8-pixel cores: several tiles
  err = capsys.readouterr().err
  assert rc == 1
  assert "broken.png: SKIPPED" in err and "1 of 3 input(s) skipped" in err
  assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
  model = registry.build_model("plain_s", scale=2)
  params = registry.random_params(model, 0)
  for name in ("a", "b"):
    lr = image_io.read_image(next(inputs.glob(name + ".*")))
    got = np.asarray(Image.open(out / f"{name}.png"))
    np.testing.assert_array_equal(got, _reference(model, params, lr))


def test_output_not_writable(tmp_path, inputs, capsys):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  rc = upscale.main(["--model", "plain", "--input", str(inputs / "a.png"),
                     "--output", str(blocker / "sub")])
  assert rc == 2
  assert "is not writable" in capsys.readouterr().err


def test_budget_too_small(tmp_path, inputs, capsys):
  rc = upscale.main(["--model", "plain", "--input", str(inputs / "a.png"),
                     "--output", str(tmp_path / "o"), "--max_memory", "1MB"])
  err = capsys.readouterr().err
  assert rc == 2
  assert "too small" in err and "MB or more" in err


def test_missing_input(tmp_path, capsys):
  rc = upscale.main(["--model", "plain", "--input", str(tmp_path / "nope.png"),
                     "--output", str(tmp_path / "o")])
  assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_streamed_png_input_and_feather_mode(tmp_path, inputs):
  out = tmp_path / "out"
  rc = upscale.main(["--model", "plain", "--scale", "3", "--input", str(inputs / "a.png"),
                     "--output", str(out), "--stream_input", "always", "--tile", "20"])
  assert rc == 0
  model = registry.build_model("plain", scale=3)
  lr = np.asarray(Image.open(inputs / "a.png"))
  np.testing.assert_array_equal(np.asarray(Image.open(out / "a.png")),
                                _reference(model, registry.random_params(model, 0), lr))
  rc = upscale.main(["--model", "plain", "--input", str(inputs / "a.png"), "--output",
                     str(tmp_path / "f"), "--mode", "feather", "--tile", "12", "--overlap", "4"])
  assert rc == 0 and (tmp_path / "f" / "a.png").exists()


def test_checkpoint_and_scale_mismatch(tmp_path, inputs, capsys):
  checkpoint = pytest.importorskip("memsr_jax.checkpoints")
  model = registry.build_model("plain", scale=2, **TINY_PLAIN)
  params = registry.random_params(model, 3)
  ckpt = checkpoint.save_model_checkpoint(tmp_path / "ckpt", "plain",
                                          dict(scale=2, **TINY_PLAIN), params)
  rc = upscale.main(["--checkpoint", str(ckpt), "--scale", "4", "--input", str(inputs),
                     "--output", str(tmp_path / "o")])
  err = capsys.readouterr().err
  assert rc == 2 and "×2 model" in err and "--scale 4" in err
  rc = upscale.main(["--checkpoint", str(ckpt), "--scale", "2", "--input",
                     str(inputs / "a.png"), "--output", str(tmp_path / "o"), "--tile", "10"])
  assert rc == 0
  lr = np.asarray(Image.open(inputs / "a.png"))
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o" / "a.png")),
                                _reference(model, params, lr))
