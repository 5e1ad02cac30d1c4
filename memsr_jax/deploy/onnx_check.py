"""Checks an ONNX SR model once, before any image is upscaled, and names the file and the field.

An exported file (memsr_jax.export) carries its scale, layout and receptive radius in
metadata_props. None of it is trusted: the values must parse (`parse_metadata`), the graph's
input and output must be float32 4-D tensors in the stated layout and a probe run must return a
×scale RGB image (`check_graph`), and before exact tiling the stated receptive radius is checked
against the graph itself (`check_receptive_radius`): one input pixel is changed and no output
pixel farther than the radius may change. A radius that is too small would make "exact" tiles
differ from the whole-image output without a word.
"""
from typing import Callable

import numpy as np

from memsr_jax.utils import cli

META = "memsr_jax."
LAYOUTS = ("NHWC", "NCHW")
PROBE_SIDE = 8
# Float32 outputs of unchanged receptive fields are reproduced bit for bit; this tolerance only
# absorbs kernels that mix neighbouring pixels' rounding (values are 0..255).
SPREAD_TOLERANCE = 1e-3
SPREAD_MARGIN = 6  # LR pixels beyond the stated radius in which a change would be seen


class OnnxModelError(cli.UserError, ValueError):
  """An ONNX file that is not a usable SR model, or whose metadata does not fit its graph."""


def parse_metadata(meta: dict, where) -> tuple[int, str, int | None]:
  """(scale, layout, radius or None) from the `memsr_jax.*` metadata (prefix removed)."""
  missing = {"scale", "layout"} - set(meta)
  if missing:
    raise OnnxModelError(f"{where} has no memsr_jax metadata ({', '.join(sorted(missing))}): "
                         "export it with python -m memsr_jax.export")
  scale = _int_field(meta, "scale", where, low=1)
  layout = meta["layout"]
  if layout not in LAYOUTS:
    raise OnnxModelError(f"{where}: metadata {META}layout={layout!r} is not NHWC or NCHW; "
                         "re-export the model")
  radius = None
  if meta.get("receptive_radius", "") != "":
    radius = _int_field(meta, "receptive_radius", where, low=0)
  return scale, layout, radius


def _int_field(meta: dict, key: str, where, low: int) -> int:
  raw = meta[key]
  try:
    value = int(raw)
  except (TypeError, ValueError):
    value = None
  if value is None or value < low or str(raw).strip() != str(value):
    raise OnnxModelError(f"{where}: metadata {META}{key}={raw!r} is not an integer >= {low}; "
                         "re-export the model")
  return value


def _dims(node_arg) -> list:
  return list(node_arg.shape) if node_arg.shape is not None else []


def static_hw(sess, layout: str) -> tuple[int, int] | None:
  """The (height, width) a fixed-shape input takes, or None for any size (named dims)."""
  dims = _dims(sess.get_inputs()[0])
  if len(dims) != 4:
    return None
  h, w = dims[1:3] if layout == "NHWC" else dims[2:4]
  if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
    return h, w
  return None


def check_graph(sess, where, scale: int, layout: str,
                probe_hw: tuple[int, int] | None = None) -> None:
  """The graph takes and returns float32 4-D images in `layout`, and maps a PROBE_SIDE² RGB input
  (or one of `probe_hw`, a fixed-shape input's size) to a ×scale RGB output."""
  inputs, outputs = sess.get_inputs(), sess.get_outputs()
  if len(inputs) != 1 or not outputs:
    raise OnnxModelError(f"{where} has {len(inputs)} inputs and {len(outputs)} outputs; an SR "
                         "model has one image input and an image output")
  channel_axis = 3 if layout == "NHWC" else 1
  for kind, arg in (("input", inputs[0]), ("output", outputs[0])):
    if arg.type != "tensor(float)":
      raise OnnxModelError(f"{where}: the {kind} {arg.name!r} is {arg.type}, not float32 "
                           "(tensor(float)); re-export the model")
    dims = _dims(arg)
    if len(dims) != 4:
      raise OnnxModelError(f"{where}: the {kind} {arg.name!r} has shape {dims}, not a 4-D "
                           f"{layout} image")
    other_axis = 1 if channel_axis == 3 else 3
    if dims[channel_axis] != 3 and (isinstance(dims[channel_axis], int) or dims[other_axis] == 3):
      raise OnnxModelError(f"{where}: metadata {META}layout={layout} does not fit the graph: "
                           f"its {kind} {arg.name!r} has shape {dims} (3 channels expected on "
                           f"axis {channel_axis})")
  ph, pw = probe_hw or (PROBE_SIDE, PROBE_SIDE)
  x = np.zeros((1, ph, pw, 3), np.float32)
  if layout == "NCHW":
    x = x.transpose(0, 3, 1, 2)
  try:
    y = sess.run(None, {inputs[0].name: x})[0]
  except Exception as e:  # ORT raises its own types for a shape it cannot take
    raise OnnxModelError(f"{where} cannot run on a {pw}×{ph} RGB image in "
                         f"{layout} ({cli.one_line(e)[:200]})") from None
  hh, ww = ph * scale, pw * scale
  want = (1, hh, ww, 3) if layout == "NHWC" else (1, 3, hh, ww)
  if tuple(np.shape(y)) != want:
    raise OnnxModelError(f"{where} is not a ×{scale} super-resolution model in {layout} (metadata "
                         f"{META}scale, {META}layout): a {pw}×{ph} input gave "
                         f"shape {tuple(np.shape(y))}, expected {want}")


def measured_spread(run: Callable[[np.ndarray], np.ndarray], scale: int, radius: int,
                    seed: int = 0, hw: tuple[int, int] | None = None) -> int:
  """How far (in LR pixels) a change of one input pixel reaches in the output of `run`
  (NHWC float32 in and out), looked for up to `radius + SPREAD_MARGIN` pixels away (or within
  the input size `hw` of a fixed-shape model); a lower bound of the true receptive radius."""
  n = 2 * (radius + SPREAD_MARGIN) + 1
  h, w = hw or (n, n)
  cy, cx = h // 2, w // 2
  rng = np.random.default_rng(seed)
  x = rng.uniform(0, 255, (1, h, w, 3)).astype(np.float32)
  base = np.asarray(run(x), np.float64)
  reach = -1
  for delta in (96.0, -96.0):
    x2 = x.copy()
    x2[0, cy, cx] = np.clip(x2[0, cy, cx] + delta, 0, 255)
    changed = np.abs(np.asarray(run(x2), np.float64) - base).max(axis=-1)[0] > SPREAD_TOLERANCE
    rows, cols = np.nonzero(changed)
    if rows.size:
      dist = np.maximum(np.abs(rows // scale - cy), np.abs(cols // scale - cx))
      reach = max(reach, int(dist.max()))
  return reach


def check_receptive_radius(run, where, scale: int, radius: int,
                           hw: tuple[int, int] | None = None) -> None:
  """Refuses a model whose output changes farther than its stated receptive radius."""
  reach = measured_spread(run, scale, radius, hw=hw)
  if reach > radius:
    raise OnnxModelError(
        f"{where}: metadata {META}receptive_radius={radius} is wrong: changing one input pixel "
        f"changes output pixels {reach}{'+' if reach >= radius + SPREAD_MARGIN else ''} LR "
        "pixels away, so exact tiles would differ from the whole image; re-export the model, or "
        "tile it with --mode feather")
