"""Reading and writing images as RGB uint8 arrays (Pillow).

Every reader in the project goes through `read_image`, so every dataset sees the same conversion
rules (protocol step 1): grayscale is replicated to three channels, palette and CMYK images are
converted to RGB, alpha is dropped, and 16-bit images are scaled to 8 bits by `round(v / 257)`.
An EXIF orientation tag is applied, so the array is the picture as image viewers show it.
Animated images (APNG, GIF, WebP with more than one frame) are refused, not read as one frame.
`read_image_alpha` also returns the alpha channel (for tools that keep it, like upscale).
"""
import contextlib
import io
import os
import pathlib
import struct
import sys
from typing import Union
import zlib

import numpy as np
from PIL import Image
from PIL import ImageFile
from PIL import UnidentifiedImageError

from memsr_jax.utils import cli

PathLike = Union[str, os.PathLike]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


# Pillow refuses images over ~179 megapixels (a "decompression bomb" guard for untrusted web
# input). Ours are the user's own files and the docs promise any size, so our reader allows up to
# 4 gigapixels (12 GB decoded); set MAX_PIXELS = None for no limit.
MAX_PIXELS = 1 << 32
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Formats whose extra frames are an animation: read_image refuses those instead of silently
# returning the first frame (multi-page TIFFs are read as their first page).
_ANIMATED_FORMATS = ("PNG", "GIF", "WEBP")


class ImageReadError(cli.UserError, ValueError):
  """An image file is missing, unreadable or not an image (the user's file: one line, exit 2)."""


def _to_uint8_from_16bit(values: np.ndarray) -> np.ndarray:
  # 65535 / 257 = 255 exactly, so this maps the 16-bit range onto the 8-bit one, rounding halves up
  # (v / 257 is never exactly k + 0.5 for integer v, so the tie rule never matters).
  return np.floor(values.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)


def _swap_endianness(rawmode: str) -> str:
  head, end = rawmode[:-1], rawmode[-1]
  if end == "N":
    end = "L" if sys.byteorder == "little" else "B"
  return head + ("L" if end == "B" else "B")


def _same_endianness(rawmode: str) -> str:
  if rawmode.endswith("N"):
    return rawmode[:-1] + ("L" if sys.byteorder == "little" else "B")
  return rawmode


def _is_16bit_multichannel(img: Image.Image) -> bool:
  """Pillow opens 16-bit RGB(A) PNG/TIFF as 8-bit RGB(A), keeping only each value's high byte."""
  if img.mode not in ("RGB", "RGBA") or not img.tile:
    return False
  return all(";16" in _tile_rawmode(t) for t in img.tile)


def _tile_rawmode(tile) -> str:
  args = tile.args
  return args if isinstance(args, str) else str(args[0])


def _with_rawmode(tile, rawmode: str):
  args = tile.args
  args = rawmode if isinstance(args, str) else (rawmode,) + tuple(args[1:])
  return tile._replace(args=args)


def _decode_16bit_multichannel(path: pathlib.Path) -> np.ndarray:
  """Full 16-bit values of a 16-bit RGB(A) image, read as two 8-bit passes (high and low bytes).

  Pillow's ';16B'/';16L' unpackers keep one byte of each sample: decoding with the file's own
  endianness gives the high byte and with the opposite one the low byte, while the codec
  (zlib/PNG filters, TIFF compression) runs unchanged.
  """
  planes = []
  for pick in (_same_endianness, _swap_endianness):
    with Image.open(path) as img:
      img.tile = [_with_rawmode(t, pick(_tile_rawmode(t))) for t in img.tile]
      img.load()
      planes.append(np.asarray(img).astype(np.uint16))
  return planes[0] * 256 + planes[1]


def _decode_16bit_gray_alpha(img: Image.Image) -> np.ndarray:
  """Full 16-bit [H, W, 2] gray + alpha of a PNG Pillow opens as RGBA with rawmode 'LA;16B'.

  Pillow has no unpacker keeping both bytes of 'LA;16B'; 'RGBA' unpacks the same 4 bytes per
  pixel unchanged (gray high, gray low, alpha high, alpha low).
  """
  img.tile = [_with_rawmode(t, "RGBA") for t in img.tile]
  img.load()
  raw = np.asarray(img).astype(np.uint16)
  return np.stack([raw[..., 0] * 256 + raw[..., 1], raw[..., 2] * 256 + raw[..., 3]], -1)


def _gray3(gray: np.ndarray) -> np.ndarray:
  return np.repeat(gray[..., None], 3, axis=-1)


def _pil_to_rgb_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
  """(RGB uint8, alpha uint8 or None) of a loaded image."""
  mode = img.mode
  if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
    values = np.asarray(img)
    if mode == "I" and values.max(initial=0) > 65535:
      raise ValueError(f"32-bit integer image with values up to {values.max()} (only 8/16-bit "
                       "images are supported)")
    return _gray3(_to_uint8_from_16bit(values)), None
  if mode == "F":
    raise ValueError("floating-point image (mode F) has no defined 8-bit range; convert it to an "
                     "8- or 16-bit PNG first")
  if mode in ("L", "1") and "transparency" not in img.info:
    return _gray3(np.asarray(img.convert("L"))), None
  if mode == "LA":
    la = np.asarray(img)
    return _gray3(la[..., 0]), la[..., 1]
  if mode == "RGB" and "transparency" not in img.info:
    return np.asarray(img), None
  if mode == "RGBA":
    rgba = np.asarray(img)
    return rgba[..., :3], rgba[..., 3]
  # P (palette, with or without transparency), PA, CMYK, YCbCr, LAB, HSV, a tRNS colour key, …:
  # let Pillow convert, keeping alpha when the image has any.
  if "A" in img.getbands() or "transparency" in img.info:
    rgba = np.asarray(img.convert("RGBA"))
    return rgba[..., :3], rgba[..., 3]
  return np.asarray(img.convert("RGB")), None


# EXIF orientation (tag 0x0112) → the array operation that shows the picture upright, as
# PIL.ImageOps.exif_transpose does it.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),
    8: lambda a: np.rot90(a, 1),
}
_ORIENTATION_TAG = 0x0112


def _orientation(img: Image.Image) -> int:
  """The EXIF orientation of a decoded `img` (1 when absent or damaged). Pillow reads a PNG's
  EXIF (an eXIf chunk, an XMP or raw-profile text chunk, before or after the pixels) only by
  decoding the whole image."""
  try:
    value = int(img.getexif().get(_ORIENTATION_TAG, 1))
  except Exception:  # a damaged EXIF block: show the image as stored, as viewers do
    return 1
  return value if value in _ORIENT else 1


def _png_chunks(f) -> list[tuple[bytes, bytes | None]]:
  """(kind, data) of a PNG's chunks up to IEND; the pixel chunks (IDAT, fdAT) come back with
  data None, skipped by seeking, so this costs a few reads however large the image."""
  chunks = []
  while True:
    head = f.read(8)
    if len(head) < 8:
      return chunks
    length, kind = struct.unpack(">I4s", head)
    if kind in (b"IDAT", b"fdAT"):
      f.seek(length + 4, 1)
      chunks.append((kind, None))
      continue
    data = f.read(length)
    f.read(4)
    if len(data) < length:
      return chunks
    chunks.append((kind, data))
    if kind == b"IEND":
      return chunks


def _png_chunk(kind: bytes, data: bytes) -> bytes:
  return (struct.pack(">I", len(data)) + kind + data +
          struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF))


def _png_orientation(path: pathlib.Path) -> int:
  """A PNG's EXIF orientation as a whole-image decode (`_decode`) sees it, without decoding.

  Pillow reads every metadata chunk, before and after the pixel data, only while decoding the
  pixels; so Pillow decodes a stand-in instead: the same metadata chunks around a 1×1 image of the
  same colour type and depth.
  """
  with open(path, "rb") as f:
    if f.read(8) != _PNG_SIGNATURE:
      return 1
    chunks = _png_chunks(f)
  if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
    return 1
  depth, color = chunks[0][1][8], chunks[0][1][9]
  channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color, 1)
  pixel = zlib.compress(bytes(1 + max(1, channels * depth // 8)))
  out, idat_done = [_PNG_SIGNATURE], False
  for kind, data in chunks:
    if kind == b"IHDR":
      data = struct.pack(">II", 1, 1) + data[8:12] + b"\x00"  # 1×1, not interlaced
    elif kind in (b"IDAT", b"fdAT"):
      if idat_done or kind == b"fdAT":
        continue
      kind, data, idat_done = b"IDAT", pixel, True
    elif kind in (b"acTL", b"fcTL"):
      continue
    out.append(_png_chunk(kind, data))
  try:
    with Image.open(io.BytesIO(b"".join(out))) as img:
      img.load()
      return _orientation(img)
  except Exception:  # damaged metadata: the whole-image decode shows it as stored too, or fails
    return 1


def exif_orientation(path: PathLike) -> int:
  """The file's EXIF orientation (1..8; 1 = stored upright, also when there is no tag), read
  without decoding the pixels; for a PNG, the one `read_image` applies (wherever the chunk is)."""
  path = pathlib.Path(path)
  previous_max = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = MAX_PIXELS
  try:
    with Image.open(path) as img:
      if img.format == "PNG":
        return _png_orientation(path)
      return _orientation(img)
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
    return 1
  finally:
    Image.MAX_IMAGE_PIXELS = previous_max


def _decode(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray | None]:
  """(RGB, alpha or None) as stored, plus the EXIF orientation applied."""
  with Image.open(path) as img:
    frames = getattr(img, "n_frames", 1) if img.format in _ANIMATED_FORMATS else 1
    if frames > 1:
      raise ImageReadError(f"{path} is an animated {img.format} ({frames} frames): only still "
                           "images are read; save the frame you want as a PNG")
    _check_pixels(img, path)
    if img.mode == "RGBA" and img.tile and all(_tile_rawmode(t) == "LA;16B" for t in img.tile):
      la = _to_uint8_from_16bit(_decode_16bit_gray_alpha(img))
      rgb, alpha = _gray3(la[..., 0]), la[..., 1]
    elif _is_16bit_multichannel(img):
      values = _to_uint8_from_16bit(_decode_16bit_multichannel(path))
      rgb, alpha = values[..., :3], (values[..., 3] if values.shape[-1] == 4 else None)
    else:
      img.load()  # a full decode: truncated data raises here, not later
      rgb, alpha = _pil_to_rgb_alpha(img)
    orientation = _orientation(img)  # after the decode: Pillow's PNG EXIF reader decodes
  if orientation != 1:
    rgb = _ORIENT[orientation](rgb)
    alpha = None if alpha is None else _ORIENT[orientation](alpha)
  return rgb, alpha


def read_image(path: PathLike) -> np.ndarray:
  """Reads PNG / JPEG / BMP / TIFF as RGB uint8 [H, W, 3], upright (EXIF orientation applied).

  Grayscale (L, 1, LA) is replicated to three channels; palette (P, PA) and CMYK are converted to
  RGB; alpha is dropped. 16-bit images (grayscale PNG/TIFF `I;16`, gray+alpha and RGB(A) PNG/TIFF
  with 16-bit samples) are scaled to 8 bits as `round(v / 257)`; Pillow alone would keep only the
  high byte of 16-bit RGB, so those are decoded with full precision (`_decode_16bit_*`).

  Raises:
    ImageReadError: the file is missing, not an image, animated, or truncated/corrupt (the whole
      file is decoded, so a cut-off file fails here instead of yielding a partly grey image).
  """
  return read_image_alpha(path)[0]


def read_image_alpha(path: PathLike) -> tuple[np.ndarray, np.ndarray | None]:
  """`read_image` plus the alpha channel: (RGB uint8 [H, W, 3], alpha uint8 [H, W] or None).

  Alpha is None for images without one; palette transparency and tRNS colour keys count as
  alpha. The RGB values are stored colours (also those under fully transparent pixels):
  `memsr_jax.image.alpha.premultiply` hides them before a model sees them.
  """
  path = pathlib.Path(path)
  with _reading(path):
    rgb, alpha = _decode(path)
  rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
  if rgb.ndim != 3 or rgb.shape[-1] != 3 or min(rgb.shape[:2]) == 0:
    raise ImageReadError(f"{path}: decoded to an unexpected shape {rgb.shape}")
  if alpha is not None:
    alpha = np.ascontiguousarray(alpha, dtype=np.uint8)
  return rgb, alpha


def image_size(path: PathLike) -> tuple[int, int]:
  """(width, height) as stored, from the file's header (no decode); ImageReadError as
  `read_image` raises it for a missing, empty, non-image or over-MAX_PIXELS file."""
  path = pathlib.Path(path)
  with _reading(path):
    with Image.open(path) as img:
      _check_pixels(img, path)
      return img.size


def _check_pixels(img: Image.Image, path: pathlib.Path) -> None:
  if MAX_PIXELS is not None and img.size[0] * img.size[1] > MAX_PIXELS:
    raise ImageReadError(f"{path}: {img.size[0]}×{img.size[1]} pixels is over the "
                         f"{MAX_PIXELS} read_image reads (memsr_jax.image.io.MAX_PIXELS)")


@contextlib.contextmanager
def _reading(path: pathlib.Path):
  """Pillow's settings for reading `path` (no truncated images, our pixel limit), restored after;
  every failure comes out as one ImageReadError naming the file."""
  if not path.is_file():
    raise ImageReadError(f"image file not found: {path} (check the path / the data root)")
  previous = ImageFile.LOAD_TRUNCATED_IMAGES
  previous_max = Image.MAX_IMAGE_PIXELS
  ImageFile.LOAD_TRUNCATED_IMAGES = False
  Image.MAX_IMAGE_PIXELS = MAX_PIXELS
  try:
    yield
  except ImageReadError:
    raise
  except UnidentifiedImageError as e:
    raise ImageReadError(f"{path} is not an image Pillow can read (expected PNG/JPEG/BMP/TIFF); "
                         "remove it from the folder or re-save it as PNG") from e
  except Image.DecompressionBombError as e:
    raise ImageReadError(f"{path}: {e} (memsr_jax.image.io.MAX_PIXELS)") from e
  except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data, unsupported modes
    raise ImageReadError(f"cannot decode {path}: {e}. The file is truncated or corrupt; "
                         "re-download or re-save it (e.g. as PNG)") from e
  finally:
    ImageFile.LOAD_TRUNCATED_IMAGES = previous
    Image.MAX_IMAGE_PIXELS = previous_max


def write_png(path: PathLike, image: np.ndarray) -> None:
  """Writes an RGB [H, W, 3], RGBA [H, W, 4] or grayscale [H, W] uint8 array as PNG, creating
  parent folders."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise ValueError(f"write_png expects uint8, got {image.dtype}; clip and round first")
  if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (1, 3, 4))):
    raise ValueError(f"write_png expects [H, W], [H, W, 3] or [H, W, 4], got shape {image.shape}")
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(image).save(path, format="PNG")


def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
  """Cuts height and width down to multiples of `scale`, keeping the top-left part (step 2)."""
  if scale < 1:
    raise ValueError(f"scale must be a positive integer, got {scale}")
  h, w = image.shape[:2]
  hh, ww = h - h % scale, w - w % scale
  if hh == 0 or ww == 0:
    raise ValueError(f"image of size {h}x{w} is smaller than the scale {scale}")
  return image[:hh, :ww]
