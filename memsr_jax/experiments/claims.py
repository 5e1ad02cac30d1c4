"""Each experiment's claims, what we measured for them, and a verdict by one written rule per kind.

Kinds (docs/EXPERIMENTS.md, "Claims and verdicts"):
  cost      a deterministic figure (parameters, MACs, memory, storage, conversion error) against
            the paper's figure or ratio: holds within ±10 % or better (`within`), or when it is
            at most a limit (`at most`); does not hold otherwise. Not judged at `smoke`.
  relative  arms A and B trained alike with paired seeds (n ≥ 3); d_k = PSNR(A_k) − PSNR(B_k),
            mean over Set5 and Set14. Superiority: holds when mean(d) − t(0.975, n−1)·SE > 0 and
            mean(d) ≥ 0.05 dB; does not hold under the mirror condition (mean(d) + t·SE < 0 and
            mean(d) ≤ −0.05 dB); else inconclusive. Non-inferiority: holds when
            mean(d) − t·SE > −0.05 dB; does not hold when mean(d) + t·SE < −0.05 dB; else
            inconclusive. Both arms are also evaluated at half their steps: the claim is flagged
            budget-sensitive when the gap shrinks toward zero or changes sign from half to full.
  absolute  a gap to a paper's figure or a threshold: judged only when the convergence gate
            passes, i.e. every trained deciding row reaches ≥ 85 % of the paper's gain over
            bicubic on the same sets and gained < 0.05 dB over the last 25 % of its steps.
            Otherwise "not judged", with the gate's figures; the margin is an observation.
A question of ours carries source "ours"; the paper claim it stands in for is listed "not judged".
"""
import dataclasses
import math
import re
from typing import Callable

HOLDS, FAILS, INCONCLUSIVE, NOT_JUDGED = "holds", "does not hold", "inconclusive", "not judged"
KINDS = ("cost", "relative", "absolute")
MIN_SEEDS = 3  # paired seeds a relative claim needs
MIN_EFFECT = 0.05  # dB: the smallest gap a relative claim counts; the non-inferiority margin
COST_TOLERANCE = 0.10  # ±10 % of the paper's figure
GATE_FRACTION = 0.85  # of the paper's gain over bicubic
GATE_LATE_GAIN = 0.05  # dB over the last 25 % of the steps
SEED_SUFFIX = " (seed {k})"
HALF_SUFFIX = " @ half steps"
LATE_SUFFIX = " @ 75 % of steps"
_SEED_COPY = re.compile(r" \(seed \d+\)$")
# t(0.975, df) for df = 1..30; larger df use df = 30's value (slightly conservative).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


@dataclasses.dataclass
class Cost:
  """measure(rows, extra) -> {"value", "target", "sense": "within" | "at most", …figures}, or
  None / {"not_measured": why} (a figure is missing)."""
  id: str
  sentence: str
  paper: dict
  measure: Callable[[dict, dict], dict | None]
  source: str = "paper"
  kind: str = "cost"


@dataclasses.dataclass
class Relative:
  """Row `a` against row `b` (labels of seed 0; seed k's copies are found by label)."""
  id: str
  sentence: str
  paper: dict
  a: str
  b: str
  test: str = "superior"  # "superior" | "noninferior"
  source: str = "paper"
  kind: str = "relative"


@dataclasses.dataclass
class Absolute:
  """margin(rows) -> (margin dB, figures), positive when the claim is met; gate: [(row label,
  the paper's gain of that row over bicubic in dB)] of the trained deciding rows."""
  id: str
  sentence: str
  paper: dict
  margin: Callable[[dict], tuple]
  gate: list
  source: str = "paper"
  kind: str = "absolute"


@dataclasses.dataclass
class Unjudged:
  """A claim no run here decides (e.g. the paper claim a question of ours stands in for)."""
  id: str
  kind: str
  sentence: str
  paper: dict
  why: str
  source: str = "paper"


def seed_label(label: str, k: int) -> str:
  return label if k == 0 else label + SEED_SUFFIX.format(k=k)


def t975(df: int) -> float:
  return _T975[min(df, len(_T975)) - 1]


def rows_of_seed(rows: list[dict], k: int) -> dict:
  """{label: row} as seed k saw it: its own copy of a seeded row, else the shared row."""
  by = {r["row"]: r for r in rows}
  out = {}
  for label, r in by.items():
    if _SEED_COPY.search(label):
      continue  # a seed's copy, reached through its base label
    out[label] = by.get(seed_label(label, k), r)
  return out


def psnr(row: dict | None, sets: tuple, scale: int) -> float | None:
  """Mean PSNR of a row over `sets` (None: a set missing, or the row did not run)."""
  if not row or row.get("skipped") or not row.get("results"):
    return None
  vals = [(row["results"].get(s) or {}).get(f"x{scale}", {}).get("psnr") for s in sets]
  if not vals or any(v is None for v in vals):
    return None
  return sum(vals) / len(vals)


# ----------------------------------------------------------------------------- the rules


def cost_verdict(value: float, target: float, sense: str) -> tuple[str, str]:
  """`within`: |value / target − 1| ≤ 10 % or better (lower) holds; `at most`: value ≤ target."""
  if sense == "at most":
    ok = value <= target
    return (HOLDS if ok else FAILS), f"{value:.4g} {'≤' if ok else '>'} {target:.4g}"
  if sense != "within":
    raise ValueError(f"unknown cost sense {sense!r}")
  ratio = value / target
  ok = ratio <= 1 + COST_TOLERANCE
  return (HOLDS if ok else FAILS), (f"ours / paper = {ratio:.3f} ({'within' if ok else 'above'} "
                                    f"the {1 + COST_TOLERANCE:.2f} limit; lower is better)")


def paired_test(d: list[float], test: str = "superior", effect: float = MIN_EFFECT) -> dict:
  """The relative rule on paired differences d (n ≥ 2): verdict and its figures."""
  n = len(d)
  mean = sum(d) / n
  sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
  se = sd / math.sqrt(n)
  t = t975(n - 1)
  lo, hi = mean - t * se, mean + t * se
  figs = {"n": n, "mean_d": mean, "sd_d": sd, "se": se, "t": t, "ci95": [lo, hi]}
  if test == "superior":
    if lo > 0 and mean >= effect:
      return {**figs, "verdict": HOLDS, "why": f"mean − t·SE = {lo:+.3f} > 0 and mean "
              f"{mean:+.3f} ≥ {effect} dB"}
    if hi < 0 and mean <= -effect:
      return {**figs, "verdict": FAILS, "why": f"mean + t·SE = {hi:+.3f} < 0 and mean "
              f"{mean:+.3f} ≤ −{effect} dB"}
    return {**figs, "verdict": INCONCLUSIVE, "why": f"95 % interval [{lo:+.3f}, {hi:+.3f}] dB, "
            f"mean {mean:+.3f} dB: neither condition met"}
  if test != "noninferior":
    raise ValueError(f"unknown test {test!r}")
  if lo > -effect:
    return {**figs, "verdict": HOLDS, "why": f"mean − t·SE = {lo:+.3f} > −{effect} dB"}
  if hi < -effect:
    return {**figs, "verdict": FAILS, "why": f"mean + t·SE = {hi:+.3f} < −{effect} dB"}
  return {**figs, "verdict": INCONCLUSIVE, "why": f"95 % interval [{lo:+.3f}, {hi:+.3f}] dB "
          f"straddles −{effect} dB"}


def budget_sensitive(mean_half: float, mean_full: float) -> bool:
  """The gap shrank toward zero or changed sign from half to full steps."""
  return (mean_half > 0) != (mean_full > 0) or abs(mean_full) < abs(mean_half)


def gate_row(gain: float | None, paper_gain: float, late_gain: float | None) -> dict:
  """One deciding row's convergence gate: ≥ 85 % of the paper's gain over bicubic and < 0.05 dB
  gained over the last 25 % of its steps (None: not measured, the gate does not pass)."""
  frac = None if gain is None else gain / paper_gain
  ok = (frac is not None and frac >= GATE_FRACTION and late_gain is not None
        and late_gain < GATE_LATE_GAIN)
  return {"gain_over_bicubic_db": gain, "paper_gain_db": paper_gain, "fraction_of_paper_gain":
          frac, "gain_last_25pct_db": late_gain, "passes": bool(ok)}


# ----------------------------------------------------------------------------- deciding


def _entry(c, seeds: int) -> dict:
  return {"id": c.id, "kind": c.kind, "source": c.source, "sentence": c.sentence,
          "paper": c.paper, "ours": None, "seeds": seeds}


def _decide_cost(c: Cost, rows: list[dict], extra: dict, budget: str) -> dict:
  out = _entry(c, 1)
  m = c.measure(rows_of_seed(rows, 0), extra or {})
  if m is None or "not_measured" in m:
    return {**out, "verdict": NOT_JUDGED, "why": (m or {}).get(
        "not_measured", "a figure it needs was not measured")}
  out["ours"] = m
  if budget == "smoke":
    return {**out, "verdict": NOT_JUDGED, "why": "smoke budget: shrunk models and sizes"}
  verdict, why = cost_verdict(m["value"], m["target"], m["sense"])
  return {**out, "verdict": verdict, "why": why}


def _diffs(c: Relative, rows: list[dict], seeds: int, scale: int, sets: tuple, suffix: str):
  d, by = [], {r["row"]: r for r in rows}
  for k in range(seeds):  # each seed's own copy of both arms (never seed 0's in its place)
    pa = psnr(by.get(seed_label(c.a + suffix, k)), sets, scale)
    pb = psnr(by.get(seed_label(c.b + suffix, k)), sets, scale)
    if pa is None or pb is None:
      return None
    d.append(pa - pb)
  return d


def _decide_relative(c: Relative, rows, budget, seeds, scale, sets) -> dict:
  out = {**_entry(c, seeds), "test": c.test, "arms": {"A": c.a, "B": c.b}}
  d = _diffs(c, rows, seeds, scale, sets, "")
  if d is None:
    return {**out, "verdict": NOT_JUDGED, "why": "an arm's row did not run or was not evaluated"}
  out["ours"] = {"sets": "+".join(sets), "d_per_seed_db": d, "mean_d_db": sum(d) / len(d)}
  half = _diffs(c, rows, seeds, scale, sets, HALF_SUFFIX)
  if half is not None:
    out["ours"]["half_steps"] = {"d_per_seed_db": half, "mean_d_db": sum(half) / len(half)}
    out["budget_sensitive"] = budget_sensitive(sum(half) / len(half), sum(d) / len(d))
  if budget == "smoke":
    return {**out, "verdict": NOT_JUDGED, "why": "smoke budget: the models are barely trained"}
  if seeds < MIN_SEEDS:
    return {**out, "verdict": NOT_JUDGED, "why": f"{seeds} seed(s): the rule needs ≥ "
            f"{MIN_SEEDS} paired seeds (--seeds {MIN_SEEDS})"}
  t = paired_test(d, c.test)
  verdict, why = t.pop("verdict"), t.pop("why")
  out["ours"]["test"] = t
  if out.get("budget_sensitive"):
    why += "; budget-sensitive: the gap shrank or changed sign from half to full steps"
  return {**out, "verdict": verdict, "why": why}


def _decide_absolute(c: Absolute, rows, budget, scale, sets) -> dict:
  out = _entry(c, 1)
  by = rows_of_seed(rows, 0)
  margin, figs = c.margin(by)
  bic = psnr(by.get("bicubic"), sets, scale)
  gate = {}
  for label, paper_gain in c.gate:
    p, late = psnr(by.get(label), sets, scale), psnr(by.get(label + LATE_SUFFIX), sets, scale)
    gain = None if p is None or bic is None else p - bic
    gate[label] = gate_row(gain, paper_gain, None if p is None or late is None else p - late)
  converged = bool(gate) and all(g["passes"] for g in gate.values())
  out.update(ours=figs, observed_margin_db=margin, converged=converged, gate=gate)
  if margin is None:
    return {**out, "verdict": NOT_JUDGED, "why": "a deciding row did not run"}
  if budget == "smoke" or not converged:
    failing = [f"{k}: {_gate_words(g)}" for k, g in gate.items() if not g["passes"]]
    return {**out, "verdict": NOT_JUDGED, "why": "convergence gate not passed (" + "; ".join(
        failing) + f"); observed margin {margin:+.3f} dB, an observation only"}
  return {**out, "verdict": HOLDS if margin > 0 else FAILS,
          "why": f"gate passed; margin {margin:+.3f} dB"}


def _gate_words(g: dict) -> str:
  frac = g["fraction_of_paper_gain"]
  late = g["gain_last_25pct_db"]
  return (("–" if frac is None else f"{100 * frac:.0f} %") + " of the paper's gain over "
          "bicubic (needs ≥ 85 %), last 25 % of steps " + ("not measured" if late is None
                                                         else f"{late:+.3f} dB (needs < 0.05)"))


def decide(claims: list, rows: list[dict], budget: str, seeds: int, scale: int,
           sets: tuple, extra: dict | None = None) -> list[dict]:
  """results.json["claims"]: one entry per claim, by its kind's rule."""
  out = []
  for c in claims:
    if isinstance(c, Cost):
      out.append(_decide_cost(c, rows, extra, budget))
    elif isinstance(c, Relative):
      out.append(_decide_relative(c, rows, budget, seeds, scale, sets))
    elif isinstance(c, Absolute):
      out.append(_decide_absolute(c, rows, budget, scale, sets))
    else:
      gate = {"converged": False, "gate": {}} if c.kind == "absolute" else {}
      out.append({**_entry(c, 0), **gate, "verdict": NOT_JUDGED, "why": c.why})
  return out


def markdown(entries: list[dict]) -> list[str]:
  """The claims table: the first lines of results.md."""
  lines = ["| claim | kind | source | paper | ours | seeds | verdict | why |",
           "|---|---|---|---|---|---|---|---|"]
  for e in entries:
    ours = e.get("ours") or {}
    if e["kind"] == "relative" and ours:
      cell = f"mean d {ours['mean_d_db']:+.3f} dB"
      if "half_steps" in ours:
        cell += f" (half steps {ours['half_steps']['mean_d_db']:+.3f})"
    elif e["kind"] == "absolute" and e.get("observed_margin_db") is not None:
      cell = f"margin {e['observed_margin_db']:+.3f} dB (observed)"
    elif e["kind"] == "cost" and ours:
      cell = f"{ours['value']:.4g} vs {ours['target']:.4g}"
    else:
      cell = "–"
    verdict = e["verdict"] + (" (budget-sensitive)" if e.get("budget_sensitive") else "")
    cells = [f"{e['id']}: {e['sentence']}", e["kind"], e["source"], _figs(e["paper"]), cell,
             str(e["seeds"]), f"**{verdict}**", e["why"]]
    lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
  return lines + [""]


def _figs(d: dict) -> str:
  return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                   for k, v in (d or {}).items()) or "–"
