"""int8 of models trained here: Y-PSNR lost, size and speed against their float32 ONNX files.

  python benchmarks/int8_checkpoints.py CKPT[,NAME] [CKPT[,NAME] ...]
      [--out benchmarks/results/int8_checkpoints.json] [--repeats 7]

Each CKPT (a training workdir or a checkpoint folder) is exported to float32 ONNX
(`deploy.onnx_export.export_onnx`, verified against JAX), quantized with the library's default
options (`deploy.quantize.Int8Options()`) calibrated on ../shared T91, and both files are scored by
the benchmark protocol on Set5 and Set14 at the checkpoint's scale (never calibration data), also
when the export's verification (default --min_psnr 40) would refuse the file. Speed:
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

from memsr_jax import jsonio  # noqa: E402
from memsr_jax.deploy import model_source  # noqa: E402
from memsr_jax.deploy import onnx_export  # noqa: E402
from memsr_jax.deploy import quantize  # noqa: E402

WORK = int8_search.WORK / "checkpoints"


def measure(ckpt: str, name: str, repeats: int) -> dict:
  model, params, info = model_source.load(checkpoint=ckpt)
  scale = int(info["scale"])
  fp32_path = WORK / f"{name}.onnx"
  if not fp32_path.is_file():
    onnx_export.export_onnx(model, params, info, fp32_path)
  fp32 = fp32_path.read_bytes()
  t0 = time.perf_counter()
  # min_psnr 0: measure the loss even where `export --quantize int8` would refuse the file.
  int8, report = quantize.quantize_int8(fp32, int8_search.DATA / "T91", scale=scale,
                                        min_psnr=0.0)
  ver = float(report["verification"]["psnr_y_vs_fp32"])
  row = {"checkpoint": str(pathlib.Path(ckpt).resolve()), "model": info["model"], "scale": scale,
         "step": info["step"], "quantize_s": round(time.perf_counter() - t0, 1),
         "fp32_bytes": len(fp32), "int8_bytes": len(int8), "size_ratio": len(int8) / len(fp32),
         "verification_psnr_y_vs_fp32": ver,
         "export_would_write": ver >= quantize.MIN_PSNR,
         "float_nodes": {k: len(v) for k, v in report["float_nodes"].items()}}
  row.update(int8_search.psnr_lost(fp32, int8, ("set5", "set14"), scale))
  lat = int8_search.latency({"fp32": fp32, "int8": int8}, repeats=repeats)
  row.update(latency_s=lat, speed_ratio=lat["fp32"] / lat["int8"], load_average=os.getloadavg())
  return row


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("checkpoints", nargs="+", help="CKPT or CKPT,NAME")
  p.add_argument("--out", default=str(REPO / "benchmarks/results/int8_checkpoints.json"))
  p.add_argument("--repeats", type=int, default=7)
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
    ckpt, _, name = spec.partition(",")
    name = name or pathlib.Path(ckpt).name
    rows[name] = measure(ckpt, name, args.repeats)
    r = rows[name]
    print(f"{name}: ×{r['scale']} lost Set5 {r['set5']['lost_db']:.3f} / Set14 "
          f"{r['set14']['lost_db']:.3f} dB, {r['speed_ratio']:.2f}× speed, "
          f"{r['size_ratio']:.2f}× size", flush=True)
    jsonio.write_json(out, results)
  print(f"saved {out}")


if __name__ == "__main__":
  main()
