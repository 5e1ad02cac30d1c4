"""int8 ONNX models from exported float32 ones, calibrated on image crops and verified.

ONNX Runtime's static quantizer (`onnxruntime.quantization.quantize_static`, QDQ format) does the
quantization; this module chooses its inputs and checks its output:
1. Pre-processing (`quant_pre_process`: symbolic shape inference + ORT's basic graph optimizations,
   which fold the exporter's NHWC transposes). The exported files declare N, H, W symbolic and the
   channel count fixed, which the quantizer accepts; the result keeps those dims.
2. Calibration crops from an image folder: `crops` random crops of `crop`² pixels, one per image
   (seeded), of the bicubic LR of each image (`lr_from_hr`, the benchmark protocol's LR) or of the
   image as is. Fed one crop per calibration pass (`CalibStridedMinMax` 1), so histogram methods
   never hold more than one crop's activations.
3. Options (`Int8Options`): calibration method (MinMax, Percentile, Entropy), per-channel weights,
   7-bit weights (`reduce_range`: CPUs without VNNI add u8·s8 products in int16, which saturates
   with 8-bit weights), symmetric or asymmetric activations, node groups kept in float
   (`quant_nodes.GROUPS`; `kept_weights`: their convs' weights stored int8 behind a
   DequantizeLinear, computed in float), and the exact input range (the tensors between the
   0..255 input and the first conv get their real range, so uint8 holds integer pixel values
   without rounding).
   The defaults are the best trade-off measured on IMDN ×2 (docs/DEPLOY.md, int8).
4. Verification on images held apart from the calibration set (folder images that gave no crop;
   skimage's astronaut when none are left): Y-PSNR of the int8 model's uint8 output against the
   float32 model's, `scale` pixels cropped at the borders (the benchmark metric with the float
   model standing in for HR). Below `min_psnr` the model is refused (`Int8VerificationError`).
The report and the file's metadata_props record the calibration set, method, options, the nodes
kept in float and the verification PSNR.
"""
import contextlib
import dataclasses
import hashlib
import io
import json
import math
import pathlib
import tempfile

import numpy as np

from memsr_jax.deploy import quant_nodes
from memsr_jax.image import bicubic
from memsr_jax.image import io as image_io
from memsr_jax.image import metrics
from memsr_jax.utils import cli
from memsr_jax.utils import safe_io

METHODS = ("minmax", "percentile", "entropy")
ACTIVATION_TYPES = ("uint8", "int8")
KEPT_WEIGHTS = ("int8", "float32")
# dB, int8 vs float32 output on held-out images. Measured on IMDN ×2 calibrated on T91 (held-out
# T91 images): the defaults 50.8 dB, 7-bit weights with ONNX Runtime's other defaults 44.9 dB,
# 8-bit weights in AVX2's int16-saturating u8·s8 kernels 31.4 dB.
MIN_PSNR = 40.0
VERIFY_IMAGES = 3
VERIFY_SIDE = 192  # held-out images are centre-cropped to at most this many LR pixels a side
META = "memsr_jax."


class CalibrationError(cli.UserError, ValueError):
  """A calibration folder that cannot be used (missing, empty, nothing readable): exit status 2."""


class Int8VerificationError(RuntimeError):
  """The int8 model is further from the float model than allowed: nothing is written."""


@dataclasses.dataclass(frozen=True)
class Int8Options:
  """What the quantizer is asked to do; defaults come from benchmarks/int8_search.py."""
  method: str = "percentile"
  percentile: float = 99.999  # for method "percentile"
  moving_average: bool = False  # for method "minmax": moving average of the per-crop min/max
  per_channel: bool = True
  reduce_range: bool = True  # 7-bit weights: no int16 saturation in AVX2's u8·s8 kernels
  activations: str = "uint8"
  weights: str = "int8"
  symmetric_activations: bool = False
  keep_float: tuple[str, ...] = ("first_conv", "skip", "shallow", "last_conv", "concat",
                                 "attention")  # quant_nodes.GROUPS
  # Weights of the Convs kept in float, except the first and last (which see or make the image
  # and lose accuracy with 8-bit weights, measured): "int8" stores them int8 per output channel
  # behind a DequantizeLinear (a smaller file; they still compute in float32), or "float32".
  kept_weights: str = "int8"
  keep_nodes: tuple[str, ...] = ()  # further node names kept in float (after pre-processing)
  only_nodes: tuple[str, ...] = ()  # quantize only these nodes (sensitivity measurements)
  op_types: tuple[str, ...] = ()  # op types quantized; () = every type ONNX Runtime supports
  exact_input: bool = True
  crops: int = 64
  crop: int = 64
  lr_from_hr: bool = True
  seed: int = 0

  def check(self) -> None:
    if self.method not in METHODS:
      raise CalibrationError(f"calibration method must be one of {METHODS}, got {self.method!r}")
    if self.activations not in ACTIVATION_TYPES or self.weights not in ACTIVATION_TYPES:
      raise CalibrationError(f"activations and weights must be one of {ACTIVATION_TYPES}")
    bad = set(self.keep_float) - set(quant_nodes.GROUPS)
    if bad:
      raise CalibrationError(f"unknown node groups {sorted(bad)}; known: {quant_nodes.GROUPS}")
    if self.kept_weights not in KEPT_WEIGHTS:
      raise CalibrationError(f"kept_weights must be one of {KEPT_WEIGHTS}, got "
                             f"{self.kept_weights!r}")
    if self.crops < 1 or self.crop < 8:
      raise CalibrationError(f"need at least 1 calibration image and crops of ≥ 8 px, got "
                             f"{self.crops} of {self.crop} px")


@dataclasses.dataclass
class CalibrationSet:
  folder: pathlib.Path
  crops: list  # uint8 [h, w, 3] model inputs
  images: list[str]  # file names the crops came from
  held_out: list[pathlib.Path]  # readable-looking files that gave no crop

  def describe(self, opts: Int8Options) -> dict:
    return {"folder": self.folder.name, "path": str(self.folder.resolve()),
            "crops": len(self.crops), "images": len(set(self.images)), "crop": opts.crop,
            "lr_from_hr": opts.lr_from_hr, "seed": opts.seed}


def list_images(folder) -> list[pathlib.Path]:
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise CalibrationError(f"calibration folder {folder} does not exist (or is not a folder)")
  files = sorted(p for p in folder.iterdir()
                 if p.is_file() and p.suffix.lower() in image_io.IMAGE_EXTENSIONS)
  if not files:
    raise CalibrationError(f"calibration folder {folder} has no images "
                           f"({', '.join(image_io.IMAGE_EXTENSIONS)})")
  return files


def _model_input(img: np.ndarray, scale: int, lr_from_hr: bool) -> np.ndarray | None:
  if not lr_from_hr:
    return img
  hr = img[:img.shape[0] - img.shape[0] % scale, :img.shape[1] - img.shape[1] % scale]
  return bicubic.bicubic_downscale(hr, scale) if min(hr.shape[:2]) >= 2 * scale else None


def calibration_set(folder, opts: Int8Options, scale: int) -> CalibrationSet:
  """`opts.crops` crops, one per image in a seeded order; images are reused (new random crops)
  when the folder has fewer readable images than crops. Unread images are the held-out ones."""
  files = list_images(folder)
  rng = np.random.default_rng(opts.seed)
  order = [files[i] for i in rng.permutation(len(files))]
  crops, names, tried, readable = [], [], 0, []

  def add(f, lr):
    h, w = min(opts.crop, lr.shape[0]), min(opts.crop, lr.shape[1])
    y, x = rng.integers(0, lr.shape[0] - h + 1), rng.integers(0, lr.shape[1] - w + 1)
    crops.append(np.ascontiguousarray(lr[y:y + h, x:x + w]))
    names.append(f.name)

  for f in order:
    if len(crops) == opts.crops:
      break
    tried += 1
    try:
      lr = _model_input(image_io.read_image(f), scale, opts.lr_from_hr)
    except image_io.ImageReadError:
      continue
    if lr is not None:
      readable.append(f)
      add(f, lr)
  if not crops:
    raise CalibrationError(f"no readable images in calibration folder {folder} (each must be at "
                           f"least {2 * scale} px a side)")
  for i in range(opts.crops - len(crops)):  # a small folder: more crops of the same images
    f = readable[i % len(readable)]
    add(f, _model_input(image_io.read_image(f), scale, opts.lr_from_hr))
  return CalibrationSet(pathlib.Path(folder), crops, names, order[tried:])


def _reader(crops, input_name: str):
  from onnxruntime.quantization import CalibrationDataReader  # optional dependency

  class CropReader(CalibrationDataReader):
    """Feeds the crops as float32 [1, h, w, 3]; ranges are set by the strided calibration."""

    def __init__(self):
      self.start, self.end, self.i = 0, len(crops), 0

    def __len__(self):
      return len(crops)

    def set_range(self, start_index, end_index):
      self.start, self.end, self.i = start_index, end_index, start_index

    def get_next(self):
      if self.i >= self.end:
        return None
      self.i += 1
      return {input_name: crops[self.i - 1][None].astype(np.float32)}

  return CropReader()


def preprocess(fp32_model: bytes, workdir: pathlib.Path):
  """ONNX Runtime's quantization pre-processing → (ModelProto with named nodes, its path)."""
  import onnx  # optional dependency
  from onnxruntime.quantization.shape_inference import quant_pre_process
  src, dst = workdir / "fp32.onnx", workdir / "fp32_pre.onnx"
  src.write_bytes(fp32_model)
  quant_pre_process(str(src), str(dst))
  model = onnx.load(str(dst))
  quant_nodes.name_nodes(model)
  onnx.save(model, str(dst))
  return model, dst


def _cache_file(cache_dir, fp32_model: bytes, calib: CalibrationSet, opts: Int8Options):
  if cache_dir is None:
    return None
  h = hashlib.sha256(fp32_model)
  for c in calib.crops:
    h.update(np.ascontiguousarray(c).tobytes())
  h.update(f"{opts.method} {opts.percentile if opts.method == 'percentile' else ''} "
           f"{opts.moving_average if opts.method == 'minmax' else ''}".encode())
  return pathlib.Path(cache_dir) / f"calib_{h.hexdigest()[:20]}.json"


def quantize(fp32_model: bytes, calib: CalibrationSet, opts: Int8Options,
             cache_dir=None, overrides=None) -> tuple[bytes, dict[str, list[str]]]:
  """The QDQ int8 model (bytes) and {group: nodes kept in float}; `cache_dir` reuses ranges;
  `overrides(pre-processed ModelProto) -> {tensor: [{"scale", "zero_point"}]}` pins tensors'
  quantization (trained ranges) over the calibrated ones."""
  opts.check()
  import onnxruntime.quantization as q  # optional dependency
  method = {"minmax": q.CalibrationMethod.MinMax, "percentile": q.CalibrationMethod.Percentile,
            "entropy": q.CalibrationMethod.Entropy}[opts.method]
  qtype = {"uint8": q.QuantType.QUInt8, "int8": q.QuantType.QInt8}
  # Removed also on SIGTERM: it holds copies of the model.
  with safe_io.exit_on_signal(), tempfile.TemporaryDirectory(prefix="memsr_int8_") as tmp:
    model, pre_path = preprocess(fp32_model, pathlib.Path(tmp))
    groups = quant_nodes.node_groups(model)
    kept = {g: groups[g] for g in opts.keep_float}
    if opts.keep_nodes:
      kept["nodes"] = list(opts.keep_nodes)
    extra = {"ActivationSymmetric": opts.symmetric_activations, "WeightSymmetric": True,
             "CalibStridedMinMax": 1}
    if opts.method == "percentile":
      extra["CalibPercentile"] = opts.percentile
    if opts.method == "minmax" and opts.moving_average:
      extra["CalibMovingAverage"] = True
    pinned = {}
    if opts.exact_input:
      pinned = {t: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}]
                for t, (lo, hi) in quant_nodes.input_ranges(model).items()}
    if overrides is not None:
      pinned.update(overrides(model))
    if pinned:
      extra["TensorQuantOverrides"] = pinned
    out = pathlib.Path(tmp) / "int8.onnx"
    with contextlib.redirect_stdout(io.StringIO()):  # histogram calibrators print progress
      q.quantize_static(str(pre_path), str(out), _reader(calib.crops, model.graph.input[0].name),
                        quant_format=q.QuantFormat.QDQ, per_channel=opts.per_channel,
                        reduce_range=opts.reduce_range, activation_type=qtype[opts.activations],
                        weight_type=qtype[opts.weights],
                        op_types_to_quantize=list(opts.op_types) or None,
                        nodes_to_quantize=list(opts.only_nodes) or None,
                        nodes_to_exclude=sorted({n for v in kept.values() for n in v}),
                        calibrate_method=method, extra_options=extra,
                        calibration_cache_path=_cache_file(cache_dir, fp32_model, calib, opts))
    int8 = out.read_bytes()
  if opts.kept_weights == "int8":
    image_side = set(groups["first_conv"]) | set(groups["last_conv"])
    int8 = _int8_kept_weights(int8, {n for v in kept.values() for n in v} - image_side,
                              opts.per_channel)
  return int8, kept


def _int8_kept_weights(model_bytes: bytes, kept: set[str], per_channel: bool) -> bytes:
  """The float32 weight initializers of the kept Convs as int8 (symmetric, by ONNX Runtime's
  `quantize_data`; per output channel when `per_channel`) feeding a DequantizeLinear. The Convs
  keep float inputs and outputs, so ONNX Runtime runs them in float32 on the dequantized weights:
  the same computation with 8-bit weights (their error is far below the activations' quantization
  error), at a quarter of the bytes."""
  import onnx  # optional dependency
  from onnx import numpy_helper
  from onnxruntime.quantization.quant_utils import quantize_data
  model = onnx.load_from_string(model_bytes)
  graph = model.graph
  inits = {t.name: t for t in graph.initializer}
  _, users = quant_nodes.graph_maps(graph)
  dq_nodes = []
  for n in graph.node:
    if n.op_type != "Conv" or n.name not in kept or len(n.input) < 2:
      continue
    w = inits.get(n.input[1])
    if w is None or w.data_type != onnx.TensorProto.FLOAT or len(users[w.name]) != 1:
      continue
    data = numpy_helper.to_array(w)
    rows = data.reshape(data.shape[0], -1) if per_channel else data.reshape(1, -1)
    zps, scales, qs = zip(*(quantize_data(r, onnx.TensorProto.INT8, True) for r in rows))
    q = np.stack([np.asarray(x, np.int8) for x in qs]).reshape(data.shape)
    scale = np.asarray(scales, np.float32).reshape(-1)
    zp = np.asarray(zps, np.int8).reshape(-1)
    graph.initializer.remove(w)
    names = (f"{w.name}_int8", f"{w.name}_int8_scale", f"{w.name}_int8_zero_point")
    for name, arr in zip(names, (q, scale if per_channel else scale[0],
                                 zp if per_channel else zp[0])):
      graph.initializer.append(numpy_helper.from_array(arr, name))
    dq_nodes.append(onnx.helper.make_node("DequantizeLinear", list(names), [w.name],
                                          name=f"{n.name}_weight_dq",
                                          **({"axis": 0} if per_channel else {})))
  for i, dq in enumerate(dq_nodes):  # constants first: the graph stays topologically sorted
    graph.node.insert(i, dq)
  return model.SerializeToString()


def _session(model: bytes):
  import onnxruntime as ort  # optional dependency
  so = ort.SessionOptions()
  so.log_severity_level = 3
  return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _run(sess, lr: np.ndarray) -> np.ndarray:
  y = sess.run(None, {sess.get_inputs()[0].name: lr[None].astype(np.float32)})[0][0]
  return metrics.to_uint8(y)


def verify_images(calib: CalibrationSet, opts: Int8Options, scale: int,
                  count: int = VERIFY_IMAGES, side: int = VERIFY_SIDE):
  """[(name, uint8 model input)]: held-out folder images, made into model inputs as the
  calibration crops are (bicubic LR or as is), centre-cropped to `side`; else skimage's
  astronaut."""
  out = []
  for f in calib.held_out:
    if len(out) == count:
      break
    try:
      img = _model_input(image_io.read_image(f), scale, opts.lr_from_hr)
    except image_io.ImageReadError:
      continue
    if img is None:
      continue
    y, x = max(0, (img.shape[0] - side) // 2), max(0, (img.shape[1] - side) // 2)
    out.append((f.name, img[y:y + side, x:x + side]))
  if not out:
    from skimage import data  # bundled photo, never part of a calibration folder
    out.append(("skimage astronaut", data.astronaut()[150:150 + side, 180:180 + side]))
  return out


def verify(fp32_model: bytes, int8_model: bytes, images, scale: int) -> dict:
  """Y-PSNR of the int8 model's uint8 output against the float model's, per image and mean."""
  f32, i8 = _session(fp32_model), _session(int8_model)
  per = {}
  for name, lr in images:
    a, b = _run(f32, lr), _run(i8, lr)
    crop = scale if 2 * scale < min(a.shape[:2]) else 0
    per[name] = metrics.psnr(b, a, crop=crop)
  # The mean over the images that differ: an identical image (inf dB) does not hide the rest.
  finite = [v for v in per.values() if math.isfinite(v)]
  return {"psnr_y_vs_fp32": _db(float(np.mean(finite)) if finite else math.inf),
          "min_psnr_y_vs_fp32": _db(min(per.values())),
          "per_image": {k: _db(v) for k, v in per.items()}}


def _db(v) -> float | str:
  """Rounded dB for reports and metadata; "inf" (a string, valid JSON) for identical outputs."""
  return round(float(v), 3) if math.isfinite(v) else "inf"


def quantize_int8(fp32_model: bytes, calibration, opts: Int8Options = Int8Options(), *,
                  scale: int, min_psnr: float = MIN_PSNR, cache_dir=None) -> tuple[bytes, dict]:
  """Calibrate, quantize, verify → (int8 model bytes with metadata, report); refuses (raises
  Int8VerificationError) when the mean held-out PSNR against the float model is below min_psnr."""
  import onnx  # optional dependency
  import onnxruntime
  opts.check()
  calib = calibration_set(calibration, opts, scale)
  int8, kept = quantize(fp32_model, calib, opts, cache_dir)
  check = verify(fp32_model, int8, verify_images(calib, opts, scale), scale)
  report = {
      "quantization": f"int8 static QDQ, onnxruntime {onnxruntime.__version__}",
      "calibration": calib.describe(opts),
      "method": {k: v for k, v in dataclasses.asdict(opts).items()
                 if k not in ("crops", "crop", "lr_from_hr", "seed")},
      "float_nodes": kept,
      "verification": {**check, "min_psnr": min_psnr,
                       "held_out": "calibration folder images that gave no crop"
                       if calib.held_out else "skimage astronaut (no image left in the folder)"},
  }
  if not float(check["psnr_y_vs_fp32"]) >= min_psnr:
    raise Int8VerificationError(
        f"int8 model reaches only {check['psnr_y_vs_fp32']} dB Y-PSNR against the float "
        f"model on held-out images (< {min_psnr:g} dB); not written")
  proto = onnx.load_from_string(int8)
  props = {p.key: p.value for p in proto.metadata_props}
  props.pop("onnx.quant.pre_process", None)
  for key in ("quantization", "calibration", "method", "float_nodes", "verification"):
    v = report[key]
    props[f"{META}int8_{key}"] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
  onnx.helper.set_model_props(proto, props)
  return proto.SerializeToString(), report
