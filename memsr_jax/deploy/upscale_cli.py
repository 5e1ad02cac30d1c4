"""Upscale an image or a folder of images with any model of the zoo, within a memory budget.

  python -m memsr_jax.upscale --checkpoint ckpt/ --input photo.jpg --output out/ --max_memory 256MB
  python -m memsr_jax.upscale --model plain_s --scale 4 --input folder/ --output out/  # random init
  python -m memsr_jax.upscale --onnx model.onnx --input x.png --output out/  # ONNX Runtime

Outputs are PNG (`<output>/<stem>.png`), written row band by row band. Plain nets (and EDSR-style
nets with a finite receptive field) are tiled exactly; other models use feathered overlaps
(docs/DEPLOY.md). Exit status: 0 when every image was written, 1 when some inputs were skipped
(listed at the end), 2 on a usage error (bad checkpoint, unwritable output, budget too small,
an output that would overwrite an input or another output), printed as one line (utils.cli).
"""
import argparse
import pathlib

from memsr_jax.deploy import budget as budget_lib
from memsr_jax.deploy import model_source
from memsr_jax.deploy import ort_backend
from memsr_jax.deploy import upscaler
from memsr_jax.image import io as image_io
from memsr_jax.utils import cli
from memsr_jax.utils import console
from memsr_jax.utils import numerics
from memsr_jax.utils import precision
from memsr_jax.utils import safe_io
from memsr_jax.utils.procmem import tighten_allocator


def parse_args(argv=None) -> argparse.Namespace:
  p = cli.ArgumentParser(prog="python -m memsr_jax.upscale", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
  cli.add_model_source_flags(p, sources=("checkpoint", "model", "onnx"),
                             model_help="zoo preset; RANDOM weights unless --torch_weights "
                             "(demos, benchmarks)")
  p.add_argument("--backend", choices=("jax", "onnxruntime"),
                 help="run the model in JAX (default), or an --onnx file in ONNX Runtime (CPU; "
                 "the default with --onnx)")
  p.add_argument("--input", required=True, help="an image file or a folder of images")
  p.add_argument("--output", required=True, help="output folder (created if missing)")
  p.add_argument("--max_memory", help="memory budget for tiling, with its unit, e.g. 256MB or "
                 "1.5GB (default: none)")
  p.add_argument("--tile", type=cli.positive_int,
                 help="LR tile side incl. halo (default: from the budget)")
  p.add_argument("--mode", choices=upscaler.tiling.MODES,
                 help="tiling mode (default: exact for plain/finite-RF nets, else feather)")
  p.add_argument("--overlap", type=int, default=32, help="feather overlap in LR pixels")
  p.add_argument("--precision", choices=precision.POLICIES, default="highest",
                 help="highest: full float32 convs on every backend (exact tiling; default); "
                 "default: the backend's fast matmuls (TF32 on GPUs); bfloat16: bf16 compute")
  p.add_argument("--bf16", action="store_true", help="same as --precision bfloat16")
  p.add_argument("--stream_input", choices=upscaler.STREAM_INPUT, default="auto",
                 help="decode PNG input row by row (auto: when it would not fit the budget)")
  p.add_argument("--png_level", type=int, default=6, help="zlib level of the output PNGs")
  p.add_argument("--seed", type=int, default=0, help="init seed of --model's random weights")
  p.add_argument("--overwrite", action="store_true",
                 help="replace output PNGs already in --output (default: refuse)")
  p.add_argument("--quiet", action="store_true", help="print only errors and skipped inputs")
  args = p.parse_args(argv)
  for flag, low, high in (("overlap", 0, None), ("png_level", 0, 9)):
    v = getattr(args, flag)
    if v < low or (high is not None and v > high):
      p.error(f"--{flag} must be {f'{low}..{high}' if high is not None else f'>= {low}'}, "
              f"got {v}")
  return args


def list_inputs(path: pathlib.Path) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
  """(images, other files): a folder's files with an image suffix (sidecars such as photo.xmp or
  README.txt are not inputs), or the one file given; a FIFO or device is refused."""
  path = safe_io.check_input(path, "--input")
  if not path.is_dir():
    return [path], []
  files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
  images = [p for p in files if p.suffix.lower() in image_io.IMAGE_EXTENSIONS]
  if not images:
    raise cli.UsageError(f"input folder {path} has no images "
                         f"({', '.join(image_io.IMAGE_EXTENSIONS)})")
  return images, [p for p in files if p not in images]


def _onnx_upscaler(args, options: upscaler.UpscaleOptions) -> ort_backend.OrtUpscaler:
  """The ONNX Runtime upscaler of --onnx; UsageError on a flag the ONNX backend cannot honour."""
  if args.backend == "jax":
    raise cli.UsageError("--onnx runs in ONNX Runtime: drop --backend jax, or pass --checkpoint "
                         "or --model to run in JAX")
  if args.bf16 or args.precision == "bfloat16":
    raise cli.UsageError("--bf16 is for the JAX backend; the ONNX file runs in float32")
  if args.torch_weights or args.set:
    raise cli.UsageError("--torch_weights and --set go with --model, not --onnx")
  up = ort_backend.OrtUpscaler(args.onnx, args.mode, options.max_memory, options.tile,
                               options.overlap, options.stream_input, options.png_level)
  if args.scale and args.scale != up.scale:
    raise cli.UsageError(f"{args.onnx} is a ×{up.scale} model "
                         f"({up.session.meta.get('model')}) but --scale {args.scale} was given")
  return up


def make_upscaler(args) -> tuple[upscaler.TiledUpscaler, str]:
  """(upscaler, the precision it runs at) for the parsed flags."""
  options = upscaler.UpscaleOptions(args.max_memory, args.tile, args.overlap, args.stream_input,
                                    args.png_level)
  if args.onnx:
    up = _onnx_upscaler(args, options)
    # An int8 file (export --quantize int8) says so in its metadata; its I/O stay float32.
    return up, ("onnxruntime int8" if "int8_quantization" in up.session.meta
                else "onnxruntime float32")
  if args.backend == "onnxruntime":
    hint = " (--model names a zoo preset)" if args.model and args.model.endswith(".onnx") else ""
    raise cli.UsageError(f"--backend onnxruntime runs an exported file: pass --onnx model.onnx"
                         f"{hint}; export a checkpoint with python -m memsr_jax.export")
  model, params, _ = model_source.load(
      checkpoint=args.checkpoint, model=args.model, scale=args.scale,
      torch_weights=args.torch_weights, param_key=args.param_key,
      overrides=cli.parse_set_overrides(args.set), seed=args.seed)
  policy = "bfloat16" if args.bf16 else args.precision
  up = upscaler.Upscaler(model, params, mode=args.mode, dtype=precision.compute_dtype(policy),
                         max_memory=options.max_memory, tile=options.tile,
                         overlap=options.overlap, stream_input=options.stream_input,
                         png_level=options.png_level, precision=policy)
  return up, policy


def _plan_outputs(args) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
  """(inputs, outputs), checked before any model is loaded: outputs never overwrite an input or
  each other, the output folder is usable, and partial files a killed run left are removed."""
  if args.max_memory:
    budget_lib.parse_memory(args.max_memory)
  in_path = safe_io.check_path_flag(args.input, "--input")
  out_dir = safe_io.check_path_flag(args.output, "--output")
  inputs, others = list_inputs(in_path)
  if others and not args.quiet:
    names = ", ".join(p.name for p in others[:3]) + (", …" if len(others) > 3 else "")
    console.say(f"note: {len(others)} file(s) without an image suffix ignored ({names})")
  outputs = safe_io.output_files(inputs, out_dir, ".png",
                                 input_dir=in_path if in_path.is_dir() else None)
  safe_io.check_not_in_checkpoint_tree(out_dir, "--output", folder=True)
  safe_io.check_output_dir(out_dir, "--output")
  existing = [dst for dst in outputs if dst.exists()]
  if existing and not args.overwrite:
    raise cli.UsageError(f"{existing[0]} exists ({len(existing)} of the {len(outputs)} outputs "
                         "do): pass --overwrite to replace them, or choose another --output")
  for dst in outputs:
    safe_io.remove_stale_partials(dst)
  return inputs, outputs


def main(argv=None) -> int:
  args = parse_args(argv)
  tighten_allocator()
  with safe_io.removed_if_left_empty(args.output or "."):  # a failed run leaves no empty folder
    return _upscale(args)


def _upscale(args) -> int:
  """Upscales every input → the exit status: 0, 1 (some inputs skipped) or 2 (a usage error, or a
  model whose output holds NaN or Inf: the batch stops, the PNG being written is not kept)."""
  say = (lambda *a: None) if args.quiet else console.say
  try:
    inputs, outputs = _plan_outputs(args)
    up, policy = make_upscaler(args)
  except (cli.UserError, ValueError, OSError) as e:  # incl. unreadable checkpoints
    return cli.fail(e)
  skipped = []
  for i, (src, dst) in enumerate(zip(inputs, outputs), 1):
    prefix = f"[{i}/{len(inputs)}] {src.name}"
    bar = _TileProgress(prefix, enabled=not args.quiet)
    try:
      with bar:
        r = up.upscale_file(src, dst, progress=bar)
    except (budget_lib.BudgetTooSmall, numerics.NonFiniteOutputError) as e:  # not this input's
      return cli.fail(e)
    except (image_io.ImageReadError, OSError, ValueError) as e:
      say(f"{prefix}: SKIPPED ({e})")
      skipped.append((src, str(e)))
      continue
    say(f"{prefix}: {r.lr_size[0]}×{r.lr_size[1]} → {r.sr_size[0]}×{r.sr_size[1]} "
        f"{dst}  ({r.mode}, {policy}, tile {r.tile}, {r.n_tiles} tiles, est. "
        f"{budget_lib.fmt_mb(r.estimated_bytes)}, {r.seconds:.1f} s)")
  if skipped:  # listed also with --quiet: the exit status alone does not say which
    console.say(f"{len(skipped)} of {len(inputs)} input(s) skipped:")
    for src, why in skipped:
      console.say(f"  {src}: {why}")
    return 1
  return 0


class _TileProgress:
  """The tiling driver's `progress(done, total)` callback as a console progress helper (opened
  at the first tile, when the count is known; the summary line of the image follows it)."""

  def __init__(self, desc: str, enabled: bool):
    self.desc, self.enabled, self.bar = desc, enabled, None

  def __call__(self, done: int, total: int) -> None:
    if self.bar is None:
      self.bar = console.progress(total, desc=self.desc, unit="tile", enabled=self.enabled,
                                  final_line=False)
    self.bar.update(max(0, done - self.bar.n))

  def __enter__(self) -> "_TileProgress":
    return self

  def __exit__(self, *exc) -> None:
    if self.bar is not None:
      self.bar.close()
