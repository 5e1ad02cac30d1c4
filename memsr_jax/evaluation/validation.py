"""Validation during training: the evaluation protocol's Y-PSNR on a benchmark set.

LR images come from `memsr_jax.data.folders` (MATLAB-exact bicubic when no LR files are shipped);
SR is clipped and rounded, the Y channel compared with a `scale`-pixel border crop
(`memsr_jax.image.metrics.psnr`, float64), all through the one evaluator
(`memsr_jax.evaluation.evaluator`), which spreads the images over the devices and, on several
processes, gathers the per-image values, so every process gets the same numbers.
"""
from typing import Callable

import numpy as np

from memsr_jax.data import folders
from memsr_jax.evaluation import evaluator
from memsr_jax.inference import predictor


def load_val_pairs(dataset: str, root: str, scale: int, max_images: int = 0
                   ) -> list[tuple[str, np.ndarray, np.ndarray]]:
  """[(name, lr uint8, hr uint8)] of a benchmark set (a name or a folder); a missing set or an
  unusable image is a `cli.UserError`."""
  try:
    pairs = folders.list_pairs(dataset, root or None, scale)
  except FileNotFoundError as e:
    raise folders.DatasetNotFoundError(f"validation set config.val.dataset={dataset!r} "
                            f"(config.val.root={root!r}) not found: {e}. Set config.val.root to "
                            "its folder, or config.val.dataset='' to train without "
                            "validation") from e
  if max_images:
    pairs = pairs[:max_images]
  out = []
  for p in pairs:
    lr, hr = folders.load_pair(p, scale)
    if min(hr.shape[:2]) <= 2 * scale:  # nothing would be left after the protocol's border crop
      raise folders.DatasetError(f"validation image {p.hr_path} ({hr.shape[0]}x{hr.shape[1]}) is "
                                 f"too small for the ×{scale} protocol; remove it from "
                                 f"config.val.dataset={dataset!r}")
    out.append((p.name, lr, hr))
  return out


class Validator:
  """Mean Y-PSNR of `predict(params, extras, lr)` over a fixed set (`evaluator.Evaluator`): the
  images are spread over `devices` (default: this process's), the numbers do not depend on how
  many there are."""

  def __init__(self, predict: Callable, pairs, scale: int, devices=None):
    self.evaluator = evaluator.Evaluator(pairs, scale, devices=devices)
    # HIGHEST: the protocol's numbers
    self._predict = predictor.params_predictor(lambda pe, lr: predict(pe[0], pe[1], lr))

  def __call__(self, params, extras) -> dict[str, float]:
    return dict(self.evaluator.run(self._predict, (params, extras), prefix="val_"))


def bicubic_psnr(pairs, scale: int) -> float:
  """Mean Y-PSNR of MATLAB bicubic upscaling over the same pairs, by the same protocol: the
  baseline a trained model's validation PSNR is compared with."""
  [(_, value)] = evaluator.Evaluator(pairs, scale).run(predictor.bicubic_predictor(scale))
  return value
