"""Storage of MSSR's one scalable checkpoint vs K+1 separately saved models (bytes on disk).

  python benchmarks/mssr_storage.py --model edsr_baseline --scale 2 --fraction 0.2 --rounds 13

Builds the level map by global magnitude pruning of the initial weights (the bytes do not depend
on training), saves (a) one MSSR checkpoint: params + int8 level map, and (b) each level's network
as its own model checkpoint (pruned weights stored as zeros, as a dense deployment would), and
prints/saves JSON with the bytes on disk of both, next to the raw float32 sizes.
"""
import argparse
import json
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout

import jax

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.methods.mssr import imp
from memsr_jax.methods.mssr import masks
from memsr_jax.methods.mssr import scalable
from memsr_jax.models import registry
from memsr_jax.utils import pytrees


def du(path: pathlib.Path) -> int:
  return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--model", default="edsr_baseline")
  ap.add_argument("--scale", type=int, default=2)
  ap.add_argument("--fraction", type=float, default=0.2)
  ap.add_argument("--rounds", type=int, default=13)
  ap.add_argument("--out", default="benchmarks/results/mssr_storage.json")
  args = ap.parse_args()

  model = registry.build_model(args.model, scale=args.scale)
  params = jax.device_get(registry.init_params(model, jax.random.key(0)))
  lm = masks.init_level_map(params)
  for k, s in enumerate(masks.sparsity_schedule(args.fraction, args.rounds), 1):
    lm = imp.prune_round(params, lm, k, s)
  stats = masks.level_stats(lm)
  n_params = pytrees.count_params(params)
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    one = scalable.save_scalable(tmp / "scalable", args.model, {"scale": args.scale}, params, lm)
    one_bytes = du(one)
    level_map_bytes = du(one / scalable.LEVEL_MAP_ITEM)
    per_level = []
    for st in stats:
      p = ckpt_lib.save_model_checkpoint(tmp / f"level_{st['level']:02d}", args.model,
                                         {"scale": args.scale},
                                         masks.params_at_level(params, lm, st["level"]))
      per_level.append(du(p))
  result = {
      "model": args.model, "scale": args.scale, "levels": len(stats),
      "params": n_params, "prunable_params": stats[0]["prunable"],
      "sparsity_smallest": stats[-1]["sparsity"],
      "float32_bytes_one_model": 4 * n_params,
      "one_scalable_checkpoint_bytes": one_bytes,
      "of_which_level_map_bytes": level_map_bytes,
      "separate_checkpoints_bytes": int(sum(per_level)),
      "separate_checkpoint_bytes_per_level": per_level,
      "ratio_separate_over_one": sum(per_level) / one_bytes,
      "sparse_ideal_bytes_all_levels": int(sum(4 * s["nonzero_params"] for s in stats)),
  }
  print(json.dumps(result, indent=1))
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
  main()
