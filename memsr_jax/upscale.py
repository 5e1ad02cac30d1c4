"""Upscale an image or a folder of images with any model of the zoo, within a memory budget.

  python -m memsr_jax.upscale --checkpoint ckpt/ --input photo.jpg --output out/ --max_memory 256MB
  python -m memsr_jax.upscale --model plain_s --scale 4 --input folder/ --output out/  # random init
  python -m memsr_jax.upscale --backend onnxruntime --model model.onnx --input x.png --output out/

Outputs are PNG (`<output>/<stem>.png`), written row band by row band. Plain nets (and EDSR-style
nets with a finite receptive field) are tiled exactly; other models use feathered overlaps
(docs/DEPLOY.md). Exit status: 0 when every image was written, 1 when some inputs were skipped
(listed at the end), 2 on a usage error (bad checkpoint, unwritable output, budget too small,
an output that would overwrite an input or another output), printed as one line (memsr_jax.cli).
"""
import argparse
import pathlib
import sys

from memsr_jax import cli
from memsr_jax import precision
from memsr_jax import safe_io
from memsr_jax.deploy import budget as budget_lib
from memsr_jax.deploy import upscaler
from memsr_jax.image import io as image_io
from memsr_jax.models import registry
from memsr_jax.models.registry import random_params
from memsr_jax.procmem import tighten_allocator

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class UsageError(cli.UserError, ValueError):
  """Bad command-line input: printed as one clear line, exit status 2."""


def parse_args(argv=None) -> argparse.Namespace:
  p = cli.ArgumentParser(prog="python -m memsr_jax.upscale", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument("--checkpoint", help="model checkpoint (memsr_jax/checkpoints format)")
  src.add_argument("--model", help="a registry preset with RANDOM weights (demos, benchmarks); "
                   "with --backend onnxruntime: an .onnx file from python -m memsr_jax.export")
  p.add_argument("--backend", choices=("jax", "onnxruntime"), default="jax",
                 help="run the model in JAX, or an exported ONNX file in ONNX Runtime (CPU)")
  p.add_argument("--input", required=True, help="an image file or a folder of images")
  p.add_argument("--output", required=True, help="output folder (created if missing)")
  p.add_argument("--scale", type=int, help="expected scale; must match the checkpoint's")
  p.add_argument("--max_memory", help="memory budget for tiling, e.g. 256MB (default: none)")
  p.add_argument("--tile", type=int, help="LR tile side incl. halo (default: from the budget)")
  p.add_argument("--mode", choices=("masked", "exact", "feather"),
                 help="tiling mode (default: exact for plain/finite-RF nets, else feather)")
  p.add_argument("--overlap", type=int, default=32, help="feather overlap in LR pixels")
  p.add_argument("--precision", choices=precision.POLICIES, default="highest",
                 help="highest: full float32 convs on every backend (exact tiling; default); "
                 "default: the backend's fast matmuls (TF32 on GPUs); bfloat16: bf16 compute")
  p.add_argument("--bf16", action="store_true", help="same as --precision bfloat16")
  p.add_argument("--stream_input", choices=("auto", "always", "never"), default="auto",
                 help="decode PNG input row by row (auto: when it would not fit the budget)")
  p.add_argument("--png_level", type=int, default=6, help="zlib level of the output PNGs")
  p.add_argument("--seed", type=int, default=0, help="init seed for --model")
  p.add_argument("--quiet", action="store_true")
  args = p.parse_args(argv)
  for flag, low, high in (("tile", 1, None), ("scale", 1, None), ("overlap", 0, None),
                          ("png_level", 0, 9)):
    v = getattr(args, flag)
    if v is not None and (v < low or (high is not None and v > high)):
      p.error(f"--{flag} must be {f'{low}..{high}' if high is not None else f'>= {low}'}, "
              f"got {v}")
  return args


def load_model(args):
  """(model, params) from --checkpoint or --model; checks --scale against the checkpoint."""
  if args.model:
    model = registry.build_model(args.model, **({"scale": args.scale} if args.scale else {}))
    return model, random_params(model, args.seed)
  path = pathlib.Path(args.checkpoint)
  if not path.exists():
    raise UsageError(f"checkpoint {path} does not exist")
  # Local: Orbax adds ~25 MB of RSS, which --model runs (budget benchmarks) should not pay.
  from memsr_jax import checkpoints  # pylint: disable=g-import-not-at-top
  model, params, meta = checkpoints.load_model_checkpoint(path)
  ckpt_scale = int(meta.get("scale", getattr(model, "scale", 0)))
  if args.scale and args.scale != ckpt_scale:
    raise UsageError(f"checkpoint {path} is a ×{ckpt_scale} model ({meta.get('model')}) but "
                     f"--scale {args.scale} was given: use a ×{args.scale} checkpoint or drop "
                     "--scale")
  return model, params


def list_inputs(path: pathlib.Path) -> list[pathlib.Path]:
  if path.is_dir():
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
      raise UsageError(f"input folder {path} has no files")
    return files
  if not path.exists():
    raise UsageError(f"input {path} does not exist")
  return [path]


def main(argv=None) -> int:
  args = parse_args(argv)
  tighten_allocator()
  say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
  try:
    inputs = list_inputs(pathlib.Path(args.input))
    out_dir = pathlib.Path(args.output)
    in_path = pathlib.Path(args.input)
    outputs = safe_io.output_files(inputs, out_dir, ".png",  # never over an input, no clashes
                                   input_dir=in_path if in_path.is_dir() else None)
    safe_io.check_output_dir(out_dir, "--output")
    for dst in outputs:  # what a killed earlier run left behind
      safe_io.remove_stale_partials(dst)
    budget = budget_lib.parse_memory(args.max_memory) if args.max_memory else None
    if args.backend == "onnxruntime":
      from memsr_jax.deploy import ort_backend
      up = ort_backend.upscaler_from_args(args)
      policy = "onnxruntime float32"
    else:
      model, params = load_model(args)
      policy = "bfloat16" if args.bf16 else args.precision
      up = upscaler.Upscaler(model, params, mode=args.mode,
                             dtype=precision.compute_dtype(policy), max_memory=budget,
                             tile=args.tile, overlap=args.overlap, stream_input=args.stream_input,
                             png_level=args.png_level, precision=policy)
  except (cli.UserError, ValueError, OSError) as e:  # incl. unreadable checkpoints
    return cli.fail(e)
  skipped = []
  for i, (src, dst) in enumerate(zip(inputs, outputs), 1):
    prefix = f"[{i}/{len(inputs)}] {src.name}"

    def progress(done, total, prefix=prefix):
      if not args.quiet and (done == total or done % max(1, total // 20) == 0):
        print(f"\r{prefix}: tile {done}/{total}", end="", file=sys.stderr, flush=True)

    try:
      r = up.upscale_file(src, dst, progress=progress)
    except budget_lib.BudgetTooSmall as e:
      say("")
      return cli.fail(e)
    except (image_io.ImageReadError, OSError, ValueError) as e:
      say(f"\n{prefix}: SKIPPED ({e})")
      skipped.append((src, str(e)))
      continue
    say(f"\r{prefix}: {r.lr_size[0]}×{r.lr_size[1]} → {r.sr_size[0]}×{r.sr_size[1]} "
        f"{dst}  ({r.mode}, {policy}, tile {r.tile}, {r.n_tiles} tiles, est. "
        f"{budget_lib.fmt_mb(r.estimated_bytes)}, {r.seconds:.1f} s)")
  if skipped:
    say(f"{len(skipped)} of {len(inputs)} input(s) skipped:")
    for src, why in skipped:
      say(f"  {src}: {why}")
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(cli.run(main))
