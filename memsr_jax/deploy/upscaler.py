"""File-to-file tiled super-resolution under a memory budget (behind `memsr_jax.upscale`).

`TiledUpscaler` drives any `tile_function.TileFunction`; `Upscaler` builds it from a Flax model +
params (the JAX backend), `ort_backend.OrtUpscaler` from an exported ONNX file.
"""
import dataclasses
import pathlib
import time
from typing import Callable

import jax.numpy as jnp

from memsr_jax.deploy import alpha_bands
from memsr_jax.deploy import budget as budget_lib
from memsr_jax.deploy import png_stream
from memsr_jax.deploy import tiling
from memsr_jax.deploy.tile_function import TileFunction
from memsr_jax.image import alpha as alpha_lib
from memsr_jax.image import io as image_io
from memsr_jax.utils import cli
from memsr_jax.utils import safe_io

STREAM_INPUT = ("auto", "always", "never")


@dataclasses.dataclass
class UpscaleResult:
  input: str
  output: str
  lr_size: tuple[int, int]   # (width, height)
  sr_size: tuple[int, int]
  mode: str
  tile: int
  n_tiles: int
  estimated_bytes: int
  input_streamed: bool
  seconds: float


@dataclasses.dataclass(frozen=True)
class UpscaleOptions:
  """Budget, tiling and output options, the same for every backend."""
  max_memory: int | str | None = None  # bytes or '256MB'; None: no budget
  tile: int | None = None              # LR tile side incl. halo; None: chosen from the budget
  overlap: int = 32                    # feather overlap in LR pixels
  stream_input: str = "auto"           # decode PNG input row by row: auto|always|never
  png_level: int = 6                   # zlib level of the output PNGs

  def __post_init__(self):
    if self.stream_input not in STREAM_INPUT:
      raise ValueError(f"stream_input must be auto|always|never, got {self.stream_input!r}")

  @property
  def budget(self) -> int | None:
    return None if self.max_memory is None else budget_lib.parse_memory(self.max_memory)


class TiledUpscaler:
  """A tile function ready to upscale files: one compiled tile function reused across images."""

  def __init__(self, fn: TileFunction, options: UpscaleOptions = UpscaleOptions()):
    self.fn, self.options = fn, options
    self.mode, self.scale = fn.mode, fn.scale
    self.halo = fn.receptive_radius if self.mode != "feather" else options.overlap
    self.budget = options.budget
    if options.tile and self.mode != "feather" and options.tile <= 2 * self.halo:
      raise cli.UsageError(
          f"--tile {options.tile} leaves no core inside the halo of {self.halo} LR pixels each "
          f"side ({self.mode} tiling): use --tile {2 * self.halo + 1} or more, or drop --tile")

  def _open_input(self, path: pathlib.Path):
    """(source, streamed, alpha rows or None): a row-streaming PNG reader when asked/needed, else
    the decoded image (upright: EXIF orientation applied). With alpha, the source gives
    premultiplied colour and the alpha rows come from `alpha_bands`."""
    stream_input = self.options.stream_input
    if (stream_input != "never" and path.suffix.lower() == ".png"
        and image_io.exif_orientation(path) == 1):  # the stream reader does not rotate
      try:
        reader = png_stream.PNGRowReader(path, premultiply_alpha=True)
      except Exception:  # not streamable (or not a PNG): read_image decides, with a clear error
        reader = None
      if reader is not None:
        big = (self.budget is not None and
               reader.width * reader.height * 3 > self.budget // 4)
        if stream_input == "always" or big:
          alpha = alpha_bands.StreamAlpha(path) if reader.has_alpha else None
          return tiling.StreamSource(reader), True, alpha
        reader.close()
    rgb, alpha = image_io.read_image_alpha(path)
    if alpha is None:
      return tiling.ArraySource(rgb), False, None
    return (tiling.ArraySource(alpha_lib.premultiply(rgb, alpha)), False,
            alpha_bands.ArrayAlpha(alpha))

  def _plan(self, h: int, w: int, streamed: bool) -> tuple[int, int]:
    """(tile, estimated bytes): the --tile asked for (checked against the budget), else the
    largest tile the budget allows."""
    tile = self.options.tile
    if not tile:
      return budget_lib.choose_tile(self.fn, self.halo, h, w, self.budget, not streamed)
    est = budget_lib.plan_bytes(self.fn, tile, self.halo, h, w, not streamed)
    if self.budget is not None and est > self.budget:
      raise budget_lib.BudgetTooSmall(
          f"--tile {tile} needs about {budget_lib.fmt_mb(est)}, over the budget "
          f"{budget_lib.fmt_mb(self.budget)}: drop --tile to let the budget choose it")
    return tile, est

  def upscale_file(self, src, dst, progress: Callable[[int, int], None] | None = None
                   ) -> UpscaleResult:
    src, dst = pathlib.Path(src), pathlib.Path(dst)
    if safe_io.same_file(src, dst):  # an input is never opened for writing
      raise ValueError(f"output {dst} is the input file itself: choose another output folder")
    t0 = time.perf_counter()
    source, streamed, alpha = self._open_input(src)
    s = self.scale
    try:
      h, w = source.height, source.width
      tile, est = self._plan(h, w, streamed)
      plan = tiling.TilePlan(self.mode, tile, self.halo, s)
      n_tiles = [0]

      def count(done, total):
        n_tiles[0] = total
        if progress:
          progress(done, total)

      with png_stream.PNGRowWriter(dst, w * s, h * s, level=self.options.png_level,
                                   channels=3 if alpha is None else 4) as writer:
        sink = (writer.write_rows if alpha is None
                else alpha_bands.AlphaBandWriter(alpha, h, s, writer.write_rows))
        tiling.run_tiled(source, self.fn, plan, sink, progress=count)
    finally:
      if streamed:
        source.reader.close()
      if alpha is not None:
        alpha.close()
    return UpscaleResult(str(src), str(dst), (w, h), (w * s, h * s), self.mode, tile,
                         n_tiles[0], est, streamed, time.perf_counter() - t0)


class Upscaler(TiledUpscaler):
  """The JAX backend: a Flax model + params (`tiling.TileFn`); `mode` None picks the model's
  best (`tiling.choose_mode`)."""

  def __init__(self, model, params, mode: str | None = None, dtype=jnp.float32,
               max_memory: int | str | None = None, tile: int | None = None,
               overlap: int = 32, stream_input: str = "auto", png_level: int = 6,
               precision: str | None = "highest"):
    options = UpscaleOptions(max_memory, tile, overlap, stream_input, png_level)
    super().__init__(tiling.make_tile_fn(model, params, mode, dtype, precision), options)
    self.model = model
