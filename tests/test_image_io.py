"""read_image: every colour mode and bit depth → RGB uint8; clear errors for bad files."""
import struct
import zlib

import numpy as np
from PIL import Image
import pytest

from memsr_jax.image import io as image_io


def _png_rgb16(path, values: np.ndarray) -> None:
  """A 16-bit RGB PNG written by hand (Pillow cannot write one), with the Sub filter on each row."""
  h, w, _ = values.shape
  raw = values.astype(">u2").view(np.uint8).reshape(h, w * 6).astype(np.int64)
  sub = raw.copy()
  sub[:, 6:] = (raw[:, 6:] - raw[:, :-6]) % 256  # filter type 1: byte minus the byte 6 earlier
  data = b"".join(b"\x01" + row.astype(np.uint8).tobytes() for row in sub)

  def chunk(tag, body):
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

  png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) +
         chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))
  path.write_bytes(png)


def test_rgb_png_jpeg_bmp_roundtrip(tmp_path, sample_image):
  img = sample_image[:32, :40]
  image_io.write_png(tmp_path / "a.png", img)
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "a.png"), img)
  Image.fromarray(img).save(tmp_path / "a.bmp")
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "a.bmp"), img)
  Image.fromarray(img).save(tmp_path / "a.jpg", quality=95)
  jpg = image_io.read_image(tmp_path / "a.jpg")
  assert jpg.shape == img.shape and jpg.dtype == np.uint8
  assert np.abs(jpg.astype(int) - img).mean() < 6


def test_grayscale_palette_and_alpha(tmp_path, rng):
  gray = rng.integers(0, 256, (9, 11)).astype(np.uint8)
  Image.fromarray(gray).save(tmp_path / "l.png")
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "l.png"), np.stack([gray] * 3, -1))
  Image.fromarray(np.stack([gray, 255 - gray], -1), "LA").save(tmp_path / "la.png")
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "la.png"), np.stack([gray] * 3, -1))
  rgba = rng.integers(0, 256, (9, 11, 4)).astype(np.uint8)
  Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "rgba.png"), rgba[..., :3])
  Image.fromarray(gray > 128).save(tmp_path / "bw.png")
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "bw.png")[..., 0],
                                np.where(gray > 128, 255, 0))
  rgb = rng.integers(0, 4, (9, 11, 3)).astype(np.uint8) * 80
  pal = Image.fromarray(rgb).quantize(colors=64, method=Image.Quantize.FASTOCTREE)
  pal.save(tmp_path / "p.png")
  assert Image.open(tmp_path / "p.png").mode == "P"
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "p.png"),
                                np.asarray(pal.convert("RGB")))


def test_cmyk(tmp_path):
  cmyk = np.zeros((4, 5, 4), np.uint8)
  cmyk[..., 0] = 255  # full cyan
  Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.tif")
  got = image_io.read_image(tmp_path / "c.tif")
  np.testing.assert_array_equal(got[0, 0], [0, 255, 255])


def test_16bit_grayscale_png(tmp_path):
  values = np.array([[0, 128, 129, 257], [65535, 65407, 32896, 1000]], np.uint16)
  Image.fromarray(values).save(tmp_path / "g16.png")
  assert Image.open(tmp_path / "g16.png").mode.startswith("I")
  got = image_io.read_image(tmp_path / "g16.png")[..., 0]
  np.testing.assert_array_equal(got, np.floor(values / 257 + 0.5))
  assert got[0, 1] == 0 and got[0, 2] == 1  # 128/257 < 0.5 < 129/257


def test_16bit_rgb_tiff_and_png_keep_full_precision(tmp_path, rng):
  tifffile = pytest.importorskip("tifffile")
  values = rng.integers(0, 65536, (5, 7, 3)).astype(np.uint16)
  values[0, 0] = [128, 129, 65535]  # high byte alone would give 0, 0, 255
  want = np.floor(values / 257 + 0.5).astype(np.uint8)
  tifffile.imwrite(tmp_path / "raw.tif", values, photometric="rgb")
  tifffile.imwrite(tmp_path / "zlib.tif", values, photometric="rgb", compression="zlib")
  _png_rgb16(tmp_path / "rgb16.png", values)
  for name in ("raw.tif", "zlib.tif", "rgb16.png"):
    np.testing.assert_array_equal(image_io.read_image(tmp_path / name), want, err_msg=name)
  assert (want != (values >> 8)).any()  # the test can tell rounding from Pillow's truncation


def test_truncated_png_is_an_error(tmp_path, sample_image):
  image_io.write_png(tmp_path / "full.png", sample_image[:64, :64])
  data = (tmp_path / "full.png").read_bytes()
  (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
  with pytest.raises(image_io.ImageReadError, match="cut.png.*truncated"):
    image_io.read_image(tmp_path / "cut.png")


def test_non_image_and_missing_files(tmp_path):
  (tmp_path / "notes.png").write_text("not an image")
  with pytest.raises(image_io.ImageReadError, match="notes.png is not an image"):
    image_io.read_image(tmp_path / "notes.png")
  with pytest.raises(image_io.ImageReadError, match="not found"):
    image_io.read_image(tmp_path / "nope.png")
  assert issubclass(image_io.ImageReadError, ValueError)


def test_write_png_checks_dtype(tmp_path):
  with pytest.raises(ValueError, match="uint8"):
    image_io.write_png(tmp_path / "x.png", np.zeros((4, 4, 3), np.float32))
  image_io.write_png(tmp_path / "deep/dir/x.png", np.zeros((4, 4, 3), np.uint8))
  assert (tmp_path / "deep/dir/x.png").is_file()


def test_mod_crop_keeps_top_left():
  img = np.arange(7 * 10 * 3).reshape(7, 10, 3)
  np.testing.assert_array_equal(image_io.mod_crop(img, 3), img[:6, :9])
  np.testing.assert_array_equal(image_io.mod_crop(img, 1), img)
  with pytest.raises(ValueError, match="smaller than the scale"):
    image_io.mod_crop(img[:2], 3)


def _with_orientation(img: Image.Image, orientation: int):
  exif = Image.Exif()
  exif[0x0112] = orientation
  return exif


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_viewers_do(tmp_path, orientation):
  from PIL import ImageOps
  stored = np.zeros((32, 40, 3), np.uint8)  # stored 40 wide × 32 high, a marker at the top left
  stored[:4, :8] = 255
  stored[..., 1] = np.arange(40, dtype=np.uint8)[None, :] * 6
  img = Image.fromarray(stored)
  img.save(tmp_path / "o.png", exif=_with_orientation(img, orientation))
  img.save(tmp_path / "o.jpg", exif=_with_orientation(img, orientation), quality=100)
  for name in ("o.png", "o.jpg"):
    with Image.open(tmp_path / name) as opened:
      want = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    got = image_io.read_image(tmp_path / name)
    np.testing.assert_array_equal(got, want, err_msg=name)
    assert image_io.exif_orientation(tmp_path / name) == orientation
  if orientation >= 5:  # a sideways-stored photo comes out as it is shown: 32 wide × 40 high
    assert got.shape == (40, 32, 3)


def test_exif_orientation_of_a_16bit_rgb_png(tmp_path, rng):
  values = rng.integers(0, 65536, (5, 7, 3)).astype(np.uint16)
  _png_rgb16(tmp_path / "plain.png", values)
  data = (tmp_path / "plain.png").read_bytes()
  exif = Image.Exif()
  exif[0x0112] = 6
  body = exif.tobytes()
  chunk = (struct.pack(">I", len(body)) + b"eXIf" + body +
           struct.pack(">I", zlib.crc32(b"eXIf" + body)))
  (tmp_path / "rot.png").write_bytes(data[:33] + chunk + data[33:])  # after the IHDR chunk
  want = np.rot90(image_io.read_image(tmp_path / "plain.png"), -1)
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "rot.png"), want)


def _late_exif_png(path, stored: np.ndarray, orientation: int) -> None:
  """A PNG of `stored` whose eXIf chunk comes after the pixel data (before IEND)."""
  Image.fromarray(stored).save(path)
  data = path.read_bytes()
  exif = Image.Exif()
  exif[0x0112] = orientation
  body = exif.tobytes()
  chunk = (struct.pack(">I", len(body)) + b"eXIf" + body +
           struct.pack(">I", zlib.crc32(b"eXIf" + body)))
  path.write_bytes(data[:-12] + chunk + data[-12:])  # the last 12 bytes are the IEND chunk


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_an_exif_chunk_after_the_pixels_is_seen_without_decoding(tmp_path, rng, orientation):
  stored = rng.integers(0, 256, (6, 9, 3)).astype(np.uint8)
  _late_exif_png(tmp_path / "late.png", stored, orientation)
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "late.png"),
                                image_io._ORIENT[orientation](stored))
  assert image_io.exif_orientation(tmp_path / "late.png") == orientation


def test_animated_images_are_refused_not_read_as_their_first_frame(tmp_path, rng):
  frames = [Image.fromarray(rng.integers(0, 256, (6, 9, 3)).astype(np.uint8)) for _ in range(3)]
  frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
  frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
  frames[0].save(tmp_path / "one.png", save_all=True, append_images=[])  # one frame: a still
  for name, kind in (("anim.png", "PNG"), ("anim.gif", "GIF")):
    with pytest.raises(image_io.ImageReadError, match=f"animated {kind} .3 frames"):
      image_io.read_image(tmp_path / name)
  assert image_io.read_image(tmp_path / "one.png").shape == (6, 9, 3)


def test_read_image_alpha_keeps_alpha(tmp_path, rng):
  rgba = rng.integers(0, 256, (9, 11, 4)).astype(np.uint8)
  Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
  rgb, alpha = image_io.read_image_alpha(tmp_path / "rgba.png")
  np.testing.assert_array_equal(rgb, rgba[..., :3])
  np.testing.assert_array_equal(alpha, rgba[..., 3])
  gray = rgba[..., 0]
  Image.fromarray(np.stack([gray, rgba[..., 3]], -1), "LA").save(tmp_path / "la.png")
  rgb, alpha = image_io.read_image_alpha(tmp_path / "la.png")
  np.testing.assert_array_equal(rgb, np.stack([gray] * 3, -1))
  np.testing.assert_array_equal(alpha, rgba[..., 3])
  pal = Image.fromarray(rgba[..., :3]).quantize(colors=16)
  pal.info["transparency"] = 0
  pal.save(tmp_path / "p.png", transparency=0)
  _, alpha = image_io.read_image_alpha(tmp_path / "p.png")
  np.testing.assert_array_equal(alpha, np.where(np.asarray(pal) == 0, 0, 255))
  Image.fromarray(rgba[..., :3]).save(tmp_path / "rgb.png")
  assert image_io.read_image_alpha(tmp_path / "rgb.png")[1] is None


def _png_la16(path, values: np.ndarray) -> None:
  """A 16-bit gray + alpha PNG (colour type 4), unfiltered rows."""
  h, w, _ = values.shape
  raw = values.astype(">u2").view(np.uint8).reshape(h, w * 4)
  data = b"".join(b"\x00" + row.tobytes() for row in raw)

  def chunk(tag, body):
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

  png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0)) +
         chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))
  path.write_bytes(png)


def test_16bit_gray_alpha_png_is_read_in_full_precision(tmp_path, rng):
  values = rng.integers(0, 65536, (6, 5, 2)).astype(np.uint16)
  values[0, 0] = [128, 129]  # the high byte alone would give 0, 0
  _png_la16(tmp_path / "la16.png", values)
  want = np.floor(values / 257 + 0.5).astype(np.uint8)
  rgb, alpha = image_io.read_image_alpha(tmp_path / "la16.png")
  np.testing.assert_array_equal(rgb, np.stack([want[..., 0]] * 3, -1))
  np.testing.assert_array_equal(alpha, want[..., 1])
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "la16.png"), rgb)


def test_write_png_rgba_roundtrip(tmp_path, rng):
  rgba = rng.integers(0, 256, (5, 6, 4)).astype(np.uint8)
  image_io.write_png(tmp_path / "a.png", rgba)
  rgb, alpha = image_io.read_image_alpha(tmp_path / "a.png")
  np.testing.assert_array_equal(np.dstack([rgb, alpha]), rgba)
