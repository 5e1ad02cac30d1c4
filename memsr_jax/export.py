"""Export a model to ONNX, verified in ONNX Runtime against JAX before the file is written.

  python -m memsr_jax.export --checkpoint runs/quickstart --format onnx --output model.onnx
  python -m memsr_jax.export --model imdn --scale 2 --torch_weights IMDN_x2.pth \
      --output imdn_x2.onnx

The graph is traced from the JAX model itself by jax2onnx (no second implementation to keep in
sync): float32 input 0..255, batch/height/width symbolic, layout NHWC (or --layout NCHW). Scale,
model, layout, training step, receptive radius and versions go into the model's metadata_props;
`memsr_jax.upscale --backend onnxruntime` reads them. Every export runs ONNX Runtime and JAX (conv
precision HIGHEST) on a real photo and refuses to write the file when max |diff| > --tolerance.
Exit status: 0 written, 1 verification failed, 2 usage error (one line on stderr).
"""
import argparse
import json
import os
import pathlib
import sys
import tempfile

import numpy as np

from memsr_jax import cli

TOLERANCE = 1e-3  # max |ORT − JAX| on the 0..255 scale
LAYOUTS = ("NHWC", "NCHW")


class ExportError(cli.UserError, ValueError):
  """An export that cannot be done (missing deps, unsupported model, bad input): exit status 2."""


class VerificationError(RuntimeError):
  """ONNX Runtime's output differs from JAX's by more than the tolerance: exit status 1."""


def _require(module: str):
  import importlib
  try:
    return importlib.import_module(module)
  except ModuleNotFoundError as e:
    raise ExportError(f"{module} is not installed; ONNX export needs the optional packages of "
                      "requirements-export.txt (see its header for the install command)") from e


def load_source(checkpoint=None, model_name=None, scale=None, torch_weights=None,
                param_key=None, overrides=None):
  """(model, params, info) from a checkpoint, or a zoo preset with imported PyTorch weights."""
  if checkpoint:
    path = pathlib.Path(checkpoint)
    if not path.exists():
      raise ExportError(f"checkpoint {path} does not exist")
    from memsr_jax.checkpoints import load_model_checkpoint
    try:
      model, params, meta = load_model_checkpoint(path)
    except (FileNotFoundError, ValueError) as e:
      raise ExportError(f"cannot load checkpoint {path}: {e}") from e
    ckpt_scale = int(meta.get("scale", getattr(model, "scale", 0)))
    if scale and scale != ckpt_scale:
      raise ExportError(f"checkpoint {path} is a ×{ckpt_scale} model but --scale {scale} was given")
    info = {"model": meta.get("model"), "scale": ckpt_scale, "step": meta.get("step"),
            "source": str(path.resolve())}
    return model, params, info
  if not (model_name and torch_weights and scale):
    raise ExportError("give --checkpoint DIR, or --model NAME --scale S --torch_weights FILE.pth")
  from memsr_jax.interop.torch_import import load_torch_weights
  from memsr_jax.models import registry
  overrides = dict(overrides or {})
  weights = torch_weights.replace("{scale}", str(scale))
  if not pathlib.Path(weights).is_file():
    raise ExportError(f"weights file {weights} does not exist")
  try:
    model = registry.build_model(model_name, scale=scale, **overrides)
    params = load_torch_weights(weights, model_name, scale, param_key=param_key, **overrides)
  except (ModuleNotFoundError, KeyError, ValueError) as e:
    raise ExportError(f"cannot import {weights} as {model_name} ×{scale}: {e}") from e
  return model, params, {"model": model_name, "scale": scale, "step": None,
                         "source": str(pathlib.Path(weights).resolve())}


def metadata(model, info: dict, layout: str) -> dict[str, str]:
  """The metadata_props written into the ONNX file (all values are strings)."""
  from importlib import metadata as pkg_metadata

  import memsr_jax
  from memsr_jax.deploy.receptive_field import receptive_radius
  radius = receptive_radius(model)
  return {
      "memsr_jax.model": str(info["model"] or type(model).__name__),
      "memsr_jax.scale": str(int(model.scale)),
      "memsr_jax.layout": layout,
      "memsr_jax.value_range": "0..255 float32 RGB in and out (unclipped)",
      "memsr_jax.step": "" if info.get("step") is None else str(int(info["step"])),
      "memsr_jax.version": memsr_jax.__version__,
      # LR pixels each side an output pixel sees: "" = unbounded (feathered tiles only).
      "memsr_jax.receptive_radius": "" if radius is None else str(radius),
      "memsr_jax.model_kwargs": json.dumps(_jsonable(model), sort_keys=True),
      "memsr_jax.source": str(info.get("source", "")),
      "memsr_jax.exporter": f"jax2onnx {pkg_metadata.version('jax2onnx')}",
  }


def _jsonable(model) -> dict:
  import dataclasses
  out = {}
  for f in dataclasses.fields(model):
    if f.name in ("parent", "name"):
      continue
    v = getattr(model, f.name)
    if isinstance(v, (int, float, str, bool, type(None), list, tuple)):
      out[f.name] = v
  return out


def to_onnx_proto(model, params, layout: str = "NHWC"):
  """The ONNX ModelProto of `model.apply` with `params` baked in; dynamic N, H, W."""
  if layout not in LAYOUTS:
    raise ExportError(f"--layout must be NHWC or NCHW, got {layout!r}")
  _require("onnx")
  j2o = _require("jax2onnx")

  def forward(x):
    return model.apply({"params": params}, x)

  nchw = [0] if layout == "NCHW" else None
  try:
    return j2o.to_onnx(forward, [("N", "H", "W", 3)], model_name=type(model).__name__,
                       input_names=["lr"], output_names=["sr"], inputs_as_nchw=nchw,
                       outputs_as_nchw=nchw, return_mode="proto")
  except Exception as e:  # the exporter's own message names the op it cannot express
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise ExportError(f"jax2onnx cannot export {type(model).__name__} with dynamic height and "
                      f"width: {type(e).__name__}: {first}") from e


def verify_image(path=None, lr_side: int = 96) -> np.ndarray:
  """A real photo as uint8 [h, w, 3]: `path`, else a `lr_side` crop of skimage's astronaut."""
  if path:
    from memsr_jax.image import io as image_io
    return image_io.read_image(path)
  from skimage import data
  img = data.astronaut()
  y, x = 150, 180  # face and hair: texture and edges
  return np.ascontiguousarray(img[y:y + lr_side, x:x + lr_side + 8])  # non-square on purpose


def jax_reference(model, params, lr: np.ndarray) -> np.ndarray:
  """JAX output at conv/matmul precision HIGHEST, float32 NHWC [1, H*s, W*s, 3]."""
  import jax
  with jax.default_matmul_precision("highest"):
    y = jax.jit(lambda p, x: model.apply({"params": p}, x))(params, lr[None].astype(np.float32))
    return np.asarray(y, np.float32)


def verify(onnx_bytes: bytes, model, params, lr: np.ndarray, layout: str) -> float:
  """max |ONNX Runtime − JAX (HIGHEST)| on one LR image (0..255 scale)."""
  from memsr_jax.deploy import ort_backend
  sess = ort_backend.Session(onnx_bytes)
  got = sess.run(lr[None].astype(np.float32))
  ref = jax_reference(model, params, lr)
  if got.shape != ref.shape:
    raise VerificationError(f"ONNX Runtime output shape {got.shape} != JAX {ref.shape}")
  return float(np.abs(got - ref).max())


def export_onnx(model, params, info: dict, output, *, layout: str = "NHWC",
                image: np.ndarray | None = None, tolerance: float = TOLERANCE,
                overwrite: bool = False) -> dict:
  """Exports, verifies in ONNX Runtime, then writes `output` atomically → a report dict."""
  onnx = _require("onnx")
  _require("onnxruntime")
  output = pathlib.Path(output)
  if output.exists() and not overwrite:
    raise ExportError(f"{output} exists: pass --overwrite to replace it")
  if not output.parent.exists():
    raise ExportError(f"output folder {output.parent} does not exist")
  proto = to_onnx_proto(model, params, layout)
  meta = metadata(model, info, layout)
  onnx.helper.set_model_props(proto, meta)  # the verifying session reads scale/layout from it
  lr = verify_image() if image is None else image
  diff = verify(proto.SerializeToString(), model, params, lr, layout)
  report = {"output": str(output), "max_abs_diff": diff, "tolerance": tolerance,
            "verify_lr_shape": list(lr.shape), **meta}
  if not diff <= tolerance:
    raise VerificationError(f"ONNX Runtime differs from JAX by max |diff| {diff:.3g} > "
                            f"{tolerance:g} on a {lr.shape[1]}×{lr.shape[0]} image; not written")
  meta["memsr_jax.verified_max_abs_diff"] = f"{diff:.3g}"
  onnx.helper.set_model_props(proto, meta)
  proto.doc_string = "memsr_jax super-resolution model, exported by python -m memsr_jax.export"
  onnx.checker.check_model(proto)
  # Temp file in the same folder, then rename: a failed write never leaves a half file behind.
  fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(proto.SerializeToString())
    os.replace(tmp, output)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise
  report["bytes"] = output.stat().st_size
  return report


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m memsr_jax.export", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument("--checkpoint", help="model checkpoint or training workdir")
  src.add_argument("--model", help="zoo preset whose PyTorch weights --torch_weights imports")
  p.add_argument("--torch_weights", help="PyTorch .pth for --model ({scale} is substituted)")
  p.add_argument("--param_key", help="entry of the .pth holding the weights")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="model hyperparameter override for --model (JSON value), repeatable")
  p.add_argument("--scale", type=int, help="scale (required with --model; checked otherwise)")
  p.add_argument("--format", default="onnx", help="output format: onnx (the only one; see "
                 "docs/DEPLOY.md on LiteRT)")
  p.add_argument("--output", required=True, help="the .onnx file to write")
  p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
  p.add_argument("--layout", default="NHWC", choices=LAYOUTS, help="input/output tensor layout")
  p.add_argument("--verify_image", help="LR image for the ONNX Runtime check (default: a crop "
                 "of skimage's astronaut)")
  p.add_argument("--tolerance", type=float, default=TOLERANCE,
                 help="max |ORT − JAX| allowed on 0..255")
  return p.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    if args.format.lower() != "onnx":
      raise ExportError(f"--format {args.format} is not supported: only onnx (LiteRT needs "
                        "TensorFlow's converter; see docs/DEPLOY.md)")
    _require("jax2onnx"), _require("onnxruntime")
    output = pathlib.Path(args.output)
    if output.exists() and not args.overwrite:
      raise ExportError(f"{output} exists: pass --overwrite to replace it")
    model, params, info = load_source(args.checkpoint, args.model, args.scale,
                                      args.torch_weights, args.param_key,
                                      cli.parse_set_overrides(args.set))
    image = verify_image(args.verify_image) if args.verify_image else None
    report = export_onnx(model, params, info, output, layout=args.layout, image=image,
                         tolerance=args.tolerance, overwrite=args.overwrite)
  except VerificationError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except (cli.UserError, ValueError, OSError) as e:
    return cli.fail(e)
  print(f"wrote {report['output']} ({report['bytes'] / 1e6:.1f} MB, "
        f"{report['memsr_jax.model']} ×{report['memsr_jax.scale']}, {args.layout}); ONNX Runtime "
        f"vs JAX (HIGHEST) max |diff| {report['max_abs_diff']:.3g} on 0..255 "
        f"(≤ {args.tolerance:g})", file=sys.stderr)
  print(json.dumps({k: v for k, v in report.items() if k != "memsr_jax.model_kwargs"}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
