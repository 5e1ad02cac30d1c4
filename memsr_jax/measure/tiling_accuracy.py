"""How far tiled inference is from whole-image inference, on a real photo.

  python -m memsr_jax.tiling_error [--models edsr_baseline,swinir_s,imdn] [--imdn_weights
      imdn/IMDN_x2.pth] [--tile 96] [--overlaps 8,16,32] [--out err.json]

For each model: max / mean |tiled − whole| (0..255 float output) and PSNR(tiled, whole) on the
rounded uint8 outputs, for the feather mode at several overlaps and, where the model has a finite
receptive field, the exact mode; plus the cost of bf16 (PSNR of bf16 whole-image vs fp32). Input:
skimage's astronaut (512×512). Weights: IMDN's official ones when given, else random
(`source.load_source` of the preset, seed 0), which the report must say: random nets are less
smooth than trained ones, so their tiling errors are a pessimistic stand-in.
"""
import argparse

import jax.numpy as jnp
import numpy as np
from skimage import data

from memsr_jax.deploy import tiling
from memsr_jax.deploy.receptive_field import receptive_radius
from memsr_jax.image import metrics
from memsr_jax.inference.source import load_source
from memsr_jax.utils import cli
from memsr_jax.utils import console
from memsr_jax.utils import jsonio
from memsr_jax.utils import precision
from memsr_jax.utils import safe_io


def _rgb_psnr(a: np.ndarray, b: np.ndarray) -> float:
  """PSNR over all RGB values of two whole images (rounded 0..255 floats), no border crop."""
  return metrics.psnr(a.astype(np.uint8), b.astype(np.uint8), crop=0, y_only=False)


def measure(model, params, image, tile: int, overlaps, weights: str) -> dict:
  x = jnp.asarray(image, jnp.float32)[None]
  with precision.exact():  # the reference the exact modes are compared with
    whole = np.asarray(model.apply({"params": params}, x))[0]
  whole_u8 = np.clip(np.round(whole), 0, 255)
  row = {"weights": weights, "lr_size": list(image.shape[:2]), "tile": tile, "modes": []}
  runs = [("feather", ov) for ov in overlaps]
  if receptive_radius(model) is not None:
    runs.append((tiling.choose_mode(model), None))
  for mode, ov in runs:
    # Exact modes: cores of `tile` pixels plus the full halo on each side.
    side = tile if mode == "feather" else tile + 2 * receptive_radius(model)
    out = tiling.upscale_array(model, params, image, tile=side, mode=mode, overlap=ov or 0,
                               as_float=True)
    d = np.abs(out - whole)
    row["modes"].append({"mode": mode, "overlap": ov, "max_abs_diff": float(d.max()),
                         "mean_abs_diff": float(d.mean()),
                         "psnr_vs_whole_db": _rgb_psnr(np.clip(np.round(out), 0, 255), whole_u8)})
  fn = tiling.make_tile_fn(model, params, "feather", jnp.bfloat16, precision="bfloat16")
  bf16 = np.asarray(fn(np.asarray(x)))[0]
  row["bf16_psnr_vs_fp32_db"] = _rgb_psnr(np.clip(np.round(bf16), 0, 255), whole_u8)
  row["bf16_max_abs_diff"] = float(np.abs(bf16 - whole).max())
  return row


def parse_args(argv=None) -> argparse.Namespace:
  ap = cli.ArgumentParser(prog="python -m memsr_jax.tiling_error", description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--models", default="edsr_baseline,swinir_s,imdn,plain_s",
                  help="comma-separated zoo presets")
  ap.add_argument("--scale", type=cli.positive_int, default=2, help="the models' scale")
  ap.add_argument("--imdn_weights", default=None, help="official IMDN .pth (needs torch)")
  ap.add_argument("--tile", type=cli.positive_int, default=96, help="LR tile side")
  ap.add_argument("--overlaps", default="8,16,32", help="feather overlaps in LR pixels")
  ap.add_argument("--crop", type=cli.positive_int, default=512,
                  help="LR side (top-left crop of astronaut)")
  ap.add_argument("--out", default=None, help="JSON file of the results (PSNR of identical "
                  "outputs, inf, is written as null)")
  ap.add_argument("--overwrite", action="store_true", help="replace an existing --out")
  return ap.parse_args(argv)


def _overlaps(text: str) -> list[int]:
  try:
    overlaps = [int(o) for o in text.split(",")]
  except ValueError:
    overlaps = None
  if not overlaps or any(o < 0 for o in overlaps):
    raise cli.UsageError(f"--overlaps {text!r} is not a comma-separated list of integers >= 0, "
                         "e.g. 8,16,32")
  return overlaps


def main(argv=None) -> int:
  args = parse_args(argv)
  overlaps = _overlaps(args.overlaps)
  if args.out is not None:  # checked before any computing; never over a file unasked
    safe_io.check_output_file(args.out, "--out", overwrite=args.overwrite)
  image = data.astronaut()[:args.crop, :args.crop]
  results = {}
  for name in args.models.split(","):
    official = name == "imdn" and args.imdn_weights
    src = load_source(preset=name, scale=args.scale,
                      torch_weights=args.imdn_weights if official else None)
    weights = "official" if official else "random"
    console.say(f"{name} ×{args.scale} ({weights} weights) …")
    results[name] = measure(src.model, src.params, image, args.tile, overlaps, weights)
    print(jsonio.dumps({name: results[name]}, indent=None), flush=True)
  if args.out:
    safe_io.atomic_write_text(args.out, jsonio.dumps(results, indent=2) + "\n",
                              what="writing the results")
  return 0
