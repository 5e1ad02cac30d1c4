"""File-to-file tiled super-resolution under a memory budget (behind `memsr_jax.upscale`)."""
import dataclasses
import pathlib
import time
from typing import Callable

import jax.numpy as jnp

from memsr_jax.deploy import budget as budget_lib
from memsr_jax.deploy import png_stream
from memsr_jax.deploy import tiling
from memsr_jax.deploy.receptive_field import receptive_radius
from memsr_jax.image import io as image_io
from memsr_jax.models.plain import PlainNet


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


class Upscaler:
  """A model + params ready to upscale files: one compiled tile function reused across images."""

  def __init__(self, model, params, mode: str | None = None, dtype=jnp.float32,
               max_memory: int | str | None = None, tile: int | None = None,
               overlap: int = 32, stream_input: str = "auto", png_level: int = 6,
               precision: str | None = "highest"):
    self.model = model
    self.mode = mode or tiling.choose_mode(model)
    if self.mode not in tiling.MODES:
      raise ValueError(f"mode must be one of {tiling.MODES}, got {self.mode!r}")
    if self.mode != "feather" and receptive_radius(model) is None:
      raise ValueError(f"{type(model).__name__} has no finite receptive field: use mode='feather'")
    if self.mode == "masked" and not isinstance(model, PlainNet):
      raise ValueError("mode 'masked' is for plain nets only")
    self._set_options(receptive_radius(model), overlap, max_memory, tile, stream_input,
                      png_level)
    self.fn = tiling.make_tile_fn(model, params, self.mode, dtype, precision)

  def _set_options(self, radius, overlap, max_memory, tile, stream_input, png_level) -> None:
    """Halo, budget, tiling and output options: the same for every backend's tile function."""
    self.halo = radius if self.mode != "feather" else overlap
    self.budget = None if max_memory is None else budget_lib.parse_memory(max_memory)
    self.tile = tile
    if stream_input not in ("auto", "always", "never"):
      raise ValueError(f"stream_input must be auto|always|never, got {stream_input!r}")
    self.stream_input = stream_input
    self.png_level = png_level

  def _open_input(self, path: pathlib.Path):
    """(source, streamed): a row-streaming PNG reader when asked/needed, else the decoded image."""
    if self.stream_input != "never" and path.suffix.lower() == ".png":
      try:
        reader = png_stream.PNGRowReader(path)
      except Exception:  # not streamable (or not a PNG): read_image decides, with a clear error
        reader = None
      if reader is not None:
        big = (self.budget is not None and
               reader.width * reader.height * 3 > self.budget // 4)
        if self.stream_input == "always" or big:
          return tiling.StreamSource(reader), True
        reader.close()
    return tiling.ArraySource(image_io.read_image(path)), False

  def upscale_file(self, src, dst, progress: Callable[[int, int], None] | None = None
                   ) -> UpscaleResult:
    src, dst = pathlib.Path(src), pathlib.Path(dst)
    from memsr_jax import safe_io
    if safe_io.same_file(src, dst):  # an input is never opened for writing
      raise ValueError(f"output {dst} is the input file itself: choose another output folder")
    t0 = time.perf_counter()
    source, streamed = self._open_input(src)
    try:
      h, w = source.height, source.width
      if self.tile:
        tile = self.tile
        est = budget_lib.plan_bytes(self.fn, tile, self.halo, h, w, not streamed)
        if self.budget is not None and est > self.budget:
          raise budget_lib.BudgetTooSmall(
              f"--tile {tile} needs about {budget_lib.fmt_mb(est)}, over the budget "
              f"{budget_lib.fmt_mb(self.budget)}: drop --tile to let the budget choose it")
      else:
        tile, est = budget_lib.choose_tile(self.fn, self.halo, h, w, self.budget, not streamed)
      plan = tiling.TilePlan(self.mode, tile, self.halo, self.model.scale)
      s = self.model.scale
      n_tiles = [0]

      def count(done, total):
        n_tiles[0] = total
        if progress:
          progress(done, total)

      with png_stream.PNGRowWriter(dst, w * s, h * s, level=self.png_level) as writer:
        tiling.run_tiled(source, self.fn, plan, writer.write_rows, progress=count)
    finally:
      if streamed:
        source.reader.close()
    return UpscaleResult(str(src), str(dst), (w, h), (w * s, h * s), self.mode, tile,
                         n_tiles[0], est, streamed, time.perf_counter() - t0)
