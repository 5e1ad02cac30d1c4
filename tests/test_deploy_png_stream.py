"""Row-streaming PNG writer and reader against Pillow."""
import struct
import zlib

import numpy as np
from PIL import Image
import pytest

from memsr_jax.deploy import png_stream


def _encode_with_filters(path, img: np.ndarray, filters, color_type=2, depth=8):
  """A PNG whose row i uses filter filters[i % len]: exercises each unfilter path of the reader."""
  h, w = img.shape[:2]
  bpp = img.shape[2] * depth // 8 if img.ndim == 3 else depth // 8
  raw = img.reshape(h, -1).astype(np.int32)
  if depth == 16:
    raw = np.stack([raw >> 8, raw & 255], -1).reshape(h, -1)
  lines, prev = [], np.zeros(raw.shape[1], np.int32)
  for i, row in enumerate(raw):
    f = filters[i % len(filters)]
    left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
    upleft = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
    if f == 0:
      pred = np.zeros_like(row)
    elif f == 1:
      pred = left
    elif f == 2:
      pred = prev
    elif f == 3:
      pred = (left + prev) // 2
    else:
      p = left + prev - upleft
      pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
      pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
    lines.append(bytes([f]) + ((row - pred) % 256).astype(np.uint8).tobytes())
    prev = row

  def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF))

  data = zlib.compress(b"".join(lines))
  with open(path, "wb") as f:
    f.write(png_stream.PNG_SIGNATURE)
    f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)))
    # Two IDAT chunks: the reader must cross chunk boundaries.
    f.write(chunk(b"IDAT", data[:len(data) // 2]))
    f.write(chunk(b"IDAT", data[len(data) // 2:]))
    f.write(chunk(b"IEND", b""))


def test_writer_roundtrip_through_pillow(tmp_path, rng):
  img = rng.integers(0, 256, (37, 29, 3), dtype=np.uint8)
  with png_stream.PNGRowWriter(tmp_path / "a.png", 29, 37) as w:
    w.write_rows(img[:5])
    w.write_rows(img[5:])
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), img)


def test_writer_checks_row_count_and_cleans_up(tmp_path, rng):
  img = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
  with pytest.raises(ValueError, match="rows written"):
    with png_stream.PNGRowWriter(tmp_path / "a.png", 5, 5) as w:
      w.write_rows(img)
      w.close()
  with pytest.raises(ValueError, match="expected uint8 rows"):
    with png_stream.PNGRowWriter(tmp_path / "b.png", 6, 4) as w:
      w.write_rows(img)
  assert not (tmp_path / "b.png").exists()  # partial files are removed


@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (3,), (4,), (0, 1, 2, 3, 4)])
def test_reader_unfilters_every_filter_type(tmp_path, rng, filters):
  img = rng.integers(0, 256, (11, 9, 3), dtype=np.uint8)
  _encode_with_filters(tmp_path / "f.png", img, filters)
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "f.png").convert("RGB")), img)
  with png_stream.PNGRowReader(tmp_path / "f.png") as r:
    got = np.concatenate([r.read(4), r.read(4), r.read(100)])
  np.testing.assert_array_equal(got, img)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P"])
def test_reader_converts_like_read_image(tmp_path, rng, mode):
  from memsr_jax.image import io as image_io
  rgb = rng.integers(0, 256, (13, 10, 3), dtype=np.uint8)
  Image.fromarray(rgb).convert(mode).save(tmp_path / "m.png")
  with png_stream.PNGRowReader(tmp_path / "m.png") as r:
    got = r.read(r.height)
  np.testing.assert_array_equal(got, image_io.read_image(tmp_path / "m.png"))


def test_reader_16bit(tmp_path, rng):
  img16 = rng.integers(0, 65536, (6, 7, 3)).astype(np.uint16)
  _encode_with_filters(tmp_path / "d.png", img16, (1, 4), color_type=2, depth=16)
  with png_stream.PNGRowReader(tmp_path / "d.png") as r:
    got = r.read(6)
  np.testing.assert_array_equal(got, np.floor(img16 / 257 + 0.5).astype(np.uint8))


def test_reader_rejects_what_it_cannot_stream(tmp_path, rng):
  Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
      tmp_path / "i.png", interlace=1)  # Pillow writes non-interlaced; craft an interlaced header
  data = bytearray((tmp_path / "i.png").read_bytes())
  data[28] = 1  # IHDR interlace byte (CRC is not checked for IHDR by this reader)
  (tmp_path / "i.png").write_bytes(bytes(data))
  with pytest.raises(png_stream.UnsupportedPNG, match="interlaced"):
    png_stream.PNGRowReader(tmp_path / "i.png")
  (tmp_path / "j.jpg").write_bytes(b"\xff\xd8not a png")
  with pytest.raises(png_stream.UnsupportedPNG, match="not a PNG"):
    png_stream.PNGRowReader(tmp_path / "j.jpg")
