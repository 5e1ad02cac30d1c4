"""Y-PSNR on benchmark sets of trained compression runs (and of bicubic / imported teachers).

  MEMSR_DATA_DIR=../shared/datasets python benchmarks/compress_eval.py \
      --run kd=runs/cpu_edsrmini_kd/distill --run scratch=runs/cpu_edsrmini_scratch/distill \
      --torch imdn_teacher=imdn:../shared/weights/imdn/IMDN_x2.pth --bicubic \
      --sets set5,set14 --out runs/compress_eval.json

Protocol of memsr_jax/evaluation/protocol.py (MATLAB-bicubic LR, clip + round, Y channel,
`scale`-pixel border crop) through memsr_jax.evaluation.validation. A run is any training workdir
or model checkpoint (a training workdir's last checkpoint, or with --best its best by validation
PSNR). Writes {label: {set: psnr}} as JSON and prints a Markdown table.
"""
import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.evaluation import validation
from memsr_jax.image import bicubic
from memsr_jax.image import metrics
from memsr_jax.interop import torch_import
from memsr_jax.models import registry


def _predictors(args):
  for spec in args.run:
    label, path = spec.split("=", 1)
    step = None
    if "@" in path:  # workdir@step: that training step's checkpoint
      path, step = path.rsplit("@", 1)
      step = int(step)
    elif (pathlib.Path(path) / ckpt_lib.CKPT_DIR).is_dir() and not args.best:
      # The final weights, not the best-by-validation ones (validation is Set5: no peeking).
      ck = ckpt_lib.TrainCheckpointer(path, read_only=True)
      step = ck.latest_step()
      ck.close()
    model, params, meta = ckpt_lib.load_model_checkpoint(path, step=step)
    yield label, model, params, {"model": meta.get("model"), "step": meta.get("step")}
  for spec in args.torch:
    label, rest = spec.split("=", 1)
    name, path = rest.split(":", 1)
    params = torch_import.load_torch_weights(path, name, args.scale)
    yield label, registry.build_model(name, scale=args.scale), params, {"model": name}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--run", action="append", default=[], help="label=workdir_or_checkpoint[@step]")
  ap.add_argument("--torch", action="append", default=[], help="label=model_name:weights.pth")
  ap.add_argument("--bicubic", action="store_true", help="add the bicubic-upscaling baseline")
  ap.add_argument("--sets", default="set5,set14")
  ap.add_argument("--root", default="", help="data root ('' = $MEMSR_DATA_DIR)")
  ap.add_argument("--scale", type=int, default=2)
  ap.add_argument("--best", action="store_true",
                  help="evaluate a workdir's best-by-validation checkpoint instead of its last")
  ap.add_argument("--out", default="results_compress_eval.json")
  args = ap.parse_args(argv)

  sets = [s.strip() for s in args.sets.split(",") if s.strip()]
  pairs = {s: validation.load_val_pairs(s, args.root, args.scale) for s in sets}
  results = {}
  if args.bicubic:
    results["bicubic"] = {}
    for s in sets:
      vals = [metrics.psnr(bicubic.round_like_matlab(bicubic.imresize_np(lr, args.scale)), hr,
                           crop=args.scale) for _, lr, hr in pairs[s]]
      results["bicubic"][s] = float(np.mean(vals))
    print("bicubic", results["bicubic"], flush=True)
  for label, model, params, info in _predictors(args):
    predict = lambda p, e, x, m=model: m.apply({"params": p}, x)
    results[label] = {}
    for s in sets:
      results[label][s] = validation.Validator(predict, pairs[s], args.scale)(params, {})[
          "val_psnr"]
    results[label]["mean"] = float(np.mean([results[label][s] for s in sets]))
    results[label].update({k: v for k, v in info.items() if v is not None})
    print(label, results[label], flush=True)
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(results, indent=1))
  print("| run | " + " | ".join(sets) + " |\n|---|" + "---|" * len(sets))
  for label, r in results.items():
    print(f"| {label} | " + " | ".join(f"{r[s]:.3f}" for s in sets) + " |")
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
