"""Export a model to ONNX, verified in ONNX Runtime against JAX before the file is written.

The graph is traced from the JAX model itself by jax2onnx (no second implementation to keep in
sync): float32 input 0..255, batch/height/width symbolic, layout NHWC or NCHW. Scale, model,
layout, training step, receptive radius and versions go into the model's metadata_props, which
`deploy.ort_backend` reads. `export_onnx` runs ONNX Runtime and JAX (conv precision HIGHEST) on a
real photo and refuses to write the file when max |diff| > `tolerance`. The command is
`python -m memsr_jax.export` (deploy/export_cli.py).
"""
import contextlib
import dataclasses
import hashlib
from importlib import metadata as pkg_metadata
import io
import json
import pathlib

import jax
import numpy as np
from skimage import data as skimage_data

import memsr_jax
from memsr_jax.deploy import onnx_check
from memsr_jax.deploy import ort_backend
from memsr_jax.deploy.receptive_field import receptive_radius
from memsr_jax.image import io as image_io
from memsr_jax.utils import cli
from memsr_jax.utils import numerics
from memsr_jax.utils import optional
from memsr_jax.utils import safe_io

TOLERANCE = 1e-3  # max |ORT − JAX| on the 0..255 scale
LAYOUTS = onnx_check.LAYOUTS


class ExportError(cli.UserError, ValueError):
  """An export that cannot be done (missing deps, unsupported model, bad input): exit status 2."""


class VerificationError(RuntimeError):
  """ONNX Runtime's output differs from JAX's by more than the tolerance: exit status 1."""


def require(module: str):
  """The optional module `module` (onnx, jax2onnx, onnxruntime); missing, it is one line saying
  what to install (optional.require)."""
  return optional.require(module, "ONNX export")


def file_sha256(path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def params_sha256(params) -> str:
  """A digest of the weights themselves: every leaf's path, dtype, shape and bytes."""
  digest = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    arr = np.ascontiguousarray(np.asarray(leaf))
    digest.update(f"{jax.tree_util.keystr(path)}|{arr.dtype}|{arr.shape}|".encode())
    digest.update(arr.tobytes())
  return digest.hexdigest()


def source_fields(source: str) -> dict[str, str]:
  """Where the weights came from, without a local path: a file's name and sha256, a checkpoint
  folder's name, or how random weights were drawn."""
  path = pathlib.Path(source) if source else None
  if path is not None and path.is_file():
    return {"memsr_jax.source": path.name, "memsr_jax.source_sha256": file_sha256(path)}
  if path is not None and path.is_dir():
    return {"memsr_jax.source": path.name}
  return {"memsr_jax.source": source}


def metadata(model, info: dict, layout: str, params=None) -> dict[str, str]:
  """The metadata_props written into the ONNX file (all values are strings)."""
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
      **source_fields(str(info.get("source", ""))),
      **({} if params is None else {"memsr_jax.params_sha256": params_sha256(params)}),
      "memsr_jax.exporter": f"jax2onnx {pkg_metadata.version('jax2onnx')}",
  }


def _jsonable(model) -> dict:
  """The model's JSON-typed constructor fields (what rebuilds it from the registry)."""
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
  require("onnx")
  j2o = require("jax2onnx")

  def forward(x):
    return model.apply({"params": params}, x)

  nchw = [0] if layout == "NCHW" else None
  try:  # jax2onnx 0.12.5 prints debug lines on stdout, where our commands print results
    with contextlib.redirect_stdout(io.StringIO()):
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
    return image_io.read_image(path)
  img = skimage_data.astronaut()
  y, x = 150, 180  # face and hair: texture and edges
  return np.ascontiguousarray(img[y:y + lr_side, x:x + lr_side + 8])  # non-square on purpose


def jax_reference(model, params, lr: np.ndarray) -> np.ndarray:
  """JAX output at conv/matmul precision HIGHEST, float32 NHWC [1, H*s, W*s, 3]."""
  with jax.default_matmul_precision("highest"):
    y = jax.jit(lambda p, x: model.apply({"params": p}, x))(params, lr[None].astype(np.float32))
    return np.asarray(y, np.float32)


def verify(onnx_bytes: bytes, model, params, lr: np.ndarray, layout: str,
           ref: np.ndarray | None = None) -> float:
  """max |ONNX Runtime − JAX (HIGHEST)| on one LR image (0..255 scale); `ref`: the JAX output
  when already computed."""
  sess = ort_backend.Session(onnx_bytes)
  got = sess.run(lr[None].astype(np.float32))
  ref = jax_reference(model, params, lr) if ref is None else ref
  if got.shape != ref.shape:
    raise VerificationError(f"ONNX Runtime output shape {got.shape} != JAX {ref.shape}")
  return float(np.abs(got - ref).max())


def export_onnx(model, params, info: dict, output, *, layout: str = "NHWC",
                image: np.ndarray | None = None, tolerance: float = TOLERANCE,
                overwrite: bool = False, quantize_fn=None) -> dict:
  """Exports, verifies in ONNX Runtime, then writes `output` atomically → a report dict.

  `quantize_fn(verified float model bytes) -> (bytes, report)` replaces the float model by the
  one it returns (int8: `deploy.quantize.quantize_int8`, which verifies its own result) before
  anything is written; its report goes under "int8". A model whose JAX output holds NaN or Inf is
  refused (numerics.NonFiniteOutputError) before the export."""
  onnx = require("onnx")
  require("onnxruntime")
  output = pathlib.Path(output)
  if output.exists() and not overwrite:
    raise ExportError(f"{output} exists: pass --overwrite to replace it")
  if not output.parent.exists():
    raise ExportError(f"output folder {output.parent} does not exist")
  lr = verify_image() if image is None else image
  ref = jax_reference(model, params, lr)
  numerics.check_finite_output(ref, f"the model ({info.get('model') or 'to export'})")
  proto = to_onnx_proto(model, params, layout)
  meta = metadata(model, info, layout, params)
  onnx.helper.set_model_props(proto, meta)  # the verifying session reads scale/layout from it
  diff = verify(proto.SerializeToString(), model, params, lr, layout, ref)
  report = {"output": str(output), "max_abs_diff": diff, "tolerance": tolerance,
            "verify_lr_shape": list(lr.shape), **meta}
  if not diff <= tolerance:
    raise VerificationError(f"ONNX Runtime differs from JAX by max |diff| {diff:.3g} > "
                            f"{tolerance:g} on a {lr.shape[1]}×{lr.shape[0]} image; not written")
  meta["memsr_jax.verified_max_abs_diff"] = f"{diff:.3g}"
  onnx.helper.set_model_props(proto, meta)
  proto.doc_string = "memsr_jax super-resolution model, exported by python -m memsr_jax.export"
  onnx.checker.check_model(proto)
  data = proto.SerializeToString()
  if quantize_fn is not None:
    data, report["int8"] = quantize_fn(data)
  # Temp file in the same folder, then rename: a failed write never leaves a half file behind,
  # and leftovers of killed exports are deleted.
  safe_io.atomic_write_bytes(output, data, what="writing the ONNX model")
  report["bytes"] = output.stat().st_size
  return report
