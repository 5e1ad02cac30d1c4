"""Validation during training: the evaluation protocol's Y-PSNR on a benchmark set.

LR images come from `memsr_jax.data.folders` (MATLAB-exact bicubic when no LR files are shipped);
SR is clipped and rounded, the Y channel compared with a `scale`-pixel border crop
(`memsr_jax.image.metrics.psnr`, float64). Every process computes the same numbers on its first
local device, so multi-host runs need no gather.
"""
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax import predictor
from memsr_jax.data import folders
from memsr_jax.image import metrics


def load_val_pairs(dataset: str, root: str, scale: int, max_images: int = 0
                   ) -> list[tuple[str, np.ndarray, np.ndarray]]:
  """[(name, lr uint8, hr uint8)] of a benchmark set (a name or a folder)."""
  try:
    pairs = folders.list_pairs(dataset, root or None, scale)
  except FileNotFoundError as e:
    raise FileNotFoundError(f"validation set config.val.dataset={dataset!r} "
                            f"(config.val.root={root!r}) not found: {e}. Set config.val.root to "
                            "its folder, or config.val.dataset='' to train without "
                            "validation") from e
  if max_images:
    pairs = pairs[:max_images]
  out = []
  for p in pairs:
    lr, hr = folders.load_pair(p, scale)
    out.append((p.name, lr, hr))
  return out


class Validator:
  """Runs `predict(params, extras, lr)` over a fixed set and returns the mean Y-PSNR."""

  def __init__(self, predict: Callable, pairs, scale: int):
    self.pairs, self.scale = pairs, scale
    self.device = jax.local_devices()[0]
    self._predict = predictor.params_predictor(predict)  # HIGHEST: the protocol's numbers

  def __call__(self, params, extras) -> dict[str, float]:
    """params, extras: arrays (e.g. replicated over a multi-process mesh: this process's copy)."""
    params, extras = jax.device_put(jax.tree.map(_local_copy, (params, extras)), self.device)
    psnrs = []
    for _, lr, hr in self.pairs:
      x = jax.device_put(jnp.asarray(lr[None], jnp.float32), self.device)
      sr = np.asarray(self._predict(params, extras, x))[0]
      psnrs.append(metrics.psnr(metrics.to_uint8(sr), hr, crop=self.scale))
    return {"val_psnr": float(np.mean(psnrs))}


def _local_copy(x):
  """A replicated array that spans other processes' devices → its copy on this process (no host
  transfer); anything else as it is."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return x.addressable_data(0)
  return x


def bicubic_psnr(pairs, scale: int) -> float:
  """Mean Y-PSNR of MATLAB bicubic upscaling over the same pairs, by the same protocol: the
  baseline a trained model's validation PSNR is compared with."""
  upscale = predictor.bicubic_predictor(scale)
  psnrs = [metrics.psnr(metrics.to_uint8(np.asarray(upscale(lr[None]))[0]), hr, crop=scale)
           for _, lr, hr in pairs]
  return float(np.mean(psnrs))
