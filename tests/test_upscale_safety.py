"""upscale keeps alpha (hidden colours never show), reads images upright, ignores sidecar files,
and refuses bad inputs (FIFO, ''), too small tiles, … up front with one line."""
import os
import struct
import zlib

import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from memsr_jax import upscale
from memsr_jax.image import alpha as alpha_lib
from memsr_jax.models import registry

PLAIN = dict(scale=2, widths=(3, 4, 4, 4), relu=(True, False, False), bias_mode="map",
             tail_kernel=1)


def _model():
  model = registry.build_model("plain", **PLAIN)
  return model, registry.random_params(model, 0)


def _reference(img):
  model, params = _model()
  y = model.apply({"params": params}, jnp.asarray(img, jnp.float32)[None])[0]
  return np.clip(np.round(np.asarray(y)), 0, 255).astype(np.uint8)


def _upscale(src, out, *extra):
  sets = [f"--set=widths={list(PLAIN['widths'])}", "--set=relu=[true,false,false]",
          "--set=bias_mode=map", "--set=tail_kernel=1"]
  return upscale.main(["--model", "plain", "--scale", "2", *sets, "--input", str(src),
                       "--output", str(out), *extra])


def _rgba(rng, hidden):
  """A 20×18 RGBA image: an opaque, a half-transparent and a fully transparent region; the last
  stores the colour `hidden`."""
  rgb = rng.integers(0, 256, (18, 20, 3)).astype(np.uint8)
  a = np.full((18, 20), 255, np.uint8)
  a[:, 12:16] = 128
  a[:, 16:] = 0
  rgb[:, 16:] = hidden
  return np.dstack([rgb, a])


@pytest.mark.parametrize("stream", ["never", "always"])
def test_alpha_is_kept_and_hidden_colours_never_show(tmp_path, rng, stream):
  Image.fromarray(_rgba(np.random.default_rng(1), (255, 0, 0)), "RGBA").save(tmp_path / "r.png")
  Image.fromarray(_rgba(np.random.default_rng(1), (0, 255, 0)), "RGBA").save(tmp_path / "g.png")
  for name in ("r", "g"):
    assert _upscale(tmp_path / f"{name}.png", tmp_path / name, "--stream_input", stream,
                    "--quiet") == 0
  red = np.asarray(Image.open(tmp_path / "r" / "r.png"))
  green = np.asarray(Image.open(tmp_path / "g" / "g.png"))
  assert red.shape == (36, 40, 4)
  np.testing.assert_array_equal(red, green)  # the hidden colour changes nothing
  rgba = _rgba(np.random.default_rng(1), (255, 0, 0))
  want_a = alpha_lib.upscale_alpha(rgba[..., 3], 2)
  want_rgb = alpha_lib.unpremultiply(
      _reference(alpha_lib.premultiply(rgba[..., :3], rgba[..., 3])), want_a)
  np.testing.assert_array_equal(red[..., 3], want_a)
  np.testing.assert_array_equal(red[..., :3], want_rgb)
  assert (red[want_a == 0, :3] == 0).all()


def _la16_png(path, values):
  h, w, _ = values.shape
  raw = values.astype(">u2").view(np.uint8).reshape(h, w * 4)
  data = b"".join(b"\x00" + row.tobytes() for row in raw)

  def chunk(tag, body):
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

  path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 4, 0,
                                                                     0, 0)) +
                   chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))


def test_16bit_gray_alpha_png_streamed_or_not(tmp_path, rng):
  values = rng.integers(0, 65536, (9, 11, 2)).astype(np.uint16)
  _la16_png(tmp_path / "la.png", values)
  for stream in ("never", "always"):
    assert _upscale(tmp_path / "la.png", tmp_path / stream, "--stream_input", stream) == 0
  never = np.asarray(Image.open(tmp_path / "never" / "la.png"))
  np.testing.assert_array_equal(never, np.asarray(Image.open(tmp_path / "always" / "la.png")))
  assert never.shape == (18, 22, 4)


@pytest.mark.parametrize("stream", ["never", "always"])
def test_exif_orientation_is_applied(tmp_path, rng, stream):
  stored = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)  # stored 16 wide, 12 high
  exif = Image.Exif()
  exif[0x0112] = 6  # shown rotated 90° clockwise: 12 wide, 16 high
  Image.fromarray(stored).save(tmp_path / "p.png", exif=exif)
  assert _upscale(tmp_path / "p.png", tmp_path / "o", "--stream_input", stream) == 0
  got = np.asarray(Image.open(tmp_path / "o" / "p.png"))
  np.testing.assert_array_equal(got, _reference(np.rot90(stored, -1)))


def test_a_late_exif_chunk_gives_one_orientation_streamed_or_not(tmp_path, rng):
  stored = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
  Image.fromarray(stored).save(tmp_path / "p.png")
  data = (tmp_path / "p.png").read_bytes()
  exif = Image.Exif()
  exif[0x0112] = 6
  body = exif.tobytes()
  chunk = (struct.pack(">I", len(body)) + b"eXIf" + body +
           struct.pack(">I", zlib.crc32(b"eXIf" + body)))
  (tmp_path / "p.png").write_bytes(data[:-12] + chunk + data[-12:])  # after IDAT, before IEND
  want = _reference(np.rot90(stored, -1))
  for name, flags in (("whole", ["--stream_input", "never"]),
                      ("always", ["--stream_input", "always"])):
    assert _upscale(tmp_path / "p.png", tmp_path / name, *flags) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / name / "p.png")), want,
                                  err_msg=name)


@pytest.mark.parametrize("stream", ["never", "always"])
def test_an_animated_png_is_skipped_with_its_reason(tmp_path, rng, capsys, stream):
  d = tmp_path / "in"
  d.mkdir()
  frames = [Image.fromarray(rng.integers(0, 256, (8, 9, 3)).astype(np.uint8)) for _ in range(2)]
  frames[0].save(d / "anim.png", save_all=True, append_images=frames[1:])
  frames[0].save(d / "still.png")
  assert _upscale(d, tmp_path / "o", "--stream_input", stream) == 1
  assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["still.png"]
  err = capsys.readouterr().err
  assert "anim.png: SKIPPED" in err and "animated PNG (2 frames)" in err, err


def test_sidecar_files_are_not_inputs(tmp_path, rng, capsys):
  d = tmp_path / "in"
  d.mkdir()
  Image.fromarray(rng.integers(0, 256, (8, 9, 3)).astype(np.uint8)).save(d / "photo.png")
  (d / "photo.xmp").write_text("<x:xmpmeta/>")
  (d / "README.txt").write_text("notes")
  assert _upscale(d, tmp_path / "o") == 0
  assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["photo.png"]
  assert "2 file(s) without an image suffix ignored" in capsys.readouterr().err
  (d / "photo.png").unlink()
  assert _upscale(d, tmp_path / "o2") == 2
  assert "has no images" in capsys.readouterr().err


def _one_line_error(capsys, fragment):
  err = capsys.readouterr().err
  lines = [line for line in err.splitlines() if line.startswith("error: ")]
  assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in err, err


def test_a_tile_smaller_than_the_halo_is_one_error_up_front(tmp_path, rng, capsys):
  d = tmp_path / "in"
  d.mkdir()
  for name in ("a.png", "b.png"):
    Image.fromarray(rng.integers(0, 256, (30, 30, 3)).astype(np.uint8)).save(d / name)
  assert _upscale(d, tmp_path / "o", "--tile", "6") == 2  # radius 3: a tile needs 7 or more
  _one_line_error(capsys, "--tile 6 leaves no core inside the halo of 3")
  assert not list((tmp_path / "o").glob("*.png"))


def test_quiet_still_lists_skipped_files(tmp_path, rng, capsys):
  d = tmp_path / "in"
  d.mkdir()
  Image.fromarray(rng.integers(0, 256, (8, 9, 3)).astype(np.uint8)).save(d / "a.png")
  (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
  assert _upscale(d, tmp_path / "o", "--quiet") == 1
  err = capsys.readouterr().err
  assert "1 of 2 input(s) skipped" in err and "broken.png" in err


def test_fifo_and_empty_paths_are_refused(tmp_path, rng, capsys):
  fifo = tmp_path / "pipe.png"
  os.mkfifo(fifo)  # reading it would block forever
  assert _upscale(fifo, tmp_path / "o") == 2
  _one_line_error(capsys, "is not a regular file")
  Image.fromarray(rng.integers(0, 256, (8, 9, 3)).astype(np.uint8)).save(tmp_path / "a.png")
  assert _upscale("", tmp_path / "o") == 2
  _one_line_error(capsys, "--input is empty")
  assert _upscale(tmp_path / "a.png", "") == 2
  _one_line_error(capsys, "--output is empty")


def test_a_max_memory_without_a_unit_is_refused_in_one_line(tmp_path, rng, capsys):
  Image.fromarray(rng.integers(0, 256, (8, 9, 3)).astype(np.uint8)).save(tmp_path / "a.png")
  assert _upscale(tmp_path / "a.png", tmp_path / "o", "--max_memory", "256") == 2
  _one_line_error(capsys, "'256' has no unit, so it would be 256 bytes: write the unit, e.g. 256MB")
  assert not (tmp_path / "o").exists()


def _png(path, rgb):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(rgb).save(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_model_is_refused_and_writes_nothing(tmp_path, rng, capsys, bad):
  import nan_models
  ckpt = nan_models.nan_checkpoint(tmp_path / "model", bad)
  for name in ("a.png", "b.png"):
    _png(tmp_path / "in" / name, rng.integers(0, 256, (10, 12, 3)).astype(np.uint8))
  out = tmp_path / "out"
  assert upscale.main(["--checkpoint", str(ckpt), "--input", str(tmp_path / "in"),
                       "--output", str(out)]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith("error: the model outputs ") and "weights are broken" in err[-1]
  assert not out.exists()  # no PNG, no partial file, no empty folder


def test_outputs_inside_a_checkpoint_step_are_refused(tmp_path, rng, capsys):
  import nan_models
  ckpt = nan_models.nan_checkpoint(tmp_path / "run" / "checkpoints" / "6")
  _png(tmp_path / "a.png", rng.integers(0, 256, (10, 12, 3)).astype(np.uint8))
  before = sorted(p.relative_to(ckpt) for p in ckpt.rglob("*"))
  for out in (ckpt, ckpt / "sr", tmp_path / "run"):
    assert _upscale(tmp_path / "a.png", out) == 2
    assert "checkpoint tree" in capsys.readouterr().err
  assert sorted(p.relative_to(ckpt) for p in ckpt.rglob("*")) == before


def test_a_failed_upscale_leaves_no_empty_output_folder(tmp_path, rng, capsys):
  _png(tmp_path / "a.png", rng.integers(0, 256, (10, 12, 3)).astype(np.uint8))
  out = tmp_path / "new" / "out"
  assert upscale.main(["--checkpoint", str(tmp_path / "missing"), "--input",
                       str(tmp_path / "a.png"), "--output", str(out)]) == 2
  assert "does not exist" in capsys.readouterr().err
  assert not out.exists()
  (tmp_path / "kept").mkdir()  # a folder the user made stays
  assert upscale.main(["--checkpoint", str(tmp_path / "missing"), "--input",
                       str(tmp_path / "a.png"), "--output", str(tmp_path / "kept")]) == 2
  assert (tmp_path / "kept").is_dir()
