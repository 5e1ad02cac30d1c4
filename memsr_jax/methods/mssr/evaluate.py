"""Evaluating MSSR's nested levels: PSNR of every level of a scalable model (training reports), and
the MSSR evaluation hook of eval.py (`--config.model.level` / `sparsity` / `sweep_levels`).

Both walk the levels through one helper, `_level_rows`: a row per level with its stats (level,
sparsity, non-zero params) and what was measured at that level.
"""
import copy
import json
import pathlib
from typing import Any, Callable, Sequence

from absl import logging
import jax.numpy as jnp
import numpy as np

from memsr_jax import precision
from memsr_jax.evaluation import hooks
from memsr_jax.evaluation import validation
from memsr_jax.image import metrics
from memsr_jax.methods.mssr import masks
from memsr_jax.methods.mssr import scalable

PyTree = Any


def _level_rows(level_map: PyTree, evaluate_level: Callable[[int], dict],
                levels: Sequence[int] | None = None) -> list[dict]:
  """[{level, sparsity, nonzero_params, … , **evaluate_level(level)}] for `levels` (default all)."""
  stats = masks.level_stats(level_map)
  return [{**stats[k], **evaluate_level(k)}
          for k in (range(len(stats)) if levels is None else levels)]


# --- during training: Y-PSNR per level on validation sets (one compiled program per shape) ---

def load_sets(names: Sequence[str], root: str, scale: int) -> dict[str, list]:
  return {n: validation.load_val_pairs(n, root, scale) for n in names}


def psnr_on_sets(apply_fn: Callable, params: PyTree, sets: dict[str, list], scale: int
                 ) -> dict[str, float]:
  """Mean Y-PSNR (protocol: clip, round, Y, crop `scale`) per set of `apply_fn(params, lr)`."""
  out = {}
  for name, pairs in sets.items():
    vals = []
    for _, lr, hr in pairs:
      with precision.exact():  # the protocol's numbers
        sr = np.asarray(apply_fn(params, jnp.asarray(lr[None], jnp.float32)))[0]
      vals.append(metrics.psnr(metrics.to_uint8(sr), hr, crop=scale))
    out[name] = float(np.mean(vals))
  return out


def sweep_levels(model, params: PyTree, level_map: PyTree, sets: dict[str, list], scale: int,
                 levels: Sequence[int] | None = None) -> list[dict]:
  """One row per level: level, sparsity, non-zero params and PSNR per set (one jitted program)."""
  def evaluate_level(k):
    def apply(p, x):  # scalable's jitted apply: one compiled program for every level
      return scalable._apply_at_level(model, p, level_map, k, x)  # pylint: disable=protected-access
    return {f"psnr_{n}": v for n, v in psnr_on_sets(apply, params, sets, scale).items()}
  return _level_rows(level_map, evaluate_level, levels)


def format_table(rows: list[dict]) -> str:
  """Level, sparsity of the pruned set, sparsity of the whole network, non-zeros, PSNR per set."""
  sets = [k for k in rows[0] if k.startswith("psnr_")] if rows else []
  head = (f"{'level':>5} {'pruned-set':>10} {'network':>8} {'nonzero':>9} "
          + " ".join(f"{s[5:]:>8}" for s in sets))
  lines = [head]
  for r in rows:
    net = r.get("network_sparsity", float("nan"))
    lines.append(f"{r['level']:>5} {100 * r['sparsity']:9.2f}% {100 * net:7.2f}% "
                 f"{r['nonzero_params']:>9} " + " ".join(f"{r[s]:8.3f}" for s in sets))
  return "\n".join(lines)


# --- eval.py's MSSR hook: one level of a checkpoint, or every level by the full protocol ---

def select_level(params: PyTree, meta: dict, config) -> PyTree:
  """The nested sub-network `config.model.level` (or the level nearest `config.model.sparsity`),
  read from the level map stored in the checkpoint (docs/MSSR.md); notes it in meta["mssr_level"].

  level < 0 and sparsity < 0 evaluate the full model (params returned unchanged).
  """
  level = int(config.model.get("level", -1))
  sparsity = float(config.model.get("sparsity", -1.0))
  if level < 0 and sparsity < 0:
    return params
  if level >= 0 and sparsity >= 0:
    raise ValueError(f"config.model.level={level} and config.model.sparsity={sparsity} are both "
                     "set; give one of them (the other -1)")
  ckpt = config.model.get("checkpoint", "")
  level_map = scalable.load_level_map(ckpt) if ckpt else None
  if level_map is None:
    raise ValueError(f"config.model.level/sparsity select an MSSR size, but "
                     f"{ckpt or 'a model without checkpoint'} holds no MSSR level map; use a "
                     "checkpoint written by train.py with config.method='mssr' (its model/ "
                     "folder or workdir), or leave level and sparsity at -1")
  if level < 0:
    level = masks.level_for_sparsity(level_map, sparsity)
  masks.check_level(level_map, level)
  stats = masks.level_stats(level_map)[level]
  meta["mssr_level"] = stats
  logging.info("MSSR level %d: sparsity %.2f%%, %d non-zero params", level,
               100 * stats["sparsity"], stats["nonzero_params"])
  return masks.params_at_level(params, level_map, level)


def sweep_checkpoint_levels(config, run: Callable) -> list[dict] | None:
  """With config.sweep_levels: `run` (eval.py's protocol) at every level of the checkpoint, each
  into output_dir/level_NN/; prints PSNR/SSIM vs sparsity vs non-zero params, writes levels.json."""
  if not config.get("sweep_levels", False):
    return None
  ckpt = config.model.checkpoint
  level_map = scalable.load_level_map(ckpt) if ckpt else None
  if level_map is None:
    raise ValueError(f"config.sweep_levels needs an MSSR checkpoint with a level map; "
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

  rows = _level_rows(level_map, evaluate_level)
  cols = [(ds, sc) for ds, by in rows[0]["results"].items() for sc in by]
  lines = [f"{'level':>5} {'pruned-set':>10} {'network':>8} {'nonzero':>9}  "
           + "  ".join(f"{ds} {sc} PSNR/SSIM" for ds, sc in cols)]
  for r in rows:
    lines.append(f"{r['level']:>5} {100 * r['sparsity']:9.2f}% {100 * r['network_sparsity']:7.2f}% "
                 f"{r['nonzero_params']:>9}  " +
                 "  ".join(f"{r['results'][ds][sc]['psnr']:.2f} / "
                           f"{r['results'][ds][sc]['ssim']:.4f}".rjust(len(f"{ds} {sc} PSNR/SSIM"))
                           for ds, sc in cols))
  print("MSSR levels of " + str(ckpt) + "\n" + "\n".join(lines))
  out_dir.mkdir(parents=True, exist_ok=True)
  (out_dir / "levels.json").write_text(json.dumps(rows, indent=2))
  print(f"levels: {out_dir / 'levels.json'}")
  return rows


EVAL_HOOK = hooks.EvalHook(select_params=select_level, sweep=sweep_checkpoint_levels)
hooks.register("mssr", EVAL_HOOK)
