"""One bad file never aborts a batch (issue 16): huge images read, damaged PNG data in the
streaming reader is a per-image error, and upscale goes on with the next image."""
import struct
import zlib

import numpy as np
from PIL import Image
import pytest

from memsr_jax import upscale
from memsr_jax.deploy import png_stream
from memsr_jax.image import io as image_io


def _png(path, size=(16, 12), seed=0):
  rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
  Image.fromarray(rgb).save(path)
  return path


def _damage_idat(path):
  """Flips bytes inside the first IDAT's zlib stream (CRC left stale: only zlib notices)."""
  data = bytearray(path.read_bytes())
  i = data.index(b"IDAT") + 4
  n = struct.unpack(">I", data[i - 8:i - 4])[0]
  for k in range(i + 2, i + n):
    data[k] ^= 0x5A
  path.write_bytes(bytes(data))


def test_images_over_pillows_bomb_limit_are_read(tmp_path, monkeypatch):
  p = _png(tmp_path / "a.png")
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # 192 px > 2 × 50: Pillow alone refuses
  assert image_io.read_image(p).shape == (12, 16, 3)
  assert Image.MAX_IMAGE_PIXELS == 50  # restored
  monkeypatch.setattr(image_io, "MAX_PIXELS", 50)  # our own limit is an ImageReadError
  with pytest.raises(image_io.ImageReadError, match="MAX_PIXELS"):
    image_io.read_image(p)


def test_streaming_reader_reports_damaged_data_as_value_error(tmp_path):
  p = _png(tmp_path / "a.png")
  _damage_idat(p)
  with png_stream.PNGRowReader(p) as r:
    with pytest.raises(ValueError, match="corrupt PNG"):
      r.read(r.height)


def test_upscale_skips_bad_files_and_finishes_the_batch(tmp_path, capsys):
  inp, out = tmp_path / "in", tmp_path / "out"
  inp.mkdir()
  _png(inp / "a.png")
  _damage_idat(_png(inp / "b.png", seed=1))
  (inp / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 5)  # header cut off
  (inp / "notes.txt").write_text("not an image")
  _png(inp / "d.png", seed=2)
  for stream in ("always", "never"):
    rc = upscale.main(["--model", "plain_s", "--scale", "2", "--input", str(inp), "--output",
                       str(out / stream), "--stream_input", stream])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert sorted(p.name for p in (out / stream).iterdir()) == ["a.png", "d.png"], stream
    # notes.txt has no image suffix: ignored (a sidecar file), not an input that fails
    assert "2 of 4 input(s) skipped" in err and "Traceback" not in err


def _constant_png(path, width, height, value=128):
  """An RGB PNG of one colour, compressed row band by row band (a 182 MP file in ~1 s)."""
  def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
  band = (b"\x00" + bytes([value]) * (3 * width)) * 100
  z = zlib.compressobj(1)
  body = [z.compress(band) for _ in range(height // 100)]
  body += [z.compress(band[:(height % 100) * (3 * width + 1)]), z.flush()]
  path.write_bytes(b"\x89PNG\r\n\x1a\n" +
                   chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
                   chunk(b"IDAT", b"".join(body)) + chunk(b"IEND", b""))
  return path


def test_a_13500_square_png_opens_for_streaming(tmp_path):
  big = _constant_png(tmp_path / "big.png", 13500, 13500)
  assert image_io.exif_orientation(big) == 1  # was Pillow's DecompressionBombError
  with png_stream.PNGRowReader(big) as r:
    assert (r.width, r.height) == (13500, 13500)
    np.testing.assert_array_equal(r.read(2), np.full((2, 13500, 3), 128, np.uint8))


def test_a_png_over_pillows_bomb_limit_does_not_abort_the_batch(tmp_path, monkeypatch, capsys):
  inp = tmp_path / "in"
  inp.mkdir()
  _png(inp / "a.png")
  _png(inp / "b.png", size=(20, 12), seed=1)
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # both are "bombs" to Pillow alone
  for stream in ("auto", "always", "never"):
    rc = upscale.main(["--model", "plain_s", "--scale", "2", "--input", str(inp), "--output",
                       str(tmp_path / stream), "--stream_input", stream])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / stream).iterdir()) == ["a.png", "b.png"], stream
