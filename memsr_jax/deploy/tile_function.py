"""What the tiling driver needs of a backend: a function that super-resolves one tile.

The JAX backend (`tiling.TileFn`, a Flax model + params) and the ONNX Runtime backend
(`ort_backend.OrtTileFn`, an exported file) both implement `TileFunction`; the band loop
(`tiling.run_tiled`), the tile-size search (`budget.choose_tile`) and the file-to-file driver
(`upscaler.TiledUpscaler`) see only this interface.
"""
from typing import Protocol

import numpy as np

MODES = ("masked", "exact", "feather")


class TileFunction(Protocol):
  """`fn(x[, mask]) -> sr` on one [1, h, w, 3] float32 tile (0..255 in and out)."""

  scale: int                    # HR pixels per LR pixel along each axis
  mode: str                     # the tiling mode the function was built for (MODES)
  receptive_radius: int | None  # LR pixels each side an output pixel sees; None: unbounded
  # RSS the backend keeps beyond one call's buffers (compiled code, session, weights), in bytes;
  # None until measured (`budget.plan_bytes` measures it across the first compile).
  compile_rss: int | None

  def compiled(self, h: int, w: int):
    """Makes the function ready for [1, h, w, 3] tiles (compiles where the backend compiles)."""

  def memory_bytes(self, h: int, w: int) -> int:
    """Peak bytes of one call on an [1, h, w, 3] tile."""

  def forget(self, keep: int | None = None) -> None:
    """Drops per-shape state for tile sides > `keep` (all of it when None)."""

  def __call__(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The SR tile [1, h*s, w*s, 3]; `mask` [1, h, w, 1] (validity) in mode "masked" only."""


def pick_mode(mode: str | None, radius: int | None, masked_ok: bool, what: str) -> str:
  """The tiling mode for a model with receptive radius `radius` (None: unbounded) that takes a
  validity mask when `masked_ok`: `mode` checked, or the exact mode the model allows (masked,
  else exact) and feather when none does. ValueError names `what` on an impossible choice."""
  if mode is None:
    if radius is None:
      return "feather"
    return "masked" if masked_ok else "exact"
  if mode not in MODES:
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
  if mode != "feather" and radius is None:
    raise ValueError(f"{what} has no finite receptive field: use mode 'feather'")
  if mode == "masked" and not masked_ok:
    raise ValueError(f"mode 'masked' needs a model that takes a validity mask (a plain net in "
                     f"JAX); {what} is tiled exactly with mode 'exact'")
  return mode
