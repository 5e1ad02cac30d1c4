"""Training batch sources for the engine.

The real source is the input pipeline, `memsr_jax.data.pipeline.make_train_loader`. "synthetic"
gives reproducible random patches (smooth images, LR = box-downscaled HR) for tests and
benchmarks. Every source has `next()`, `get_state()` (JSON-able) and `set_state(state)`; resuming
sets the saved state.
"""
import pathlib

import numpy as np

from memsr_jax.data import folders
from memsr_jax.data import pipeline


class SyntheticSource:
  """Deterministic batches: global batch i depends only on (seed, i).

  Process p of P gets rows p, p + P, … of the global batch of `batch_size · P` (the layout of the
  input pipeline), so the global batch is the same whatever the process count.
  """

  def __init__(self, scale: int, lr_patch: int, batch_size: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    self.scale, self.lr_patch, self.batch_size = scale, lr_patch, batch_size
    self.seed, self.process_index, self.process_count = seed, process_index, process_count
    self.index = 0

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    return self.next()

  def next(self) -> dict:  # also usable as next(source)
    rng = np.random.default_rng([self.seed, self.index])
    self.index += 1
    s, p, b = self.scale, self.lr_patch, self.batch_size * self.process_count
    # Smooth random images: low-res noise upsampled by repetition then blurred a little.
    coarse = rng.uniform(0, 255, (b, p // 2 + 1, p // 2 + 1, 3))
    hr = np.repeat(np.repeat(coarse, 2 * s, axis=1), 2 * s, axis=2)[:, :p * s, :p * s]
    hr = 0.5 * hr + 0.25 * (np.roll(hr, 1, 1) + np.roll(hr, 1, 2))
    lr = hr.reshape(b, p, s, p, s, 3).mean(axis=(2, 4))
    rows = slice(self.process_index, None, self.process_count)
    return {"lr": np.round(lr[rows]).astype(np.uint8), "hr": np.round(hr[rows]).astype(np.uint8)}

  def get_state(self) -> dict:
    return {"index": self.index}

  def set_state(self, state: dict) -> None:
    self.index = int(state["index"])


def make_source(config, *, local_batch_size: int, process_index: int, process_count: int):
  """The batch source config.data names (per-process batches of `local_batch_size`)."""
  d = config.data
  if d.dataset == "synthetic":
    return SyntheticSource(config.scale, d.lr_patch, local_batch_size, config.seed,
                           process_index, process_count)
  if d.root and not pathlib.Path(d.root).expanduser().is_dir():
    raise folders.DatasetNotFoundError(
        f"config.data.root={d.root!r} is not a folder; point it at the folder of HR training "
        f"images for dataset {d.dataset!r}")
  try:
    return pipeline.make_train_loader(
        d.dataset, d.root or None, config.scale, d.lr_patch, local_batch_size, config.seed,
        process_index=process_index, process_count=process_count, num_workers=d.num_workers,
        cache=d.cache, skip_small=bool(d.get("skip_small", False)))
  except FileNotFoundError as e:
    raise folders.DatasetNotFoundError(
        f"training data for config.data.dataset={d.dataset!r} (config.data.root={d.root!r}) not "
        f"found: {e}") from e
