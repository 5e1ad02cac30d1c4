"""The SR benchmark protocol over a dataset (MATLAB-exact bicubic LR, Y channel, crop = scale),
and paper-style tables. The scoring itself is the one evaluator (`evaluator.py`).

Per image: HR → mod-crop → LR (shipped file or MATLAB bicubic) → SR = predict_fn(LR) → clip and
round to uint8 → Y-PSNR / Y-SSIM with `scale` pixels cropped from each border. Reported: the mean
over the images that evaluated; unreadable or too-small images are listed in "errors" and skipped.

Image sizes and compilation. Models are run on each whole LR image, unpadded: padding the right and
bottom borders changes a conv net's outputs there (zero padding inside the net no longer sees the
image edge), so bucketing sizes would break parity with published numbers. Instead `predict_fn` is
expected to be a `jax.jit`-ed function, whose cache compiles once per distinct LR shape and reuses
it across the images, datasets and repeated runs of one process. Benchmarks have few distinct LR
sizes (Set5: 5, Set14: 10 at each of ×2/×3/×4), so compiling costs a fraction of the forward
passes. Measured with official IMDN ×2 weights on the shared 2-core CPU machine (load ~8-12 from
other jobs, so ±30 %), same jitted function evaluated twice per set:
  Set5 ×2:  1st pass 28.9 s (compile + run), 2nd 12.3 s (run only) → ~3.3 s per shape compile;
  Set14 ×2: 1st pass 73.4 s, 2nd 58.8 s → ~1.5 s per shape.
"""
import pathlib
import time
from typing import Callable, Mapping, Optional

import numpy as np

from memsr_jax.data import folders
from memsr_jax.evaluation import evaluator
from memsr_jax.image import io as image_io
from memsr_jax.utils import console

PredictFn = Callable[[np.ndarray], np.ndarray]


def evaluate_dataset(predict_fn: PredictFn, dataset: str, scale: int, data_root: Optional[str], *,
                     save_dir: Optional[str] = None, y_only: bool = True,
                     use_lr_files: bool = True, show_progress: bool = False,
                     params=None) -> dict:
  """Runs the protocol on every image of `dataset` at ×`scale` (through `evaluator.Evaluator`).

  Args:
    predict_fn: float32 [1, h, w, 3] in 0..255 → float32 (or float64) [1, h·s, w·s, 3]; with
      `params`, a jitted `predict_fn(params, lr)` whose images are spread over the devices.
    dataset: a dataset name or folder (see memsr_jax.data.folders).
    scale: the SR scale; also the border crop of the metrics.
    data_root: where named datasets live.
    save_dir: when given, the uint8 SR images are written there as <name>.png.
    y_only: metrics on the Y channel (the protocol) or on RGB.
    use_lr_files: use LR images the dataset ships (else always bicubic from the HR).
    show_progress: per-image progress on stderr (utils.console; the caller prints the result).
    params: the first argument of `predict_fn`, placed once on each device.

  Returns:
    {"psnr", "ssim": means over evaluated images (nan when none), "n_images",
     "per_image": {name: {"psnr", "ssim"}}, "errors": {name: message}, "seconds"}.
  """
  pairs = folders.list_pairs(dataset, data_root, scale, use_lr_files=use_lr_files)
  ev = evaluator.Evaluator(pairs, scale, y_only=y_only, ssim=True)

  def save(name, sr):
    image_io.write_png(pathlib.Path(save_dir) / f"{name}.png", sr)

  start = time.perf_counter()
  with console.progress(len(pairs), desc=f"{pathlib.Path(dataset).name} ×{scale}", unit="image",
                        enabled=show_progress, final_line=False) as bar:
    scores = ev.scores(predict_fn, params, on_image=save if save_dir is not None else None,
                       on_done=bar.update)
  return {
      "psnr": scores.mean("psnr"),
      "ssim": scores.mean("ssim"),
      "n_images": len(scores.per_image),
      "per_image": scores.per_image,
      "errors": scores.errors,
      "seconds": time.perf_counter() - start,
  }


def summary(results: Mapping[str, Mapping[int, dict]]) -> dict:
  """{dataset: {scale: evaluate_dataset(...)}} → {dataset: {"x2": {"psnr", "ssim", "n_images"}}}."""
  return {ds: {f"x{s}": {k: r[k] for k in ("psnr", "ssim", "n_images")}
               for s, r in sorted(by_scale.items())}
          for ds, by_scale in results.items()}


def format_table(results: Mapping[str, Mapping[str, Mapping]]) -> str:
  """A paper-style table: one row per dataset, one "PSNR / SSIM" column per scale.

  Takes the `summary` form ({dataset: {"x2": {"psnr", "ssim", ...}}}).
  """
  scales = sorted({s for by_scale in results.values() for s in by_scale},
                  key=lambda s: int(str(s).lstrip("x")))
  header = ["dataset"] + [f"×{str(s).lstrip('x')} PSNR / SSIM" for s in scales]
  rows = [header]
  for ds, by_scale in results.items():
    row = [ds]
    for s in scales:
      r = by_scale.get(s)
      row.append("-" if r is None or r.get("n_images", 1) == 0
                 else f"{r['psnr']:.2f} / {r['ssim']:.4f}")
    rows.append(row)
  widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
  lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                     enumerate(zip(r, widths))) for r in rows]
  lines.insert(1, "  ".join("-" * w for w in widths))
  return "\n".join(lines)
