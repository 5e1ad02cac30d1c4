"""The one evaluator: a predictor in, `(name, value)` rows out.

Every "model quality over a set of images" number goes through `Evaluator`: the benchmark protocol
(`protocol.evaluate_dataset`, eval.py, the experiments), validation during training
(`validation.Validator`, `validation.bicubic_psnr`) and the level sweeps of nested models
(`methods/mssr/evaluate.sweep_levels`). Per image: SR = predict(LR) → clip and round to uint8 →
Y-PSNR (and SSIM) with a `scale`-pixel border crop, in float64 (`memsr_jax.image.metrics`, the one
PSNR); the rows are the means over the images that were scored.

Samples are `(name, lr, hr)` triples held in memory (validation sets) or `folders.ImagePair`s read
one at a time (the protocol: an unreadable or too-small image is recorded in `errors` and skipped).

A predictor is `predict(lr) -> sr` (float32 [1, h, w, 3] in 0..255; NumPy in, run where it runs:
bicubic, ONNX Runtime, a model with bound params), or, with `params` given, a jitted
`predict(params, lr)`. Then the images are spread over the devices: image i goes whole and unpadded
(padding would change a conv net's border outputs) to device i mod n, `params` are placed once on
each local device (a replicated array's own shard when there is one: no host copy), dispatch is
asynchronous so the devices run concurrently, and the results are read back in image order, so no
number depends on the device count. On several processes each scores its share of in-memory samples
and the per-image values are all-gathered bit-exactly (float64 sent as int32 pairs).
"""
import collections
import dataclasses
import math
from typing import Any, Callable, Iterator, Sequence

import jax
from jax.experimental import multihost_utils
import numpy as np

from memsr_jax.data import folders
from memsr_jax.image import metrics

PyTree = Any
Row = tuple[str, float]


@dataclasses.dataclass
class Scores:
  """Per-image values {name: {"psnr", ("ssim")}} in sample order, and {name: why not scored}."""
  per_image: dict[str, dict[str, float]]
  errors: dict[str, str]

  def mean(self, key: str) -> float:
    values = [v[key] for v in self.per_image.values()]
    return float(np.mean(values)) if values else math.nan


def place(tree: PyTree, device) -> PyTree:
  """`tree` on `device`: a jax.Array's own shard there when it has a full one, else a copy."""
  def put(x):
    if isinstance(x, jax.Array):
      for shard in x.addressable_shards:
        if shard.device == device and shard.data.shape == x.shape:
          return shard.data
    return jax.device_put(x, device)
  return jax.tree.map(put, tree)


class Evaluator:
  """Scores predictors on a fixed list of samples at ×`scale`.

  Args:
    samples: `(name, lr uint8, hr uint8)` triples or `folders.ImagePair`s (read when scored).
    scale: the SR scale; also the border crop of the metrics.
    y_only: metrics on the Y channel (the protocol) or on RGB.
    ssim: also compute SSIM (slower than PSNR).
    devices: the devices `predict(params, lr)` is spread over (default: this process's).
  """

  def __init__(self, samples: Sequence, scale: int, *, y_only: bool = True, ssim: bool = False,
               devices: Sequence | None = None):
    self.samples, self.scale, self.y_only, self.ssim = list(samples), scale, y_only, ssim
    self.devices = list(devices) if devices is not None else jax.local_devices()

  def run(self, predict: Callable, params: PyTree = None, prefix: str = "") -> list[Row]:
    """[(prefix + "psnr", mean), (prefix + "ssim", mean) with ssim]: the evaluator's rows."""
    scores = self.scores(predict, params)
    keys = ("psnr", "ssim") if self.ssim else ("psnr",)
    return [(prefix + k, scores.mean(k)) for k in keys]

  def scores(self, predict: Callable, params: PyTree = None, *,
             on_image: Callable[[str, np.ndarray], None] | None = None,
             on_done: Callable[[], None] | None = None) -> Scores:
    """Every sample's values; `on_image(name, sr uint8)` after each scored image, `on_done()`
    after each sample (scored or not)."""
    split = params is not None and jax.process_count() > 1 and not self._lazy()
    per_image, errors = {}, {}
    where = {self._name(s): getattr(s, "hr_path", None) for s in self.samples}
    for name, sr, hr in self._predictions(predict, params, split, errors, on_done):
      try:
        values = {"psnr": metrics.psnr(sr, hr, crop=self.scale, y_only=self.y_only)}
        if self.ssim:
          values["ssim"] = metrics.ssim(sr, hr, crop=self.scale, y_only=self.y_only)
      except ValueError as e:  # e.g. too small for the crop and the SSIM window
        errors[name] = f"{where[name]}: {e}" if where[name] else str(e)
      else:
        per_image[name] = values
        if on_image is not None:
          on_image(name, sr)
      if on_done is not None:
        on_done()
    if split:
      per_image, errors = self._gather(per_image, errors)
    return Scores(per_image, errors)

  def _lazy(self) -> bool:
    return any(isinstance(s, folders.ImagePair) for s in self.samples)

  def _load(self, sample) -> tuple[str, np.ndarray, np.ndarray]:
    if isinstance(sample, folders.ImagePair):
      lr, hr = folders.load_pair(sample, self.scale)
      return sample.name, lr, hr
    return sample

  def _name(self, sample) -> str:
    return sample.name if isinstance(sample, folders.ImagePair) else sample[0]

  def _predictions(self, predict, params, split: bool, errors: dict, on_done
                   ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, sr uint8, hr) in sample order; unreadable samples go to `errors`."""
    n_dev = len(self.devices)
    on_device = [place(params, d) for d in self.devices] if params is not None else None
    in_flight = collections.deque()
    mine = [i for i in range(len(self.samples))
            if not split or i % jax.process_count() == jax.process_index()]
    for j, i in enumerate(mine):
      try:
        name, lr, hr = self._load(self.samples[i])
      except (ValueError, OSError) as e:  # ImageReadError included; one bad file never ends a run
        errors[self._name(self.samples[i])] = str(e)
        if on_done is not None:
          on_done()
        continue
      x = lr[None].astype(np.float32)
      if on_device is None:
        sr = predict(x)
      else:
        device = self.devices[j % n_dev]
        sr = predict(on_device[j % n_dev], jax.device_put(x, device))
      in_flight.append((name, lr, hr, sr))
      if len(in_flight) >= n_dev:
        yield self._read(*in_flight.popleft())
    while in_flight:
      yield self._read(*in_flight.popleft())

  def _read(self, name, lr, hr, sr) -> tuple[str, np.ndarray, np.ndarray]:
    sr = np.asarray(sr, np.float64)
    expected = (1, lr.shape[0] * self.scale, lr.shape[1] * self.scale, 3)
    if sr.shape != expected:
      raise ValueError(f"the predictor returned shape {sr.shape} for LR {lr.shape}; expected "
                       f"{expected} (is the model built for ×{self.scale}?)")
    return name, metrics.to_uint8(sr[0]), hr

  def _gather(self, per_image: dict, errors: dict) -> tuple[dict, dict]:
    """Every process's per-image values on every process, in sample order (bit-exact)."""
    keys = ("psnr", "ssim") if self.ssim else ("psnr",)
    names = [self._name(s) for s in self.samples]
    local = np.full((len(names), len(keys)), np.nan)
    for i, name in enumerate(names):
      if name in per_image:
        local[i] = [per_image[name][k] for k in keys]
    every = np.asarray(multihost_utils.process_allgather(local.view(np.int32)))
    every = every.view(np.float64).reshape(jax.process_count(), len(names), len(keys))
    gathered, all_errors = {}, dict(errors)
    for i, name in enumerate(names):
      row = every[i % jax.process_count(), i]
      if np.isnan(row).any():
        all_errors.setdefault(name, "could not be scored (on another process)")
      else:
        gathered[name] = dict(zip(keys, map(float, row)))
    return gathered, all_errors
