"""Compress stage: from measured weight densities to a smaller configuration (N_c, N_l, N_b).

The paper picks the compact models by hand from the pruned densities; how exactly is not published
(docs/COMPRESS.md, [open]). Our rule, deterministic and documented in docs/COMPRESS.md:

  1. Group the pruned kernels into units (block b, layer l): an EDSR ResBlock `body_b` has layers
     conv1, conv2; a SwinIR RSTB `layers_b` has Swin layers `blocks_l` (attention + MLP kernels).
     Kernels outside blocks (head, tail, upsampler, RSTB convs…) count only in the total.
  2. Unit density d_{b,l} = nnz / size over the unit; block density d_b over the block.
  3. N_b' = number of blocks with d_b ≥ τ_block (a block whose weights are almost all zero is dead).
  4. N_l' = max over the kept blocks of the number of layers with d_{b,l} ≥ τ_layer (models need a
     uniform depth; the max keeps the deepest surviving block's capacity).
  5. The survivors' density d' = nnz / size over the kept blocks' kept layers. A layer's weights
     grow as N_c², so N_c' = ceil_to(N_c·sqrt(d'), m) clipped to [m, N_c], where m is the channel
     multiple (SwinIR: the number of heads, so heads divide the width; EDSR: 4).
Each of N_b', N_l' is at least 1. An architecture whose block depth is fixed (EDSR's ResBlock has
exactly two convs) reports N_l' but keeps its depth.

The paper's own choices are the fixed presets `PAPER_MINIS` (edsr_baseline → edsr_mini,
swinir_s → swinir_mini); the stages use them with `compress.shrink.mode = "fixed"`.
"""
import dataclasses
import math
import re
from typing import Any

import jax
import numpy as np

from memsr_jax.models import registry
from memsr_jax.utils import pytrees

# The paper's compact models, keyed by the model they compress.
PAPER_MINIS = {"edsr_baseline": "edsr_mini", "swinir_s": "swinir_mini"}


@dataclasses.dataclass(frozen=True)
class Family:
  """How an architecture's params map to (block, layer) units and back to hyperparameters."""
  unit_pattern: str  # regex with groups (block, layer) searched in leaf paths
  fixed_layers: int | None  # layers per block when the architecture cannot change it


FAMILIES = {
    "EDSR": Family(r"(?:^|/)body_(\d+)/conv(\d+)/", fixed_layers=2),
    "SwinIR": Family(r"(?:^|/)layers_(\d+)/blocks_(\d+)/", fixed_layers=None),
}


@dataclasses.dataclass
class ShrinkResult:
  n_channels: int
  n_layers: int
  n_blocks: int
  kept_density: float  # d' of step 5
  total_density: float
  block_density: dict[int, float]
  unit_density: dict[str, float]  # "b/l" -> density
  model_kwargs: dict[str, Any]  # overrides for the compact model's preset

  def to_json(self) -> dict:
    d = dataclasses.asdict(self)
    d["block_density"] = {str(k): v for k, v in self.block_density.items()}
    return d


def family_of(model_name: str) -> str:
  kw = registry.model_kwargs(model_name)  # validates the name, registers optional models
  del kw
  cls = registry.MODEL_PRESETS[model_name][0]
  if cls.__name__ not in FAMILIES:
    raise ValueError(f"the compress rule knows the families {sorted(FAMILIES)}; model "
                     f"{model_name!r} is a {cls.__name__}: use compress.mode='fixed' with an "
                     "explicit student preset instead")
  return cls.__name__


def kernel_stats(params, mask) -> dict[str, tuple[int, int]]:
  """path → (non-zeros, size) for the selected leaves."""
  flat, _ = jax.tree_util.tree_flatten_with_path(params)
  out = {}
  for (path, leaf), m in zip(flat, jax.tree_util.tree_leaves(mask)):
    if m:
      a = np.asarray(leaf)
      out[pytrees.path_str(path)] = (int(np.count_nonzero(a)), int(a.size))
  return out


def _ceil_to(x: float, m: int) -> int:
  return int(math.ceil(x / m - 1e-9)) * m


def shrink_rule(stats: dict[str, tuple[int, int]], family: str, n_channels: int,
                channel_multiple: int, tau_block: float = 0.05,
                tau_layer: float = 0.05) -> ShrinkResult:
  """Applies the rule (module docstring) to per-leaf (nnz, size) stats."""
  fam = FAMILIES[family]
  pat = re.compile(fam.unit_pattern)
  units: dict[tuple[int, int], list[int]] = {}
  tot = [0, 0]
  for path, (nnz, size) in stats.items():
    tot[0] += nnz
    tot[1] += size
    m = pat.search(path)
    if m:
      u = units.setdefault((int(m.group(1)), int(m.group(2))), [0, 0])
      u[0] += nnz
      u[1] += size
  if not units:
    raise ValueError(f"no pruned kernel matches the {family} block pattern {fam.unit_pattern!r}; "
                     f"paths look like {sorted(stats)[:4]}")
  blocks = sorted({b for b, _ in units})
  block_d = {}
  for b in blocks:
    nnz = sum(v[0] for (bb, _), v in units.items() if bb == b)
    size = sum(v[1] for (bb, _), v in units.items() if bb == b)
    block_d[b] = nnz / size
  unit_d = {(b, l): v[0] / v[1] for (b, l), v in units.items()}

  kept_blocks = [b for b in blocks if block_d[b] >= tau_block]
  n_blocks = max(1, len(kept_blocks))
  if not kept_blocks:  # everything is dead: keep the densest block
    kept_blocks = [max(blocks, key=lambda b: block_d[b])]
  live_layers = {b: [l for (bb, l) in unit_d if bb == b and unit_d[(bb, l)] >= tau_layer]
                 for b in kept_blocks}
  n_layers = max(1, max(len(v) for v in live_layers.values()))

  kept_units = [(b, l) for b in kept_blocks for l in live_layers[b]] or [
      (b, l) for (b, l) in units if b in kept_blocks]
  nnz = sum(units[u][0] for u in kept_units)
  size = sum(units[u][1] for u in kept_units)
  kept_d = nnz / size
  n_c = _ceil_to(n_channels * math.sqrt(kept_d), channel_multiple)
  n_c = int(min(max(n_c, channel_multiple), n_channels))

  if family == "EDSR":
    kwargs = {"n_feats": n_c, "n_resblocks": n_blocks}
  else:  # SwinIR
    kwargs = {"embed_dim": n_c, "depths": (n_layers,) * n_blocks}
  return ShrinkResult(
      n_channels=n_c, n_layers=fam.fixed_layers or n_layers, n_blocks=n_blocks,
      kept_density=kept_d, total_density=tot[0] / max(tot[1], 1), block_density=block_d,
      unit_density={f"{b}/{l}": d for (b, l), d in sorted(unit_d.items())}, model_kwargs=kwargs)


def shrink_model(model_name: str, model_kwargs: dict, params, mask, tau_block: float = 0.05,
                 tau_layer: float = 0.05) -> ShrinkResult:
  """The rule for a registry model: reads its width/heads and completes the student's kwargs."""
  family = family_of(model_name)
  kw = registry.model_kwargs(model_name, **model_kwargs)
  stats = kernel_stats(params, mask)
  if family == "EDSR":
    res = shrink_rule(stats, family, kw["n_feats"], 4, tau_block, tau_layer)
  else:
    heads = tuple(kw["num_heads"])
    if len(set(heads)) != 1:
      raise ValueError(f"the SwinIR rule needs equal heads per stage, got {heads}")
    res = shrink_rule(stats, family, kw["embed_dim"], heads[0], tau_block, tau_layer)
    res.model_kwargs["num_heads"] = (heads[0],) * res.n_blocks
  return res
