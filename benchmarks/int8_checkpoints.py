"""int8 of models trained here: Y-PSNR lost, size and speed against their float32 ONNX files.

  python benchmarks/int8_checkpoints.py CKPT[,NAME[,FLOAT_CKPT]] [...]
      [--out benchmarks/results/int8_checkpoints.json] [--repeats 9] [--datasets set5,set14]

Each CKPT (a training workdir or a checkpoint folder) is exported to float32 ONNX
(`deploy.onnx_export.export_onnx`, verified against JAX), quantized with the library's default
options (`deploy.quantize.Int8Options()`) calibrated on ../shared T91, and both files are scored by
the benchmark protocol on --datasets at the checkpoint's scale (never calibration data), also
when the export's verification (default --min_psnr 40) would refuse the file. A
quantization-aware-trained CKPT (`python -m memsr_jax.qat`, or a MemSR workdir's `qat/`) is
quantized with its trained ranges pinned (`deploy.qat_export`, no calibration) and compared with
the float file of FLOAT_CKPT (the model it was trained from; default CKPT itself). Speed:
float and int8 sessions (the upscaler's settings) interleaved in one process on the same
480×270 input, `--repeats` calls each, median. The files go to out/int8/checkpoints/ (ignored).
"""
import argparse
import json
import logging
import os
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import int8_search  # noqa: E402

from memsr_jax.deploy import model_source  # noqa: E402
from memsr_jax.deploy import onnx_export  # noqa: E402
from memsr_jax.deploy import qat_export  # noqa: E402
from memsr_jax.deploy import quantize  # noqa: E402
from memsr_jax.utils import jsonio  # noqa: E402

WORK = int8_search.WORK / "checkpoints"


def _fp32(ckpt: str, name: str) -> bytes:
  model, params, info = model_source.load(checkpoint=ckpt)
  path = WORK / f"{name}.onnx"
  if not path.is_file():
    onnx_export.export_onnx(model, params, info, path)
  return path.read_bytes()


def measure(ckpt: str, name: str, repeats: int, float_ckpt: str = "",
            datasets=("set5", "set14")) -> dict:
  model, params, info = model_source.load(checkpoint=ckpt)
  scale = int(info["scale"])
  fp32 = _fp32(ckpt, name)
  ranges = qat_export.checkpoint_ranges(ckpt)
  t0 = time.perf_counter()
  # min_psnr 0: measure the loss even where `export --quantize int8` would refuse the file.
  if ranges is not None:
    int8, report = qat_export.quantize_qat(fp32, model, params, ranges, scale=scale)
  else:
    int8, report = quantize.quantize_int8(fp32, int8_search.DATA / "T91", scale=scale,
                                          min_psnr=0.0)
  if float_ckpt:
    fp32 = _fp32(float_ckpt, f"{name}_float")
  ver = float(report["verification"]["psnr_y_vs_fp32"])
  row = {"checkpoint": str(pathlib.Path(ckpt).resolve()), "model": info["model"], "scale": scale,
         "step": info["step"], "quantize_s": round(time.perf_counter() - t0, 1),
         "fp32_bytes": len(fp32), "int8_bytes": len(int8), "size_ratio": len(int8) / len(fp32),
         "verification_psnr_y_vs_fp32": ver,
         "float_checkpoint": str(pathlib.Path(float_ckpt or ckpt).resolve()),
         "qat": ranges is not None,
         "simulator_psnr": (report.get("simulator") or {}).get("psnr_rgb_vs_simulator"),
         "export_would_write": ranges is not None or ver >= quantize.MIN_PSNR,
         "float_nodes": {k: len(v) for k, v in report.get("float_nodes", {}).items()}}
  row.update(int8_search.psnr_lost(fp32, int8, datasets, scale))
  lat = int8_search.latency({"fp32": fp32, "int8": int8}, repeats=repeats)
  row.update(latency_s=lat, speed_ratio=lat["fp32"] / lat["int8"], load_average=os.getloadavg())
  return row


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("checkpoints", nargs="+", help="CKPT, CKPT,NAME or CKPT,NAME,FLOAT_CKPT")
  p.add_argument("--datasets", default="set5,set14")
  p.add_argument("--out", default=str(REPO / "benchmarks/results/int8_checkpoints.json"))
  p.add_argument("--repeats", type=int, default=9)
  args = p.parse_args()
  logging.disable(logging.WARNING)  # the quantizer's advice on pre-processing, done here
  import onnxruntime
  WORK.mkdir(parents=True, exist_ok=True)
  out = pathlib.Path(args.out)
  results = json.loads(out.read_text()) if out.exists() else {}
  results.update(onnxruntime=onnxruntime.__version__, vnni=int8_search.VNNI,
                 options=str(quantize.Int8Options()))
  rows = results.setdefault("models", {})
  for spec in args.checkpoints:
    ckpt, name, float_ckpt = (spec.split(",") + ["", ""])[:3]
    name = name or pathlib.Path(ckpt).name
    datasets = tuple(args.datasets.split(","))
    rows[name] = measure(ckpt, name, args.repeats, float_ckpt, datasets)
    r = rows[name]
    lost = " / ".join(f"{ds} {r[ds]['lost_db']:.3f}" for ds in datasets)
    print(f"{name}: ×{r['scale']} lost {lost} dB, {r['speed_ratio']:.2f}× speed, "
          f"{r['size_ratio']:.2f}× size", flush=True)
    jsonio.write_json(out, results)
  print(f"saved {out}")


if __name__ == "__main__":
  main()
