"""A 100-megapixel output (×4, 2500×2500 → 10000×10000) from a plain net within a memory budget.

  python benchmarks/upscale_100mp.py [--model plain_s] [--max_memory 256MB] [--workdir /tmp/...]

Steps, each in its own process so that each peak RSS is its own:
1. input: skimage's astronaut resized (bicubic) to 2500×2500, saved as PNG;
2. overhead: peak RSS of a trivial JAX process (import jax + flax + this package, one tiny jit);
3. the upscale CLI with `--max_memory` and row-streamed PNG input and output: peak RSS (wait4);
4. exactness: two regions of the 10000×10000 PNG (a corner and an interior block, read back row by
   row) against whole-image inference (`model.apply`) on LR crops large enough for the receptive
   field (the crop's own border coincides with the image border at the corner).
The model has RANDOM weights (`--model` preset, `models.registry.random_params` seed 0, non-zero
biases); exactness does not depend on training.
Prints and saves JSON (`<workdir>/upscale_100mp.json`, and --json).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import jax.numpy as jnp
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from memsr_jax.deploy.budget import parse_memory  # noqa: E402  (after the sys.path insert)
from memsr_jax.deploy.png_stream import PNGRowReader  # noqa: E402
from memsr_jax.deploy.receptive_field import receptive_radius  # noqa: E402
from memsr_jax.models import registry  # noqa: E402
from memsr_jax.models.registry import random_params  # noqa: E402

OVERHEAD_SNIPPET = """
import resource, jax, jax.numpy as jnp, flax, numpy
import memsr_jax.deploy.tiling
jax.jit(lambda x: x + 1)(jnp.ones(4)).block_until_ready()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""

MAKE_INPUT_SNIPPET = """
import sys, numpy as np
from PIL import Image
from skimage import data
from memsr_jax.deploy.png_stream import PNGRowWriter
n = int(sys.argv[1])
img = np.asarray(Image.fromarray(data.astronaut()).resize((n, n), Image.BICUBIC))
with PNGRowWriter(sys.argv[2], n, n) as w:
  w.write_rows(img)
"""


def peak_rss_of(cmd, env) -> tuple[int, int, float, str]:
  """(returncode, peak RSS bytes, seconds, output) of `cmd`, run under a fresh wrapper process
  whose RUSAGE_CHILDREN maximum is exactly that one child's peak RSS."""
  wrapper = ("import resource, subprocess, sys; "
             "p = subprocess.run(sys.argv[1:]); "
             "print('PEAK_RSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, "
             "file=sys.stderr); sys.exit(p.returncode)")
  t0 = time.time()
  proc = subprocess.run([sys.executable, "-c", wrapper] + cmd, env=env, capture_output=True,
                        text=True)
  rc, secs, text = proc.returncode, time.time() - t0, proc.stdout + proc.stderr
  peak = 0
  for line in text.splitlines():
    if line.startswith("PEAK_RSS"):
      peak = int(line.split()[1])
  return rc, peak, secs, text


def check_regions(model_name, scale, seed, lr_path, sr_path, regions):
  """Max |diff| between the streamed SR PNG and model.apply on LR crops (uint8, after rounding)."""
  model = registry.build_model(model_name, scale=scale)
  params = random_params(model, seed)
  halo = receptive_radius(model)
  with PNGRowReader(lr_path) as r:
    lr = r.read(r.height)
  results = []
  for (y0, x0, n) in regions:
    a, c = max(y0 - halo, 0), max(x0 - halo, 0)
    crop = lr[a:y0 + n + halo, c:x0 + n + halo].astype(np.float32)
    ref = np.asarray(model.apply({"params": params}, jnp.asarray(crop)[None]))[0]
    ref = np.clip(np.round(ref), 0, 255).astype(np.uint8)
    ref = ref[(y0 - a) * scale:(y0 - a + n) * scale, (x0 - c) * scale:(x0 - c + n) * scale]
    with PNGRowReader(sr_path) as r:
      r.read(y0 * scale)
      got = r.read(n * scale)[:, x0 * scale:(x0 + n) * scale]
    results.append({"lr_region": [y0, x0, n], "max_abs_diff": int(np.abs(
        got.astype(int) - ref.astype(int)).max()), "identical": bool((got == ref).all()),
                    "saturated_fraction": float(((ref == 0) | (ref == 255)).mean())})
  return results


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--model", default="plain_s")
  ap.add_argument("--lr_size", type=int, default=2500)
  ap.add_argument("--scale", type=int, default=4)
  ap.add_argument("--max_memory", default="256MB")
  ap.add_argument("--png_level", type=int, default=1)
  ap.add_argument("--workdir", default="/tmp/memsr_upscale_100mp")
  ap.add_argument("--json", default=None)
  ap.add_argument("--keep", action="store_true", help="keep the 100 MP PNG")
  args = ap.parse_args()
  work = pathlib.Path(args.workdir)
  work.mkdir(parents=True, exist_ok=True)
  env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  lr_path, out_dir = work / "lr.png", work / "out"
  result = {"model": args.model, "weights": "random (models.registry.random_params, seed 0)",
            "lr_size": args.lr_size, "scale": args.scale, "max_memory": args.max_memory}

  subprocess.run([sys.executable, "-c", MAKE_INPUT_SNIPPET, str(args.lr_size), str(lr_path)],
                 env=env, check=True)
  rc, overhead, _, text = peak_rss_of([sys.executable, "-c", OVERHEAD_SNIPPET], env)
  assert rc == 0, text
  result["overhead_rss_bytes"] = overhead

  cmd = [sys.executable, "-m", "memsr_jax.upscale", "--model", args.model, "--scale",
         str(args.scale), "--input", str(lr_path), "--output", str(out_dir), "--max_memory",
         args.max_memory, "--stream_input", "always", "--png_level", str(args.png_level)]
  rc, peak, secs, text = peak_rss_of(cmd, env)
  print(text[-2000:])
  if rc != 0:
    raise SystemExit(f"upscale failed (rc={rc})")
  budget = parse_memory(args.max_memory)
  sr_path = out_dir / "lr.png"
  result.update({
      "command": " ".join(cmd[1:]),
      "upscale_seconds": secs, "peak_rss_bytes": peak,
      "budget_bytes": budget, "budget_plus_overhead_bytes": budget + overhead,
      "peak_within_budget_plus_overhead": peak <= budget + overhead,
      "peak_minus_overhead_bytes": peak - overhead,
      "output_png_bytes": sr_path.stat().st_size,
      "cli_log": [l for l in text.splitlines() if "→" in l][-1:],
  })
  n = args.lr_size
  result["exactness"] = check_regions(args.model, args.scale, 0, lr_path, sr_path,
                                      [(0, 0, 96), (n // 2 - 37, n // 3 + 11, 80),
                                       (n - 64, n - 64, 64)])
  if not args.keep:
    sr_path.unlink()
  text = json.dumps(result, indent=2)
  print(text)
  (work / "upscale_100mp.json").write_text(text)
  if args.json:
    pathlib.Path(args.json).write_text(text)


if __name__ == "__main__":
  main()
