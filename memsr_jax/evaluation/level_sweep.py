"""Every nested size of one checkpoint by the full protocol (eval.py's `config.sweep_levels`).

A checkpoint that stores a level map (memsr_jax/models/levels.py; MSSR writes one) holds several
networks; `sweep` runs eval.py's evaluation of one network at each level, each into
output_dir/level_NN/, prints PSNR/SSIM against sparsity and non-zero params, and writes
levels.json (atomically, `jsonio.write_json`). Choosing one level is an option of the model
loader (`config.model.level` / `config.model.sparsity` → memsr_jax.inference.source.load_source).
"""
import copy
import pathlib
from typing import Callable

from memsr_jax import checkpoints
from memsr_jax.models import levels
from memsr_jax.utils import cli
from memsr_jax.utils import console
from memsr_jax.utils import jsonio


def sweep(config, run: Callable) -> list[dict] | None:
  """With config.sweep_levels: `run(config)` at every level of config.model.checkpoint (rows with
  each level's stats and results); None without it."""
  if not config.get("sweep_levels", False):
    return None
  ckpt = config.model.checkpoint
  level_map = checkpoints.load_model_item(ckpt, levels.LEVEL_MAP_ITEM) if ckpt else None
  if level_map is None:
    raise cli.UserError(f"config.sweep_levels needs an MSSR checkpoint with a level map; "
                     f"{ckpt or '(no config.model.checkpoint)'} has none")
  out_dir = pathlib.Path(config.output_dir)

  def evaluate_level(k):
    c = copy.deepcopy(config)
    with c.unlocked():
      c.sweep_levels = False
      c.model.level = k
      c.model.sparsity = -1.0
      c.output_dir = str(out_dir / f"level_{k:02d}")
    return {"results": run(c)}

  rows = levels.level_rows(level_map, evaluate_level)
  console.result("MSSR levels of " + str(ckpt) + "\n" + format_rows(rows))
  jsonio.write_json(out_dir / "levels.json", rows, indent=2)
  console.say(f"levels: {out_dir / 'levels.json'}")
  return rows


def format_rows(rows: list[dict]) -> str:
  """Level, sparsity of the pruned set and of the network, non-zeros, PSNR / SSIM per column."""
  cols = [(ds, sc) for ds, by in rows[0]["results"].items() for sc in by]
  lines = [f"{'level':>5} {'pruned-set':>10} {'network':>8} {'nonzero':>9}  "
           + "  ".join(f"{ds} {sc} PSNR/SSIM" for ds, sc in cols)]
  for r in rows:
    lines.append(f"{r['level']:>5} {100 * r['sparsity']:9.2f}% {100 * r['network_sparsity']:7.2f}% "
                 f"{r['nonzero_params']:>9}  " +
                 "  ".join(f"{r['results'][ds][sc]['psnr']:.2f} / "
                           f"{r['results'][ds][sc]['ssim']:.4f}".rjust(len(f"{ds} {sc} PSNR/SSIM"))
                           for ds, sc in cols))
  return "\n".join(lines)
