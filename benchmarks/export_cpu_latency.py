"""CPU latency and peak RSS of one 1920×1080 output: JAX vs PyTorch vs ONNX Runtime, side by side.

  python benchmarks/export_cpu_latency.py [--models plain_m:2,plain_m:4,edsr_baseline:2,imdn:2]
      [--hr 1920x1080] [--with_100mp] [--out benchmarks/results/export_cpu_latency.json]

Per model: the ONNX file is exported (memsr_jax.export, random weights seed 0 — IMDN gets the
official ×2 weights when ../shared has them, so its torch column runs the official architecture),
then each backend runs in its OWN subprocess (one backend's memory never pollutes another's):
build the model, one warm-up call (JAX compiles, ORT/torch allocate), then one measured call whose
wall time is the latency and whose peak RSS growth (VmHWM reset via /proc/self/clear_refs just
before it, as in measure/torch_bench.py) is the working memory of the inference (activations +
output; weights and input are resident before). `process_peak_mb` is the subprocess's whole peak
(runtime + weights + warm-up + call). Outputs are compared to JAX's (max |diff| on 0..255).
Torch: the memsr_jax.interop.torch_models references (plain, EDSR with the JAX weights; IMDN with
the official weights). ONNX Runtime: the session the upscaler uses (no arena, all graph
optimizations).
ONNX Runtime int8: the file `memsr_jax.deploy.quantize.quantize_int8` makes from the exported one
(its default options, calibrated on ../shared T91), same session settings; for IMDN (official
weights) the Y-PSNR it loses against the float file on Set5 and Set14 is measured too.
With --with_100mp: the upscale CLI with --onnx (ONNX Runtime), --max_memory 256MB, streamed PNG
in/out, plain_s ×4 2500×2500 → 10000×10000; peak RSS (wait4) minus the runtime overhead.
"""
import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = pathlib.Path(os.environ.get("MEMSR_SHARED", REPO.parent / "shared"))
BACKENDS = ("jax", "torch", "onnxruntime", "onnxruntime_int8")


def _imdn_weights(scale):
  p = SHARED / "weights" / "imdn" / f"IMDN_x{scale}.pth"
  return p if p.is_file() else None


def build(name, scale):
  """(model, params, weights description): random seed 0, or official IMDN weights."""
  from memsr_jax.models import registry
  model = registry.build_model(name, scale=scale)
  if name == "imdn" and _imdn_weights(scale):
    from memsr_jax.interop.torch_import import load_torch_weights
    return model, load_torch_weights(_imdn_weights(scale), "imdn", scale), "official IMDN"
  from memsr_jax.models.registry import random_params
  return model, random_params(model, 0), "random (seed 0)"


def lr_image(hr_w, hr_h, scale):
  from PIL import Image
  from skimage import data
  img = Image.fromarray(data.astronaut()).resize((hr_w // scale, hr_h // scale), Image.BICUBIC)
  return np.asarray(img, np.float32)[None]


def _status_kb(field):
  for line in pathlib.Path("/proc/self/status").read_text().splitlines():
    if line.startswith(field + ":"):
      return int(line.split()[1])
  raise KeyError(field)


def measure(fn):
  fn()  # warm-up
  pathlib.Path("/proc/self/clear_refs").write_text("5")
  base = _status_kb("VmRSS")
  t0 = time.perf_counter()
  out = fn()
  dt = time.perf_counter() - t0
  return out, {"latency_s": dt, "call_peak_growth_mb": (_status_kb("VmHWM") - base) / 1024,
               "resident_before_call_mb": base / 1024}


def worker(backend, name, scale, hr, onnx_path, out_npy):
  from memsr_jax.utils.procmem import tighten_allocator
  tighten_allocator()  # same allocator settings for all three (freed blocks leave RSS)
  hr_w, hr_h = hr
  x = lr_image(hr_w, hr_h, scale)
  info = {}
  if backend.startswith("onnxruntime"):
    import onnxruntime

    from memsr_jax.deploy import ort_backend
    sess = ort_backend.Session(int8_path(onnx_path) if backend.endswith("int8") else onnx_path)
    out, info = measure(lambda: sess.run(x))
    info["version"] = onnxruntime.__version__
  else:
    model, params, _ = build(name, scale)
    if backend == "jax":
      import jax
      f = jax.jit(lambda p, x: model.apply({"params": p}, x))
      out, info = measure(lambda: np.asarray(f(params, x)))
      info["version"] = jax.__version__
    else:
      import torch
      torch.set_num_threads(os.cpu_count())
      xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
      if name == "imdn":
        from memsr_jax.interop import torch_models
        from memsr_jax.interop.torch_import import unwrap_state_dict
        tm = torch_models.IMDNRef(scale).eval()
        sd = unwrap_state_dict(torch.load(str(_imdn_weights(scale)), map_location="cpu",
                                          weights_only=True))
        tm.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in sd.items()})
        call = lambda: tm(xt / 255.0) * 255.0  # noqa: E731  (the release works on 0..1)
      else:
        from memsr_jax.measure import torch_bench
        tm = torch_bench.build_torch(model, params)
        call = lambda: tm(xt)  # noqa: E731

      def run():
        with torch.inference_mode():
          return call().numpy().transpose(0, 2, 3, 1)
      out, info = measure(run)
      info["version"] = torch.__version__
      info["threads"] = torch.get_num_threads()
  info["process_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  np.save(out_npy, np.asarray(out, np.float32))
  print(json.dumps(info))


def _run(cmd, timeout=1800):
  t0 = time.perf_counter()
  p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                     env={**os.environ, "PYTHONPATH": str(REPO)})
  if p.returncode:
    raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{p.stderr[-2000:]}")
  return p.stdout.strip().splitlines()[-1], time.perf_counter() - t0


def export_worker(name, scale, path):
  import logging
  logging.disable(logging.WARNING)
  from memsr_jax.deploy import onnx_export
  model, params, weights = build(name, scale)
  # Random deep nets' outputs leave 0..255, where the 1e-3 bound does not apply: record, not gate.
  rep = onnx_export.export_onnx(model, params, {"model": name}, path, tolerance=float("inf"),
                                overwrite=True)
  print(json.dumps({"max_abs_diff_vs_jax_highest": rep["max_abs_diff"], "weights": weights,
                    "onnx_mb": rep["bytes"] / 1e6}))


def int8_path(onnx_path):
  p = pathlib.Path(onnx_path)
  return p.with_name(p.stem + "_int8.onnx")


def int8_worker(name, scale, path):
  """The int8 file (quantize.Int8Options defaults, calibrated on T91) and its PSNR lost."""
  import logging
  logging.disable(logging.WARNING)
  from memsr_jax.deploy import quantize
  fp32 = pathlib.Path(path).read_bytes()
  t0 = time.perf_counter()
  int8, rep = quantize.quantize_int8(fp32, SHARED / "datasets" / "T91", scale=scale)
  out = {"seconds": time.perf_counter() - t0, "int8_mb": len(int8) / 1e6,
         "size_ratio": len(int8) / len(fp32),
         "psnr_y_vs_fp32_held_out_t91": rep["verification"]["psnr_y_vs_fp32"]}
  int8_path(path).write_bytes(int8)
  if name == "imdn" and _imdn_weights(scale):  # PSNR lost only means something for trained weights
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import int8_search  # the benchmarks' one int8 PSNR helper
    for ds, r in int8_search.psnr_lost(fp32, int8, ("set5", "set14"), scale).items():
      out[f"{ds}_psnr_fp32_int8"] = [r["fp32_psnr"], r["int8_psnr"]]
      out[f"{ds}_psnr_lost_db"] = r["lost_db"]
  print(json.dumps(out))


def bench_model(name, scale, hr, tmp, backends):
  onnx_path = tmp / f"{name}_x{scale}.onnx"
  line, sec = _run([sys.executable, __file__, "--export_worker", name, str(scale), str(onnx_path)])
  row = {"model": name, "scale": scale, "lr": [hr[0] // scale, hr[1] // scale],
         "export": {**json.loads(line), "seconds": sec}}
  if "onnxruntime_int8" in backends:
    line, sec = _run([sys.executable, __file__, "--int8_worker", name, str(scale),
                      str(onnx_path)])
    row["int8_export"] = json.loads(line)
  outs = {}
  for b in backends:
    npy = tmp / f"{name}_x{scale}_{b}.npy"
    try:
      line, sec = _run([sys.executable, __file__, "--worker", b, name, str(scale),
                        f"{hr[0]}x{hr[1]}", str(onnx_path), str(npy)])
      row[b] = {**json.loads(line), "subprocess_s": sec}
      outs[b] = npy
    except RuntimeError as e:
      row[b] = {"error": str(e).splitlines()[-1]}
    print(f"  {name} ×{scale} {b}: {row[b]}", file=sys.stderr, flush=True)
  if "jax" in outs:
    ref = np.load(outs["jax"])
    for b in outs:
      if b != "jax":
        row[b]["max_abs_diff_vs_jax"] = float(np.abs(np.load(outs[b]) - ref).max())
  f32, i8 = (row.get(b, {}).get("latency_s") for b in ("onnxruntime", "onnxruntime_int8"))
  if f32 and i8:
    row["int8_speed_vs_fp32_ort"] = f32 / i8
  return row


OVERHEAD = """
import resource, numpy, onnxruntime
import memsr_jax.upscale, memsr_jax.deploy.ort_backend
from memsr_jax.utils.procmem import tighten_allocator
tighten_allocator()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def bench_100mp(tmp, budget="256MB", model="plain_s", n=2500):
  """The upscale CLI through ONNX Runtime on a 2500×2500 PNG, ×4, streamed, within `budget`."""
  inp = tmp / "in" / "astronaut_2500.png"
  inp.parent.mkdir(exist_ok=True)
  subprocess.run([sys.executable, "-c", (
      "import sys, numpy as np; from PIL import Image; from skimage import data; "
      "from memsr_jax.deploy.png_stream import PNGRowWriter; n=int(sys.argv[1]); "
      "img=np.asarray(Image.fromarray(data.astronaut()).resize((n, n), Image.BICUBIC)); "
      "w=PNGRowWriter(sys.argv[2], n, n, level=1); w.write_rows(img); w.close()"),
      str(n), str(inp)], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
  onnx_path = tmp / f"{model}_x4.onnx"
  _run([sys.executable, __file__, "--export_worker", model, "4", str(onnx_path)])
  p = subprocess.run([sys.executable, "-c", OVERHEAD], capture_output=True, text=True,
                     cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
  overhead = int(p.stdout.strip().splitlines()[-1])
  cmd = [sys.executable, "-m", "memsr_jax.upscale", "--onnx", str(onnx_path), "--input",
         str(inp), "--output", str(tmp / "out"), "--max_memory",
         budget, "--stream_input", "always", "--png_level", "1"]
  t0 = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  _, status, usage = os.wait4(proc.pid, 0)
  err = proc.stderr.read()
  if os.waitstatus_to_exitcode(status):
    raise RuntimeError(f"upscale failed: {err[-1000:]}")
  peak = usage.ru_maxrss * 1024
  out_png = tmp / "out" / "astronaut_2500.png"
  res = {"model": model, "scale": 4, "lr": [n, n], "hr": [4 * n, 4 * n], "budget": budget,
         "seconds": time.perf_counter() - t0, "peak_rss_mb": peak / 1e6,
         "runtime_overhead_mb": overhead / 1e6, "working_memory_mb": (peak - overhead) / 1e6,
         "output_png_mb": out_png.stat().st_size / 1e6, "cli_summary": err.strip()[-300:]}
  out_png.unlink()
  return res


def table(rows):
  head = ("| model | scale | LR | JAX s | torch s | ORT s | ORT/torch speed | JAX MB | torch MB | "
          "ORT MB | ORT max diff vs JAX | ORT int8 s | int8 MB | int8 PSNR lost Set5 / Set14 |")
  lines = [head, "|" + "---|" * 14]
  def g(r, b, k, fmt="{:.1f}"):
    v = r.get(b, {}).get(k)
    return fmt.format(v) if isinstance(v, (int, float)) else "n/a"

  for r in rows:
    t, o = r.get("torch", {}).get("latency_s"), r.get("onnxruntime", {}).get("latency_s")
    speed = f"{t / o:.2f}×" if t and o else "n/a"
    lines.append(
        f"| {r['model']} | ×{r['scale']} | {r['lr'][0]}×{r['lr'][1]} | "
        f"{g(r, 'jax', 'latency_s')} | {g(r, 'torch', 'latency_s')} | "
        f"{g(r, 'onnxruntime', 'latency_s')} | {speed} | "
        f"{g(r, 'jax', 'call_peak_growth_mb', '{:.0f}')} | "
        f"{g(r, 'torch', 'call_peak_growth_mb', '{:.0f}')} | "
        f"{g(r, 'onnxruntime', 'call_peak_growth_mb', '{:.0f}')} | "
        f"{g(r, 'onnxruntime', 'max_abs_diff_vs_jax', '{:.2g}')} | "
        f"{g(r, 'onnxruntime_int8', 'latency_s')} | "
        f"{g(r, 'onnxruntime_int8', 'call_peak_growth_mb', '{:.0f}')} | "
        f"{g(r, 'int8_export', 'set5_psnr_lost_db', '{:.3f}')} / "
        f"{g(r, 'int8_export', 'set14_psnr_lost_db', '{:.3f}')} |")
  return "\n".join(lines)


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--models", default="plain_m:2,plain_m:4,edsr_baseline:2,imdn:2")
  p.add_argument("--backends", default=",".join(BACKENDS))
  p.add_argument("--hr", default="1920x1080")
  p.add_argument("--with_100mp", action="store_true")
  p.add_argument("--only_100mp", action="store_true")
  p.add_argument("--out", default=str(REPO / "benchmarks/results/export_cpu_latency.json"))
  p.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
  p.add_argument("--export_worker", nargs=3, help=argparse.SUPPRESS)
  p.add_argument("--int8_worker", nargs=3, help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.worker:
    b, name, scale, hr, onnx_path, npy = args.worker
    return worker(b, name, int(scale), tuple(map(int, hr.split("x"))), onnx_path, npy)
  if args.export_worker:
    name, scale, path = args.export_worker
    return export_worker(name, int(scale), path)
  if args.int8_worker:
    name, scale, path = args.int8_worker
    return int8_worker(name, int(scale), path)
  hr = tuple(map(int, args.hr.split("x")))
  out = pathlib.Path(args.out)
  result = json.loads(out.read_text()) if args.only_100mp and out.exists() else {}
  load_start = os.getloadavg()
  with tempfile.TemporaryDirectory(prefix="export_bench_") as tmp:
    tmp = pathlib.Path(tmp)
    if not args.only_100mp:
      rows = []
      for item in args.models.split(","):
        name, scale = item.split(":")
        print(f"{name} ×{scale} …", file=sys.stderr, flush=True)
        rows.append(bench_model(name, int(scale), hr, tmp, args.backends.split(",")))
      result = {
          "hr": list(hr), "rows": rows, "table": table(rows),
          "method": "each backend in its own subprocess; 1 warm-up call, then 1 measured call "
                    "(latency = its wall time; memory = its peak RSS growth, VmHWM reset via "
                    "/proc/self/clear_refs; glibc mmap threshold 1 MiB). One repeat only: the "
                    "machine is 2 shared cores, latencies are noisy (see load_average)",
          "repeats": 1, "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                    "load_average_start": load_start}}
    if args.with_100mp or args.only_100mp:
      print("100 MP …", file=sys.stderr, flush=True)
      result["upscale_100mp_onnxruntime"] = bench_100mp(tmp)
  result["load_average_end"] = os.getloadavg()
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=2))
  if "table" in result:
    print(result["table"])
  if "upscale_100mp_onnxruntime" in result:
    print(json.dumps(result["upscale_100mp_onnxruntime"], indent=2))
  print(f"saved {out}")


if __name__ == "__main__":
  main()
