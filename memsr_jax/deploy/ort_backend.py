"""ONNX Runtime backend of the upscaler: an exported model (memsr_jax.export) as a tile function.

The ONNX file carries its scale, layout and receptive radius in metadata_props, so nothing here
needs JAX or the model's code. `OrtTileFn` is a `tile_function.TileFunction`, so tiling, PNG
streaming and budgets are the JAX backend's (`deploy.tiling`, `deploy.upscaler.TiledUpscaler`,
`deploy.budget`): "exact" mode (windows shifted inward, cores kept) for models with a finite
receptive field — plain nets included, as it needs no validity-mask input — and "feather"
otherwise.

Memory: ONNX Runtime has no buffer-assignment analysis like XLA's, so a tile's memory is measured.
The session runs without its CPU arena and memory-pattern cache (freed tensors leave RSS); the
peak RSS growth of one call (`procmem.call_peak_bytes`: VmHWM reset through
/proc/self/clear_refs) is measured at two probe tile sizes and fitted as a + b·h·w, and never
taken below a floor of what must coexist (float32 input + output + two maps of the widest conv:
small probes can reuse freed heap and read low). The RSS the session itself holds (weights,
prepacked kernels) is measured across its creation (`Session.resident_bytes`) and plays the role
of the JAX backend's `compile_rss`. Off Linux (no clear_refs) a formula stands in for the fit
(`_fallback_bytes`).
"""
import pathlib

import numpy as np
import psutil

from memsr_jax.deploy import budget as budget_lib
from memsr_jax.deploy import onnx_check
from memsr_jax.deploy import upscaler
from memsr_jax.deploy.tile_function import pick_mode
from memsr_jax.utils import cli
from memsr_jax.utils import optional
from memsr_jax.utils import procmem

META = onnx_check.META
PROBE_SIDES = (64, 160)


def _ort():
  """onnxruntime (optional); missing, it is one line saying what to install."""
  return optional.require("onnxruntime", "the ONNX Runtime backend")


def session_options(threads: int | None = None):
  ort = _ort()
  so = ort.SessionOptions()
  so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
  # No arena / pattern cache: RSS follows live tensors, so budgets and measurements hold.
  so.enable_cpu_mem_arena = False
  so.enable_mem_pattern = False
  if threads:
    so.intra_op_num_threads = threads
  so.log_severity_level = 3
  return so


class Session:
  """An ONNX Runtime session of an exported SR model: `run(x_nhwc) -> sr_nhwc` (float32)."""

  def __init__(self, model, threads: int | None = None):
    ort = _ort()
    before = _rss()
    if isinstance(model, (str, pathlib.Path)):
      path = pathlib.Path(model)
      if not path.is_file():
        raise onnx_check.OnnxModelError(f"ONNX model {path} does not exist or is not a file")
      model = str(path)
    self.where = model if isinstance(model, str) else "the ONNX model"
    try:
      self.sess = ort.InferenceSession(model, session_options(threads),
                                       providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types for non-ONNX files
      msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
      raise onnx_check.OnnxModelError(f"{self.where} is not a loadable ONNX model ({msg})") from e
    props = self.sess.get_modelmeta().custom_metadata_map
    self.meta = {k[len(META):]: v for k, v in props.items() if k.startswith(META)}
    # Checked once, here, naming the file and the field: not per image, not as a traceback.
    self.scale, self.layout, self.radius = onnx_check.parse_metadata(self.meta, self.where)
    # A fixed-shape input (height and width set in the graph) takes tiles of that size only.
    self.static_hw = onnx_check.static_hw(self.sess, self.layout)
    onnx_check.check_graph(self.sess, self.where, self.scale, self.layout, self.static_hw)
    self.input_name = self.sess.get_inputs()[0].name
    self.max_channels = _max_conv_channels(model)
    self.resident_bytes = max(0, _rss() - before)  # weights and prepacked kernels

  def run(self, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, np.float32)
    if self.layout == "NCHW":
      x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y = self.sess.run(None, {self.input_name: x})[0]
    return y.transpose(0, 2, 3, 1) if self.layout == "NCHW" else y


def _max_conv_channels(model) -> int:
  """Widest conv (largest dim of the 4-D initializers, in either kernel layout); 64 if unknown."""
  try:  # onnx is optional (requirements-export.txt); without it the usual width is assumed
    import onnx
    proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(model)
    return max((max(t.dims) for t in proto.graph.initializer if len(t.dims) == 4), default=64)
  except Exception:  # onnx missing or an exotic file: the zoo's usual width
    return 64


class OrtTileFn:
  """An ONNX Runtime session as a `tile_function.TileFunction`: `fn(x) -> sr` on one
  [1, h, w, 3] float32 tile; `mode` None picks exact (finite receptive field) or feather."""

  def __init__(self, session: Session, mode: str | None = None, what: str = "the ONNX model"):
    self.session = session
    self.scale, self.receptive_radius = session.scale, session.radius
    self.mode = pick_mode(mode, session.radius, False, what)
    if self.mode == "exact":  # the metadata's radius is the halo: it must not be too small
      onnx_check.check_receptive_radius(session.run, session.where, session.scale, session.radius,
                                        session.static_hw)
    self.compile_rss = session.resident_bytes
    self._fit = None  # (a, b): bytes ≈ a + b·h·w

  def compiled(self, h: int, w: int):  # ORT handles every shape with one session
    return self

  def forget(self, keep: int | None = None) -> None:
    pass

  def _measure(self) -> tuple[float, float]:
    if self.session.static_hw:  # one tile size: its measured bytes
      x = np.zeros((1, *self.session.static_hw, 3), np.float32)
      self.session.run(x)
      _, b = procmem.call_peak_bytes(self.session.run, x)
      return (max(b, 0), 0.0) if b is not None else _fallback_bytes(self.session)
    pts = []
    for side in PROBE_SIDES:
      x = np.zeros((1, side, side, 3), np.float32)
      self.session.run(x)  # warm-up: kernels' one-time buffers are not the tile's
      _, b = procmem.call_peak_bytes(self.session.run, x)
      if b is None:
        return _fallback_bytes(self.session)
      pts.append((side * side, max(b, 0)))
    (p0, b0), (p1, b1) = pts
    slope = max((b1 - b0) / (p1 - p0), 0.0)
    return max(b1 - slope * p1, 0.0), slope

  def floor_bytes(self, h: int, w: int) -> int:
    """What any runtime must hold at once: float32 input, output and two maps of the widest conv."""
    s, c = self.session.scale, self.session.max_channels
    return 4 * h * w * (3 + 3 * s * s + 2 * c)

  def memory_bytes(self, h: int, w: int) -> int:
    if self._fit is None:
      self._fit = self._measure()
    a, b = self._fit
    return max(int(a + b * h * w), self.floor_bytes(h, w))

  def __call__(self, x, mask=None):
    if mask is not None:
      raise ValueError("the onnxruntime backend has no masked mode")
    return self.session.run(x)


def _fallback_bytes(session: Session) -> tuple[float, float]:
  """Per-LR-pixel bytes without measurement: 3 float32 maps 64 channels wide, plus two copies of
  the s²-times larger float32 output (an estimate for the zoo's 64-wide nets, not a bound)."""
  s = session.scale
  return 0.0, float(4 * (3 * 64 + 2 * 3 * s * s))


class OrtUpscaler(upscaler.TiledUpscaler):
  """`deploy.upscaler.TiledUpscaler` driven by an ONNX Runtime session of an exported file."""

  def __init__(self, onnx_path, mode: str | None = None, max_memory: int | str | None = None,
               tile: int | None = None, overlap: int = 32, stream_input: str = "auto",
               png_level: int = 6, threads: int | None = None):
    options = upscaler.UpscaleOptions(max_memory, tile, overlap, stream_input, png_level)
    self.session = Session(onnx_path, threads)
    super().__init__(OrtTileFn(self.session, mode, str(onnx_path)), options)
    self.where = str(onnx_path)
    fixed = self.session.static_hw
    if fixed and tile and tile != max(fixed):
      raise cli.UsageError(f"{onnx_path} has a fixed {fixed[1]}×{fixed[0]} input: its tiles are "
                           f"{max(fixed)} pixels; drop --tile")

  def _plan(self, h: int, w: int, streamed: bool) -> tuple[int, int]:
    """A fixed-shape model's tiles are its input size: the image must hold them (windows never
    exceed the image, `tiling.axis_windows`), and they must fit the budget."""
    fixed = self.session.static_hw
    if not fixed:
      return super()._plan(h, w, streamed)
    tile = max(fixed)
    if (min(tile, h), min(tile, w)) != fixed:
      need = (f"at least {tile}×{tile}" if fixed[0] == fixed[1] else
              f"at least {fixed[1]} wide and exactly {fixed[0]} high" if fixed[0] < fixed[1] else
              f"exactly {fixed[1]} wide and at least {fixed[0]} high")
      raise ValueError(f"{self.where} has a fixed {fixed[1]}×{fixed[0]} input: images must be "
                       f"{need}, this one is {w}×{h} (re-export with a dynamic height and width "
                       "for any size)")
    est = budget_lib.plan_bytes(self.fn, tile, self.halo, h, w, not streamed)
    if self.budget is not None and est > self.budget:
      raise budget_lib.BudgetTooSmall(
          f"the fixed {fixed[1]}×{fixed[0]} tiles of {self.where} need about "
          f"{budget_lib.fmt_mb(est)}, over the budget {budget_lib.fmt_mb(self.budget)}")
    return tile, est


def _rss() -> int:
  return psutil.Process().memory_info().rss
