"""Each experiment's paper claim, what we measured for it, and a verdict by one written rule.

The rule (docs/EXPERIMENTS.md, "Claims and verdicts"): every claim is reduced to a margin in dB,
positive when the claim is met (e.g. 0.34 − (teacher − student) for "within 0.34 dB"). The runs
that decide it are trained with `--seeds N` seeds; the margin is computed per seed, `ours` is its
mean and the noise band is its spread (max − min). Verdict:
  holds                           margin > band
  does not hold                   margin < −band
  cannot be judged at this budget the `smoke` budget (untrained models), fewer than 2 seeds (no
                                  band measured), a deciding row missing, or |margin| ≤ band
"""
import dataclasses
import re
from typing import Callable

HOLDS, FAILS, UNJUDGED = "holds", "does not hold", "cannot be judged at this budget"
SEED_SUFFIX = " (seed {k})"
_SEED_COPY = re.compile(r" \(seed \d+\)$")


@dataclasses.dataclass
class Claim:
  """sentence: the paper's claim; paper: its figures; margin(rows) -> (margin dB, figures) for
  the rows of one seed ({label: row}); deciding: the runs trained once per seed."""
  sentence: str
  paper: dict
  margin: Callable[[dict], tuple[float, dict]]
  deciding: tuple[str, ...]
  rule: str  # the margin in words


def seed_label(label: str, k: int) -> str:
  return label if k == 0 else label + SEED_SUFFIX.format(k=k)


def rows_of_seed(rows: list[dict], k: int) -> dict:
  """{label: row} as seed k saw it: its own copy of a deciding row, else the shared row."""
  by = {r["row"]: r for r in rows}
  out = {}
  for label, r in by.items():
    if _SEED_COPY.search(label):
      continue  # a seed's copy, reached through its base label
    out[label] = by.get(seed_label(label, k), r)
  return out


def psnr(row: dict | None, sets: tuple, scale: int) -> float | None:
  """Mean PSNR of a row over those of `sets` it was evaluated on (None: none, or not run)."""
  if not row or row.get("skipped") or not row.get("results"):
    return None
  vals = [row["results"][s][f"x{scale}"].get("psnr") for s in sets if s in row["results"]]
  if not vals or any(v is None for v in vals):
    return None
  return sum(vals) / len(vals)


def decide(claim: Claim, rows: list[dict], budget: str, seeds: int) -> dict:
  """The claim block of results.json."""
  per_seed, figures, missing = [], [], ""
  for k in range(seeds):
    try:
      m, f = claim.margin(rows_of_seed(rows, k))
    except KeyError as e:
      missing = f"row {e} did not run"
      break
    if m is None:
      missing = (f or {}).get("missing", "a deciding row did not run")
      break
    per_seed.append(m)
    figures.append(f)
  out = {"sentence": claim.sentence, "paper": claim.paper, "rule": claim.rule,
         "seeds": seeds, "deciding_runs": list(claim.deciding)}
  if missing:
    return {**out, "ours": None, "difference": None, "band": None, "verdict": UNJUDGED,
            "why": missing}
  margin = sum(per_seed) / len(per_seed)
  band = max(per_seed) - min(per_seed) if len(per_seed) >= 2 else None
  out.update(ours=figures[0] if seeds == 1 else {"per_seed": figures}, difference=margin,
             margins_per_seed=per_seed, band=band)
  if budget == "smoke":
    return {**out, "verdict": UNJUDGED, "why": "smoke budget: the models are barely trained"}
  if band is None:
    return {**out, "verdict": UNJUDGED, "why": "one seed: no noise band (run with --seeds 2)"}
  if margin > band:
    return {**out, "verdict": HOLDS, "why": f"margin {margin:+.3f} dB > band {band:.3f} dB"}
  if margin < -band:
    return {**out, "verdict": FAILS, "why": f"margin {margin:+.3f} dB < −band {band:.3f} dB"}
  return {**out, "verdict": UNJUDGED, "why": f"|margin| {abs(margin):.3f} dB ≤ band {band:.3f} dB"}


def markdown(block: dict) -> list[str]:
  """The claim as the first lines of results.md."""
  lines = [f"**Claim**: {block['sentence']}", "",
           f"- paper: {_figs(block['paper'])}",
           f"- rule: {block['rule']}"]
  if block.get("ours") is not None:
    ours = block["ours"]
    lines.append("- ours: " + (_figs(ours) if "per_seed" not in ours else "; ".join(
        f"seed {k}: {_figs(f)}" for k, f in enumerate(ours["per_seed"]))))
    band = "–" if block["band"] is None else f"{block['band']:.3f} dB"
    lines.append(f"- margin (mean of {block['seeds']} seed(s)): {block['difference']:+.3f} dB; "
                 f"noise band (seed spread): {band}")
  lines += [f"- **verdict: {block['verdict']}** ({block['why']})", ""]
  return lines


def _figs(d: dict) -> str:
  return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in d.items())
