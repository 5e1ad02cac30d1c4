"""ONNX Runtime backend of the upscaler: an exported model (memsr_jax.export) as a tile function.

The ONNX file carries its scale, layout and receptive radius in metadata_props, so nothing here
needs JAX or the model's code. Tiling reuses `deploy.tiling` unchanged: "exact" mode (windows
shifted inward, cores kept) for models with a finite receptive field — plain nets included, as it
needs no validity-mask input — and "feather" otherwise. PNG streaming and budgets are the JAX
backend's (`deploy.upscaler.Upscaler.upscale_file`, `deploy.budget`).

Memory: ONNX Runtime has no buffer-assignment analysis like XLA's, so a tile's memory is measured.
The session runs without its CPU arena and memory-pattern cache (freed tensors leave RSS); the
peak RSS growth of one call (VmHWM reset through /proc/self/clear_refs, as in
`measure/torch_bench.py`) is measured at two probe tile sizes and fitted as a + b·h·w, and never
taken below a floor of what must coexist (float32 input + output + two maps of the widest conv:
small probes can reuse freed heap and read low). The RSS the session itself holds (weights,
prepacked kernels) is measured across its creation and plays the role of the JAX backend's
`compile_rss`. Off Linux (no clear_refs) a formula stands in for the fit (`_fallback_bytes`).
"""
import pathlib
import types

import numpy as np

from memsr_jax.deploy import tiling
from memsr_jax.deploy import upscaler

META = "memsr_jax."
PROBE_SIDES = (64, 160)


def _ort():
  try:
    import onnxruntime
  except ModuleNotFoundError as e:
    raise ValueError("the onnxruntime backend needs onnxruntime: pip install -r "
                     "requirements-export.txt") from e
  return onnxruntime


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
    if isinstance(model, (str, pathlib.Path)):
      path = pathlib.Path(model)
      if not path.is_file():
        raise ValueError(f"ONNX model {path} does not exist")
      model = str(path)
    try:
      self.sess = ort.InferenceSession(model, session_options(threads),
                                       providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types for non-ONNX files
      where = model if isinstance(model, str) else "the model"
      msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
      raise ValueError(f"{where} is not a loadable ONNX model ({msg})") from e
    props = self.sess.get_modelmeta().custom_metadata_map
    self.meta = {k[len(META):]: v for k, v in props.items() if k.startswith(META)}
    missing = {"scale", "layout"} - set(self.meta)
    if missing:
      raise ValueError(f"{model if isinstance(model, str) else 'the model'} has no memsr_jax "
                       f"metadata ({', '.join(sorted(missing))}): export it with "
                       "python -m memsr_jax.export")
    self.scale = int(self.meta["scale"])
    self.layout = self.meta["layout"]
    r = self.meta.get("receptive_radius", "")
    self.radius = int(r) if r else None
    self.input_name = self.sess.get_inputs()[0].name
    self.max_channels = _max_conv_channels(model)

  def run(self, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, np.float32)
    if self.layout == "NCHW":
      x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y = self.sess.run(None, {self.input_name: x})[0]
    return y.transpose(0, 2, 3, 1) if self.layout == "NCHW" else y


def _status_kb(field: str) -> int:
  for line in pathlib.Path("/proc/self/status").read_text().splitlines():
    if line.startswith(field + ":"):
      return int(line.split()[1])
  raise KeyError(field)


def call_peak_bytes(fn, *args) -> int | None:
  """Peak RSS growth of one call `fn(*args)` (Linux); None where VmHWM cannot be reset."""
  try:
    pathlib.Path("/proc/self/clear_refs").write_text("5")
    base = _status_kb("VmRSS")
    fn(*args)
    return (_status_kb("VmHWM") - base) * 1024
  except (OSError, KeyError):
    return None


def _max_conv_channels(model) -> int:
  """Widest conv (largest dim of the 4-D initializers, in either kernel layout); 64 if unknown."""
  try:
    import onnx
    proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(model)
    return max((max(t.dims) for t in proto.graph.initializer if len(t.dims) == 4), default=64)
  except Exception:  # onnx missing or an exotic file: the zoo's usual width
    return 64


class OrtTileFn:
  """`fn(x) -> sr` on one [1, h, w, 3] float32 tile, with the interface `deploy.budget` expects
  of `tiling.TileFn` (mode, model.scale, compiled, memory_bytes, forget, compile_rss)."""

  def __init__(self, session: Session, mode: str):
    self.session, self.mode = session, mode
    self.model = types.SimpleNamespace(scale=session.scale)
    self.compile_rss = session.resident_bytes if hasattr(session, "resident_bytes") else 0
    self._fit = None  # (a, b): bytes ≈ a + b·h·w

  def compiled(self, h: int, w: int):  # ORT handles every shape with one session
    return self

  def forget(self, keep: int | None = None) -> None:
    pass

  def _measure(self) -> tuple[float, float]:
    pts = []
    for side in PROBE_SIDES:
      x = np.zeros((1, side, side, 3), np.float32)
      self.session.run(x)  # warm-up: kernels' one-time buffers are not the tile's
      b = call_peak_bytes(self.session.run, x)
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


class OrtUpscaler(upscaler.Upscaler):
  """`deploy.upscaler.Upscaler` driven by an ONNX Runtime session instead of a JAX model."""

  def __init__(self, onnx_path, mode: str | None = None, max_memory: int | str | None = None,
               tile: int | None = None, overlap: int = 32, stream_input: str = "auto",
               png_level: int = 6, threads: int | None = None):
    before = _rss()
    self.session = Session(onnx_path, threads)
    self.session.resident_bytes = max(0, _rss() - before)
    r = self.session.radius
    self.mode = mode or ("exact" if r is not None else "feather")
    if self.mode == "masked":
      raise ValueError("mode 'masked' needs the JAX backend (a validity-mask input); the ONNX "
                       "backend tiles plain nets with mode 'exact', equally exact")
    if self.mode not in tiling.MODES:
      raise ValueError(f"mode must be one of {tiling.MODES}, got {self.mode!r}")
    if self.mode == "exact" and r is None:
      raise ValueError(f"{onnx_path} has no finite receptive field in its metadata: use "
                       "mode 'feather'")
    self.model = types.SimpleNamespace(scale=self.session.scale)
    self._set_options(r, overlap, max_memory, tile, stream_input, png_level)
    self.fn = OrtTileFn(self.session, self.mode)


def _rss() -> int:
  import psutil
  return psutil.Process().memory_info().rss


def upscale_array(session: Session, image: np.ndarray, tile: int | None = None,
                  mode: str | None = None, overlap: int = 16) -> np.ndarray:
  """Tiled SR of an in-memory uint8 image through ONNX Runtime → uint8 [H*s, W*s, 3]."""
  mode = mode or ("exact" if session.radius is not None else "feather")
  halo = session.radius if mode != "feather" else overlap
  tile = tile or max(image.shape[:2])
  plan = tiling.TilePlan(mode, tile, halo, session.scale)
  bands = []
  tiling.run_tiled(tiling.ArraySource(image), OrtTileFn(session, mode), plan, bands.append)
  return np.concatenate(bands)


def upscaler_from_args(args) -> OrtUpscaler:
  """The `memsr_jax.upscale --backend onnxruntime` upscaler; ValueError on a bad combination."""
  if args.checkpoint or not args.model:
    raise ValueError("--backend onnxruntime runs an exported file: pass --model model.onnx "
                     "(export a checkpoint with python -m memsr_jax.export)")
  if not args.model.lower().endswith(".onnx") and not pathlib.Path(args.model).is_file():
    raise ValueError(f"--model {args.model} is not an .onnx file (with --backend onnxruntime "
                     "--model names an exported model, not a preset)")
  if args.bf16:
    raise ValueError("--bf16 is for the JAX backend; the ONNX file runs in float32")
  up = OrtUpscaler(args.model, mode=args.mode, max_memory=args.max_memory, tile=args.tile,
                   overlap=args.overlap, stream_input=args.stream_input,
                   png_level=args.png_level)
  if args.scale and args.scale != up.session.scale:
    raise ValueError(f"{args.model} is a ×{up.session.scale} model "
                     f"({up.session.meta.get('model')}) but --scale {args.scale} was given")
  return up
