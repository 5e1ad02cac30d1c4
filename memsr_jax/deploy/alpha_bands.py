"""Alpha through the tiled upscaler, band by band.

The tiles see premultiplied colour (`image.alpha.premultiply`); the LR alpha plane, held whole
(`ArrayAlpha`) or streamed from the PNG by a second reader (`StreamAlpha`, a window of rows), is
upscaled with bicubic for exactly the output rows of each band, and `AlphaBandWriter` writes
un-premultiplied RGBA rows. Memory: a few LR alpha rows per band when streamed.
"""
import numpy as np

from memsr_jax.deploy import png_stream
from memsr_jax.image import alpha as alpha_lib


class ArrayAlpha:
  """LR alpha rows from an in-memory uint8 [H, W] plane."""

  def __init__(self, alpha: np.ndarray):
    self.alpha = alpha

  def rows(self, lo: int, hi: int) -> np.ndarray:
    return self.alpha[lo:hi]

  def close(self) -> None:
    pass


class StreamAlpha:
  """LR alpha rows decoded on demand by a PNG row reader of its own; `lo` never goes back."""

  def __init__(self, path):
    self.reader = png_stream.PNGRowReader(path)
    self._buf = np.zeros((0, self.reader.width), np.uint8)
    self._lo = 0

  def rows(self, lo: int, hi: int) -> np.ndarray:
    if lo < self._lo:
      raise ValueError("StreamAlpha: rows must be requested in increasing order")
    have = self._lo + len(self._buf)
    if hi > have:
      self._buf = np.concatenate([self._buf, self.reader.read_alpha(hi - have)])
    self._buf = self._buf[lo - self._lo:]
    self._lo = lo
    return self._buf[:hi - lo]

  def close(self) -> None:
    self.reader.close()


class AlphaBandWriter:
  """A row sink for `tiling.run_tiled`: premultiplied SR rows in, RGBA rows to `write_rows`."""

  def __init__(self, alpha_rows, lr_height: int, scale: int, write_rows):
    self.alpha_rows, self.lr_height, self.scale = alpha_rows, lr_height, scale
    self.write_rows = write_rows
    self.row = 0  # next output row

  def __call__(self, rows: np.ndarray) -> None:
    r0, r1 = self.row, self.row + len(rows)
    lo, hi = alpha_lib.alpha_rows_needed(self.lr_height, self.scale, r0, r1)
    band = alpha_lib.upscale_alpha_band(self.alpha_rows.rows(lo, hi), self.lr_height,
                                        self.scale, r0, r1, lo)
    self.write_rows(np.dstack([alpha_lib.unpremultiply(rows, band), band]))
    self.row = r1
