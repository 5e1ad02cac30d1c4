"""Row-streaming PNG reader and writer (zlib + struct, no full-image buffers).

The writer emits one IDAT chunk per ~256 KiB of compressed data, so a 100-megapixel output never
exists in memory; it writes RGB or RGBA. The reader decodes non-interlaced 8/16-bit PNGs (gray,
gray+alpha, RGB, RGBA, palette, tRNS transparency) row by row and returns RGB uint8 rows with the
conversion rules of `image.io.read_image` (gray replicated, alpha dropped, 16-bit scaled by
round(v / 257)), or premultiplied by alpha (`premultiply_alpha`), and the alpha rows on request
(`read_alpha`). Other PNGs (interlaced, 1/2/4-bit) raise `UnsupportedPNG` so callers can fall back
to decoding the whole image once; so do animated PNGs (`image.io.read_image` refuses them).
"""
import os
import pathlib
import struct
from typing import BinaryIO
import zlib

import numpy as np

from memsr_jax.image import alpha as alpha_lib
from memsr_jax.utils import safe_io

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IDAT_BYTES = 1 << 18


class UnsupportedPNG(ValueError):
  """A PNG this streaming reader does not decode (the caller should decode it whole)."""


def _chunk(f: BinaryIO, kind: bytes, data: bytes) -> None:
  f.write(struct.pack(">I", len(data)))
  f.write(kind)
  f.write(data)
  f.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF))


class PNGRowWriter:
  """Writes an RGB (or, with channels=4, RGBA) uint8 PNG row band by row band:
  `write_rows(rows [n, W, channels])`, then `close()`.

  Rows use PNG filter 1 (Sub): a cheap per-row difference that compresses photos far better than
  no filter. Use as a context manager; `close()` checks that exactly `height` rows were written.
  The data goes to a hidden temporary file renamed to `path` by a successful `close()`: a killed
  run never leaves a partial PNG under the final name.
  """

  def __init__(self, path, width: int, height: int, level: int = 6, channels: int = 3):
    if channels not in (3, 4):
      raise ValueError(f"PNGRowWriter writes RGB or RGBA (3 or 4 channels), not {channels}")
    self.path = pathlib.Path(path)
    self.width, self.height, self.channels = int(width), int(height), channels
    self.rows_written = 0
    self._tmp = safe_io.partial_path(self.path)
    self._file = open(self._tmp, "wb")
    self._zlib = zlib.compressobj(level)
    self._pending = []
    self._pending_bytes = 0
    self._file.write(PNG_SIGNATURE)
    # 8-bit depth, color type 2 (RGB) or 6 (RGBA), deflate, adaptive filtering, no interlace.
    color = 2 if channels == 3 else 6
    _chunk(self._file, b"IHDR",
           struct.pack(">IIBBBBB", self.width, self.height, 8, color, 0, 0, 0))

  def write_rows(self, rows: np.ndarray) -> None:
    rows = np.asarray(rows)
    c = self.channels
    if rows.dtype != np.uint8 or rows.ndim != 3 or rows.shape[1:] != (self.width, c):
      raise ValueError(f"expected uint8 rows [n, {self.width}, {c}], got {rows.dtype} "
                       f"{rows.shape}")
    if self.rows_written + rows.shape[0] > self.height:
      raise ValueError(f"too many rows: {self.rows_written + rows.shape[0]} > {self.height}")
    flat = rows.reshape(rows.shape[0], -1)
    for i in range(0, len(flat), 16):  # 16 rows at a time bounds the filter buffers
      chunk = flat[i:i + 16]
      data = np.empty((chunk.shape[0], chunk.shape[1] + 1), np.uint8)
      data[:, 0] = 1
      data[:, 1:] = chunk
      data[:, 1 + c:] -= chunk[:, :-c]  # uint8 wraps modulo 256, as the Sub filter wants
      self._push(self._zlib.compress(data.tobytes()))
    self.rows_written += rows.shape[0]

  def _push(self, data: bytes) -> None:
    if data:
      self._pending.append(data)
      self._pending_bytes += len(data)
    if self._pending_bytes >= _IDAT_BYTES:
      self._flush_idat()

  def _flush_idat(self) -> None:
    if self._pending_bytes:
      _chunk(self._file, b"IDAT", b"".join(self._pending))
      self._pending, self._pending_bytes = [], 0

  def close(self) -> None:
    if self._file.closed:
      return
    try:
      if self.rows_written != self.height:
        raise ValueError(f"PNG {self.path}: {self.rows_written} rows written, "
                         f"{self.height} expected")
      self._pending.append(self._zlib.flush())
      self._pending_bytes += len(self._pending[-1])
      self._flush_idat()
      _chunk(self._file, b"IEND", b"")
      self._file.close()
      os.replace(self._tmp, self.path)
    finally:
      self._file.close()
      self._tmp.unlink(missing_ok=True)

  def abort(self) -> None:
    """Closes and deletes the partial file (after an error); `path` is never touched."""
    if not self._file.closed:
      self._file.close()
    self._tmp.unlink(missing_ok=True)

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if exc_type is None:
      self.close()
    else:
      self.abort()


_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _unfilter(ftype: int, line: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
  """Reverses one scanline's PNG filter (uint8 arithmetic, modulo 256)."""
  if ftype == 0:
    return line
  if ftype == 2:
    return line + prev
  out = line.copy()
  if ftype == 1:  # Sub: a running sum per byte lane.
    lanes = out.reshape(-1, bpp)  # a scanline is a whole number of pixels
    np.cumsum(lanes, axis=0, dtype=np.uint8, out=lanes)
    return out
  # Average and Paeth depend on the reconstructed left neighbour: a loop over pixels (slow in
  # Python, so callers stream PNG input only when it does not fit in memory; our writer uses Sub).
  prev_i = prev.astype(np.int16)
  out_i = out.astype(np.int16)
  for x in range(0, len(out), bpp):
    up = prev_i[x:x + bpp]
    if x >= bpp:
      left, upleft = out_i[x - bpp:x], prev_i[x - bpp:x]
    else:
      left = upleft = np.zeros(bpp, np.int16)
    if ftype == 3:
      pred = (left + up) // 2
    elif ftype == 4:
      p = left + up - upleft
      pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
      pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    else:
      raise ValueError(f"corrupt PNG: filter type {ftype}")
    out_i[x:x + bpp] = (out_i[x:x + bpp] + pred) & 0xFF
  return out_i.astype(np.uint8)


class PNGRowReader:
  """Decodes a PNG forward, row by row: `read(n) -> uint8 [n, W, 3]` (RGB).

  Memory: one compressed chunk plus a few rows, however large the image.
  """

  def __init__(self, path, premultiply_alpha: bool = False):
    self.path = pathlib.Path(path)
    self.premultiply_alpha = premultiply_alpha
    self._file = open(self.path, "rb")
    try:
      self._read_header()
    except Exception:
      self._file.close()
      raise
    self.rows_read = 0
    self._zlib = zlib.decompressobj()
    self._buf = bytearray()
    self._prev = np.zeros(self._stride, np.uint8)
    self._idat_left = 0
    self._done_chunks = False

  def _read_header(self) -> None:
    if self._file.read(8) != PNG_SIGNATURE:
      raise UnsupportedPNG(f"{self.path} is not a PNG file")
    self.palette = None
    self._trns = None
    while True:
      length, kind = struct.unpack(">I4s", self._file.read(8))
      if kind == b"IHDR":
        data = self._file.read(length)
        self.width, self.height, self.depth, self.color, _, _, interlace = struct.unpack(
            ">IIBBBBB", data)
        self._file.read(4)
        if interlace or self.depth not in (8, 16) or self.color not in _CHANNELS:
          raise UnsupportedPNG(f"{self.path}: interlaced or {self.depth}-bit PNG is not streamed")
        if self.color == 3 and self.depth != 8:
          raise UnsupportedPNG(f"{self.path}: 16-bit palette PNG")
      elif kind == b"PLTE":
        self.palette = np.frombuffer(self._file.read(length), np.uint8).reshape(-1, 3)
        self._file.read(4)
      elif kind == b"tRNS":
        self._trns = self._file.read(length)
        self._file.read(4)
      elif kind == b"acTL":  # APNG: read_image refuses animations with its own message
        data = self._file.read(length)
        self._file.read(4)
        if len(data) >= 4 and struct.unpack(">I", data[:4])[0] > 1:
          raise UnsupportedPNG(f"{self.path}: animated PNG")
      elif kind == b"IDAT":
        self._first_idat = length
        break
      else:
        self._file.seek(length + 4, 1)
    if self.color == 3 and self.palette is None:
      raise UnsupportedPNG(f"{self.path}: palette PNG without PLTE")
    self._channels = _CHANNELS[self.color]
    self._bpp = self._channels * self.depth // 8
    self._stride = self.width * self._bpp
    self.has_alpha = self.color in (4, 6) or self._trns is not None
    if self.color == 3 and self._trns is not None:  # alpha per palette entry, 255 past the table
      self._palette_alpha = np.full(len(self.palette), 255, np.uint8)
      table = np.frombuffer(self._trns, np.uint8)[:len(self.palette)]
      self._palette_alpha[:len(table)] = table

  def _more_compressed(self) -> bytes:
    """The next piece of IDAT payload (b"" at the end)."""
    if self._done_chunks:
      return b""
    if self._idat_left == 0:
      if getattr(self, "_first_idat", None) is not None:
        self._idat_left, self._first_idat = self._first_idat, None
      else:
        self._file.read(4)  # CRC of the previous IDAT
        head = self._file.read(8)
        if len(head) < 8:
          self._done_chunks = True
          return b""
        length, kind = struct.unpack(">I4s", head)
        if kind != b"IDAT":
          self._done_chunks = True
          return b""
        self._idat_left = length
    piece = self._file.read(min(self._idat_left, 1 << 16))
    self._idat_left -= len(piece)
    return piece

  def _raw_row(self) -> np.ndarray:
    need = self._stride + 1
    while len(self._buf) < need:
      piece = self._more_compressed()
      if not piece:
        self._buf += self._zlib.flush()
        if len(self._buf) < need:
          raise ValueError(f"truncated PNG {self.path} at row {self.rows_read}")
        break
      self._buf += self._zlib.decompress(piece)
    line = np.frombuffer(bytes(self._buf[1:need]), np.uint8)
    ftype = self._buf[0]
    del self._buf[:need]
    row = _unfilter(ftype, line, self._prev, self._bpp)
    self._prev = row
    return row

  def _samples(self, raw: np.ndarray) -> np.ndarray:
    """A scanline's samples at their own depth [W, channels] (uint16 for 16-bit PNGs)."""
    if self.depth == 16:
      v = raw.reshape(-1, 2).astype(np.uint16)
      return ((v[:, 0] << 8) | v[:, 1]).reshape(self.width, self._channels)
    return raw.reshape(self.width, self._channels)

  def _to_rgb_alpha(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB uint8 [W, 3], alpha uint8 [W] or None) of one decoded scanline."""
    samples = self._samples(raw)
    if self.color == 3:
      index = samples[:, 0]
      alpha = self._palette_alpha[index] if self._trns is not None else None
      return self.palette[index], alpha
    px = samples
    if self.depth == 16:
      px = np.floor(samples.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    colour = px[:, :1] if self._channels in (1, 2) else px[:, :3]
    rgb = np.repeat(colour, 3, axis=1) if colour.shape[1] == 1 else colour
    if self.color in (4, 6):
      return rgb, px[:, -1]
    if self._trns is not None:  # a colour key: that exact sample value is transparent
      key = np.frombuffer(self._trns, ">u2").astype(samples.dtype)
      hidden = np.all(samples == key[:samples.shape[1]], axis=1)
      return rgb, np.where(hidden, 0, 255).astype(np.uint8)
    return rgb, None

  def _to_rgb(self, raw: np.ndarray) -> np.ndarray:
    rgb, alpha = self._to_rgb_alpha(raw)
    if self.premultiply_alpha and alpha is not None:
      return alpha_lib.premultiply(rgb, alpha)
    return rgb

  def _read(self, n: int, convert, shape) -> np.ndarray:
    n = min(n, self.height - self.rows_read)
    out = np.empty((n, self.width) + shape, np.uint8)
    try:
      for i in range(n):
        out[i] = convert(self._raw_row())
        self.rows_read += 1
    except (zlib.error, IndexError, struct.error) as e:  # damaged data: a per-image error
      raise ValueError(f"corrupt PNG {self.path} at row {self.rows_read} "
                       f"({type(e).__name__}: {e})") from e
    return out

  def read(self, n: int) -> np.ndarray:
    """The next `n` rows as RGB uint8 [n, W, 3] (premultiplied with `premultiply_alpha`)."""
    return self._read(n, self._to_rgb, (3,))

  def read_alpha(self, n: int) -> np.ndarray:
    """The next `n` rows' alpha, uint8 [n, W] (255 where the PNG has no transparency)."""
    def alpha(raw):
      a = self._to_rgb_alpha(raw)[1]
      return np.full(self.width, 255, np.uint8) if a is None else a
    return self._read(n, alpha, ())

  def close(self) -> None:
    self._file.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
