"""Export a model to ONNX, verified in ONNX Runtime against JAX before the file is written.

  python -m memsr_jax.export --checkpoint runs/quickstart --format onnx --output model.onnx
  python -m memsr_jax.export --model imdn --scale 2 --torch_weights IMDN_x2.pth \\
      --output imdn_x2.onnx

The graph is traced from the JAX model itself by jax2onnx (no second implementation to keep in
sync): float32 input 0..255, batch/height/width symbolic, layout NHWC (or --layout NCHW). Scale,
model, layout, training step, receptive radius and versions go into the model's metadata_props;
`memsr_jax.upscale --onnx` reads them. Every export runs ONNX Runtime and JAX (conv precision
HIGHEST) on a real photo and refuses to write the file when max |diff| > --tolerance.
With --quantize int8 the verified float model is quantized by ONNX Runtime (deploy/quantize.py),
calibrated on crops of --calibration's images, and written only when its Y-PSNR against the float
model on held-out images of that folder reaches --min_psnr (docs/DEPLOY.md, int8).
Prints a short summary on stdout (the file, its size, the checks it passed); the whole report
(metadata, checksums, per-image int8 figures) goes to --json FILE when asked.
Exit status: 0 written, 1 verification failed, 2 usage error (one line on stderr).
"""
import argparse
import dataclasses
import json
import math
import pathlib
import sys

from memsr_jax.deploy import model_source
from memsr_jax.deploy import onnx_export
from memsr_jax.deploy import qat_export
from memsr_jax.deploy import quantize
from memsr_jax.utils import cli
from memsr_jax.utils import safe_io


def parse_args(argv=None) -> argparse.Namespace:
  p = cli.ArgumentParser(prog="python -m memsr_jax.export", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
  cli.add_model_source_flags(p, model_help="zoo preset whose PyTorch weights --torch_weights "
                             "imports")
  p.add_argument("--format", default="onnx", help="output format: onnx (the only one; see "
                 "docs/DEPLOY.md on LiteRT)")
  p.add_argument("--output", required=True, help="the .onnx file to write")
  p.add_argument("--overwrite", action="store_true", help="replace an existing --output (and "
                 "--json)")
  p.add_argument("--json", metavar="FILE", help="also write the export's full report (metadata, "
                 "checksums, verification figures) as JSON to FILE")
  p.add_argument("--layout", default="NHWC", choices=onnx_export.LAYOUTS,
                 help="input/output tensor layout")
  p.add_argument("--verify_image", help="LR image for the ONNX Runtime check (default: a crop "
                 "of skimage's astronaut)")
  p.add_argument("--tolerance", type=float, default=onnx_export.TOLERANCE,
                 help="max |ORT − JAX| allowed on 0..255")
  p.add_argument("--quantize", default="none", choices=("none", "int8"),
                 help="int8: static QDQ quantization by ONNX Runtime, calibrated on --calibration "
                 "and verified against the float model on held-out images (docs/DEPLOY.md)")
  p.add_argument("--calibration", metavar="DIR", help="image folder to calibrate int8 on (e.g. "
                 "T91); images that give no crop are the held-out verification images")
  p.add_argument("--calibration_images", type=cli.positive_int, metavar="N",
                 default=quantize.Int8Options().crops,
                 help="calibration crops, one per image (default %(default)s)")
  p.add_argument("--min_psnr", type=float, default=None,
                 help="int8: least Y-PSNR (dB) against the float model on the held-out images; "
                 f"below it nothing is written (default {quantize.MIN_PSNR:g}; for a "
                 "quantization-aware-trained checkpoint measured only, unless given: its int8 "
                 "model is checked against the int8 simulator it was trained with)")
  args = p.parse_args(argv)
  if not math.isfinite(args.tolerance):
    p.error(f"--tolerance must be a finite number, got {args.tolerance}")
  return args


def check_output(args) -> pathlib.Path:
  """--output checked before any computing: never an input (also not with --overwrite), never
  inside a checkpoint tree, a writable file path; an existing file only with --overwrite."""
  weights = args.torch_weights
  if weights and args.scale:
    weights = weights.replace("{scale}", str(args.scale))
  safe_io.check_path_flag(args.output, "--output")
  safe_io.check_not_in_checkpoint_tree(args.output, "--output")
  safe_io.check_apart(args.output, {"--checkpoint": args.checkpoint, "--torch_weights": weights,
                                    "--verify_image": args.verify_image,
                                    "--calibration": args.calibration}, "--output")
  return safe_io.check_output_file(args.output, "--output", overwrite=args.overwrite)


def _int8(args, scale: int, model=None, params=None, ranges=None):
  """The quantize_fn of export_onnx for --quantize int8 (None without it); with `ranges` (a QAT
  checkpoint's) they are pinned instead of calibrated."""
  if args.quantize != "int8":
    return None
  if ranges is not None:
    return lambda fp32: qat_export.quantize_qat(fp32, model, params, ranges, scale=scale,
                                                min_psnr=_min_psnr(args, True))
  opts = dataclasses.replace(quantize.Int8Options(), crops=args.calibration_images)
  return lambda fp32: quantize.quantize_int8(fp32, args.calibration, opts, scale=scale,
                                             min_psnr=_min_psnr(args, False))


def _min_psnr(args, qat: bool) -> float | None:
  """--min_psnr, else the default: MIN_PSNR for calibrated files, None (measured only) for QAT."""
  if args.min_psnr is not None:
    return args.min_psnr
  return None if qat else quantize.MIN_PSNR


def _export(args) -> dict:
  """Checks the flags, loads the model and exports it → the report of `export_onnx`."""
  if args.format.lower() != "onnx":
    raise onnx_export.ExportError(f"--format {args.format} is not supported: only onnx (LiteRT "
                                  "needs TensorFlow's converter; see docs/DEPLOY.md)")
  onnx_export.require("jax2onnx"), onnx_export.require("onnxruntime")
  output = check_output(args)
  if args.model and not (args.torch_weights and args.scale):
    raise onnx_export.ExportError("give --checkpoint DIR, or --model NAME --scale S "
                                  "--torch_weights FILE.pth")
  ranges = qat_export.checkpoint_ranges(args.checkpoint) if args.quantize == "int8" else None
  if ranges is not None and args.calibration:
    raise cli.UsageError("--checkpoint is quantization-aware trained: its int8 ranges are pinned, "
                         "drop --calibration")
  if args.quantize == "int8" and ranges is None:
    if not args.calibration:
      raise cli.UsageError("--quantize int8 needs --calibration DIR (an image folder, e.g. T91), "
                           "or a quantization-aware-trained --checkpoint")
    quantize.list_images(args.calibration)  # a missing or empty folder fails before the export
  elif args.calibration:
    raise cli.UsageError("--calibration is for --quantize int8")
  model, params, info = model_source.load(
      checkpoint=args.checkpoint, model=args.model, scale=args.scale,
      torch_weights=args.torch_weights, param_key=args.param_key,
      overrides=cli.parse_set_overrides(args.set))
  image = onnx_export.verify_image(args.verify_image) if args.verify_image else None
  return onnx_export.export_onnx(model, params, info, output, layout=args.layout, image=image,
                                 tolerance=args.tolerance, overwrite=args.overwrite,
                                 quantize_fn=_int8(args, int(model.scale), model, params,
                                                   ranges))


def _check_json(args) -> pathlib.Path | None:
  if not args.json:
    return None
  if safe_io.same_file(args.json, args.output) or args.json == args.output:
    raise cli.UsageError("--json and --output must be different files")
  return safe_io.check_output_file(args.json, "--json", overwrite=args.overwrite)


def summary(report: dict, args) -> list[str]:
  """The lines export prints: what was written and the checks it passed (no absolute paths)."""
  lines = [f"wrote {args.output} ({report['bytes'] / 1e6:.1f} MB, {report['memsr_jax.model']} "
           f"×{report['memsr_jax.scale']}, {args.layout}); ONNX Runtime vs JAX (HIGHEST) "
           f"max |diff| {report['max_abs_diff']:.3g} on 0..255 (≤ {args.tolerance:g})"]
  if "int8" in report:
    v = report["int8"]["verification"]
    lines.append(f"int8: {v['psnr_y_vs_fp32']} dB Y-PSNR against the float model on "
                 f"{len(v['per_image'])} held-out images"
                 + ("" if v["min_psnr"] is None else f" (≥ {v['min_psnr']:g})"))
    if "simulator" in report["int8"]:
      sim = report["int8"]["simulator"]
      lines.append(f"int8: {sim['psnr_rgb_vs_simulator']} dB PSNR against the int8 simulator "
                   f"(≥ {sim['min_psnr']:g})")
  if args.json:
    lines.append(f"report: {args.json}")
  return lines


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    json_path = _check_json(args)
    report = _export(args)
  except (onnx_export.VerificationError, quantize.Int8VerificationError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except (cli.UserError, ValueError, OSError) as e:
    return cli.fail(e)
  if json_path is not None:
    safe_io.atomic_write_text(json_path, json.dumps(
        {k: v for k, v in report.items() if k != "memsr_jax.model_kwargs"}, indent=1))
  print("\n".join(summary(report, args)))
  return 0
