"""int8 quantization of exported SR models: accuracy, speed and size of each option, measured.

  python benchmarks/int8_search.py [--model imdn --scale 2]
      [--stages grid,sensitivity,combined,confirm,latency]
      [--out benchmarks/results/int8_search_imdn_x2.json]

The float32 ONNX file is exported once (memsr_jax.export, official IMDN weights from ../shared)
into out/int8/ (ignored) and reused. Each candidate (`memsr_jax.deploy.quantize.Int8Options`) is
calibrated on T91 crops and scored by Y-PSNR lost against the float32 file on Set5 ×s (the
benchmark protocol: MATLAB bicubic LR from HR, Y channel, `scale` px border; the sets are never
used for calibration or selection of layers). Stages:
- grid: the options one at a time around a base (method, percentile, per-channel, reduce_range,
  activation type/symmetry, node groups kept in float, crop size and count, LR or HR crops).
- sensitivity: each Conv quantized alone (all else float), scored on BSD200 crops (neither a
  calibration nor a benchmark image) by Y-PSNR against the float model; then the k most sensitive
  convs kept in float, for several k, scored on Set5.
- combined: the grid's best changes together (BEST), with variations and the k most sensitive
  convs kept in float as well.
- confirm: the best few (by Set5 loss) on Set14 too, and ONNX Runtime latency side by side with
  the float32 file (same process, same 480×270 input, 5 interleaved repeats, median).
- final (for other scales): BASE and FINAL only, with Set14 and latency as in confirm.
- latency: the float32 file against BASE, BEST and FINAL only, 9 interleaved repeats.
Calibration ranges are cached per (model, crops, method) under out/int8/cache. Results are saved
after every candidate. The 2 cores were shared with other jobs while this ran: latencies are slow
and noisy in absolute terms; the ratios compare runs interleaved in one process.
"""
import argparse
import dataclasses
import json
import logging
import os
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = pathlib.Path(os.environ.get("MEMSR_SHARED", REPO.parent / "shared"))
DATA = SHARED / "datasets"
WORK = REPO / "out" / "int8"
# AVX-512 VNNI decides whether 8-bit weights saturate in ONNX Runtime's u8·s8 kernels (Linux only).
VNNI = "avx512_vnni" in (pathlib.Path("/proc/cpuinfo").read_text()
                         if pathlib.Path("/proc/cpuinfo").exists() else "")

from memsr_jax import evaluation  # noqa: E402
from memsr_jax.deploy import quantize  # noqa: E402
from memsr_jax.image import io as image_io  # noqa: E402
from memsr_jax.image import metrics  # noqa: E402

# Candidates are changes from these (ONNX Runtime's own defaults where it has one); the library's
# defaults (Int8Options()) are the FINAL candidate below.
SEARCH_DEFAULTS = dict(method="minmax", reduce_range=False, keep_float=(), crops=16, crop=64,
                       kept_weights="float32")
BASE = dict(reduce_range=True)  # u8·s8 without VNNI: 7-bit weights avoid int16 saturation
# The grid's best single changes together: percentile ranges, shallow-feature path in float.
BEST = dict(reduce_range=True, method="percentile", percentile=99.999,
            keep_float=("first_conv", "skip", "last_conv"))
# With the two convs the sensitivity stage ranked next (the "shallow" group) and more crops.
FINAL_AVX2 = {**BEST, "keep_float": ("first_conv", "skip", "shallow", "last_conv"), "crops": 64}
# The library's defaults: channel concatenations and channel attention in float as well (measured
# on an AVX-512 VNNI CPU), and the kept convs' weights stored int8 (file size).
FINAL = {**FINAL_AVX2, "keep_float": FINAL_AVX2["keep_float"] + ("concat", "attention"),
         "kept_weights": "int8"}


def fp32_file(model: str, scale: int) -> pathlib.Path:
  path = WORK / f"{model}_x{scale}.onnx"
  if not path.is_file():
    from memsr_jax.deploy import model_source
    from memsr_jax.deploy import onnx_export
    weights = SHARED / "weights" / "imdn" / f"IMDN_x{scale}.pth"
    m, params, info = model_source.load(model=model, scale=scale, torch_weights=str(weights))
    onnx_export.export_onnx(m, params, info, path)
  return path


def session(model: bytes):
  import onnxruntime as ort
  so = ort.SessionOptions()
  so.log_severity_level = 3
  s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
  name = s.get_inputs()[0].name
  return lambda x: s.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]


def set_psnr(model: bytes, dataset: str, scale: int) -> float:
  return evaluation.evaluate_dataset(session(model), dataset, scale, str(DATA))["psnr"]


def psnr_lost(fp32: bytes, int8: bytes, datasets, scale: int) -> dict:
  """{dataset: {"fp32_psnr", "int8_psnr", "lost_db"}}: the benchmark protocol's Y-PSNR of both
  files against HR (`set_psnr`); the one int8 PSNR helper of the benchmarks."""
  out = {}
  for ds in datasets:
    a, b = set_psnr(fp32, ds, scale), set_psnr(int8, ds, scale)
    out[ds] = {"fp32_psnr": a, "int8_psnr": b, "lost_db": a - b}
  return out


def proxy_images(n=4, side=128):
  files = sorted((DATA / "BSD200").glob("*.png"))[:n]
  out = []
  for f in files:
    img = image_io.read_image(f)
    y, x = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    out.append(img[y:y + side, x:x + side][None].astype(np.float32))
  return out


def vs_fp32_psnr(fp32_outs, model: bytes, scale: int) -> float:
  """Mean Y-PSNR (`metrics.psnr`, `scale` pixels cropped) of `model` against the float outputs."""
  run = session(model)
  return float(np.mean([metrics.psnr(metrics.to_uint8(run(x)[0]), ref, crop=scale)
                        for x, ref in fp32_outs]))


def options(changes: dict) -> quantize.Int8Options:
  changes = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
  return quantize.Int8Options(**{**SEARCH_DEFAULTS, **changes})


def quantized(fp32: bytes, opts: quantize.Int8Options, scale: int) -> tuple[bytes, float]:
  t0 = time.perf_counter()
  calib = quantize.calibration_set(DATA / "T91", opts, scale)
  model, _ = quantize.quantize(fp32, calib, opts, cache_dir=WORK / "cache")
  return model, time.perf_counter() - t0


def grid_candidates() -> list[dict]:
  c = [dict(reduce_range=False), {}]
  c += [dict(method="percentile", percentile=p) for p in (99.9, 99.99, 99.999)]
  c += [dict(method="entropy"), dict(per_channel=False), dict(activations="int8"),
        dict(activations="int8", symmetric_activations=True),
        dict(symmetric_activations=True)]
  c += [dict(keep_float=(g,)) for g in ("first_conv", "last_conv", "tail", "attention")]
  c += [dict(keep_float=("first_conv", "tail", "attention"))]
  c += [dict(crops=n, crop=s) for n, s in ((4, 64), (64, 64), (16, 128), (64, 128))]
  c += [dict(lr_from_hr=False), dict(exact_input=False), dict(op_types=("Conv",))]
  return [{**BASE, **x} for x in c]


def combined_candidates(sens: dict) -> list[dict]:
  c = [BEST, {**BEST, "percentile": 99.9999}, {**BEST, "crops": 64},
       {**BEST, "reduce_range": False, "weights": "uint8"},
       {**BEST, "keep_float": BEST["keep_float"] + ("attention",)}]
  worst = sorted(sens, key=lambda n: sens[n])
  c += [{**BEST, "keep_nodes": tuple(worst[:k])} for k in (4, 8, 16, 24)]
  c += [{**FINAL_AVX2, "crops": 16}, FINAL_AVX2, {**FINAL, "kept_weights": "float32"},
        {**FINAL, "op_types": ("Conv", "Relu", "LeakyRelu", "Slice")}, FINAL]
  return c


def conv_names(fp32: bytes) -> list[str]:
  import tempfile
  with tempfile.TemporaryDirectory() as tmp:
    model, _ = quantize.preprocess(fp32, pathlib.Path(tmp))
  return [n.name for n in model.graph.node if n.op_type == "Conv"]


def latency(models: dict[str, bytes], repeats=5, size=(480, 270)) -> dict[str, float]:
  """Median seconds of one call per model, interleaved in one process, same input."""
  from PIL import Image
  from skimage import data

  from memsr_jax.deploy import ort_backend
  x = np.asarray(Image.fromarray(data.astronaut()).resize(size, Image.BICUBIC), np.float32)[None]
  sess = {k: ort_backend.Session(b) for k, b in models.items()}  # the upscaler's settings
  for s in sess.values():
    s.run(x)  # warm-up
  times = {k: [] for k in sess}
  for _ in range(repeats):
    for k, s in sess.items():
      t0 = time.perf_counter()
      s.run(x)
      times[k].append(time.perf_counter() - t0)
  return {k: float(np.median(v)) for k, v in times.items()}


class Results:
  def __init__(self, path, header):
    self.path = pathlib.Path(path)
    self.data = json.loads(self.path.read_text()) if self.path.exists() else {}
    self.data.update(header)
    self.data.setdefault("candidates", {})

  def key(self, opts: dict) -> str:
    return json.dumps(opts, sort_keys=True)

  def save(self):
    self.data["load_average_end"] = os.getloadavg()
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self.path.write_text(json.dumps(self.data, indent=1))


def score(res: Results, fp32: bytes, opts: dict, scale: int, ref: dict, stage: str) -> dict:
  k = res.key(opts)
  if k in res.data["candidates"]:
    return res.data["candidates"][k]
  model, secs = quantized(fp32, options(opts), scale)
  row = {"options": opts, "stage": stage, "quantize_s": round(secs, 1), "vnni": VNNI,
         "size_ratio": len(model) / len(fp32),
         "set5_delta_db": set_psnr(model, "set5", scale) - ref["set5"]}
  res.data["candidates"][k] = row
  res.save()
  print(f"{stage}: {opts} Set5 Δ {row['set5_delta_db']:+.3f} dB, size ×{row['size_ratio']:.3f}",
        file=sys.stderr, flush=True)
  return row


def sensitivity(res: Results, fp32: bytes, scale: int, ref: dict, ks=(2, 4, 8, 12, 16)):
  convs = conv_names(fp32)
  run = session(fp32)
  fp32_outs = [(x, metrics.to_uint8(run(x)[0])) for x in proxy_images()]
  sens = res.data.setdefault("sensitivity", {})
  for name in convs:
    if name not in sens:
      model, _ = quantized(fp32, options({**BASE, "only_nodes": (name,)}), scale)
      sens[name] = vs_fp32_psnr(fp32_outs, model, scale)
      res.save()
      print(f"sensitivity {name}: {sens[name]:.2f} dB vs fp32", file=sys.stderr, flush=True)
  worst = sorted(convs, key=lambda n: sens[n])  # lowest PSNR vs float = most sensitive
  for k in ks:
    score(res, fp32, {**BASE, "keep_nodes": tuple(worst[:k])}, scale, ref, f"sensitivity top{k}")


def confirm(res: Results, fp32: bytes, scale: int, ref: dict, n_best=3):
  """Set14 and latency for the n best by Set5 loss, and BASE, BEST, FINAL."""
  cands = res.data["candidates"]
  rows = sorted(cands.values(), key=lambda r: -r["set5_delta_db"])[:n_best]
  rows += [cands[res.key(o)] for o in (BASE, BEST, FINAL) if res.key(o) in cands]
  rows = list({res.key(r["options"]): r for r in rows}.values())
  models = {"fp32": fp32}
  for r in rows:
    models[res.key(r["options"])], _ = quantized(fp32, options(r["options"]), scale)
    if "set14_delta_db" not in r:
      r["set14_delta_db"] = set_psnr(models[res.key(r["options"])], "set14", scale) - ref["set14"]
      res.save()
  lat = latency(models)
  for r in rows:
    k = res.key(r["options"])
    r.update(latency_s=lat[k], fp32_latency_s=lat["fp32"], speed_ratio=lat["fp32"] / lat[k])
    print(f"confirm: {r}", file=sys.stderr, flush=True)
  res.data["confirm_latency"] = {"input": [480, 270], "repeats": 5, "median_s": lat,
                                 "load_average": os.getloadavg()}
  res.save()


def latency_final(res: Results, fp32: bytes, scale: int, repeats=9):
  """fp32 vs BASE, BEST, FINAL_AVX2 and FINAL, more repeats (the confirm stage's 5 are noisy)."""
  models = {"fp32": fp32}
  for o in (BASE, BEST, FINAL_AVX2, FINAL):
    models[res.key(o)], _ = quantized(fp32, options(o), scale)
  lat = latency(models, repeats=repeats)
  res.data["latency_final"] = {
      "input": [480, 270], "repeats": repeats, "median_s": lat,
      "speed_ratio": {k: lat["fp32"] / v for k, v in lat.items() if k != "fp32"},
      "load_average": os.getloadavg()}
  res.save()
  print(json.dumps(res.data["latency_final"], indent=1), file=sys.stderr)


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", default="imdn")
  p.add_argument("--scale", type=int, default=2)
  p.add_argument("--stages", default="grid,sensitivity,combined,confirm,latency")
  p.add_argument("--out")
  args = p.parse_args()
  logging.disable(logging.WARNING)  # the quantizer's advice on pre-processing, done here
  import onnxruntime
  WORK.mkdir(parents=True, exist_ok=True)
  fp32 = fp32_file(args.model, args.scale).read_bytes()
  out = args.out or REPO / f"benchmarks/results/int8_search_{args.model}_x{args.scale}.json"
  res = Results(out, {"model": args.model, "scale": args.scale, "fp32_bytes": len(fp32),
                      "onnxruntime": onnxruntime.__version__, "cpus": os.cpu_count(),
                      "load_average_start": os.getloadavg(), "vnni_last_run": VNNI,
                      "search_defaults": dataclasses.asdict(options({})),
                      "options_are": "changes from search_defaults",
                      "note": "2 shared cores under load: latency ratios from interleaved "
                              "runs in one process; absolute seconds are not idle figures"})
  ref = res.data.setdefault("fp32_psnr", {})
  for ds in ("set5", "set14"):
    if ds not in ref:
      ref[ds] = set_psnr(fp32, ds, args.scale)
  res.save()
  stages = args.stages.split(",")
  if "grid" in stages:
    for opts in grid_candidates():
      score(res, fp32, opts, args.scale, ref, "grid")
  if "sensitivity" in stages:
    sensitivity(res, fp32, args.scale, ref)
  if "combined" in stages:
    for opts in combined_candidates(res.data["sensitivity"]):
      score(res, fp32, opts, args.scale, ref, "combined")
  if "final" in stages:  # another model or scale: the naive base and the defaults only
    for opts in (BASE, FINAL):
      score(res, fp32, opts, args.scale, ref, "final")
    confirm(res, fp32, args.scale, ref, n_best=0)
  if "confirm" in stages:
    confirm(res, fp32, args.scale, ref)
  if "latency" in stages:
    latency_final(res, fp32, args.scale)
  print(f"saved {out}")


if __name__ == "__main__":
  main()
