"""The verdict rules of memsr_jax/experiments/claims.py: the paired t rule (arithmetic, mirror,
non-inferiority), the half-step flag, the cost tolerance and the convergence gate."""
import math

import pytest

from memsr_jax.experiments import base
from memsr_jax.experiments import claims


def test_t_quantiles_match_the_t_distribution():
  stats = pytest.importorskip("scipy.stats")
  for df in range(1, 31):
    assert claims.t975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=6e-4)
  assert claims.t975(200) == claims.t975(30)  # beyond the table: df = 30's (conservative)


def test_paired_t_arithmetic():
  t = claims.paired_test([0.3, 0.1, 0.2])
  sd = math.sqrt((0.1 ** 2 + 0.1 ** 2 + 0) / 2)  # 0.1
  assert t["mean_d"] == pytest.approx(0.2) and t["sd_d"] == pytest.approx(sd)
  assert t["se"] == pytest.approx(sd / math.sqrt(3)) and t["t"] == pytest.approx(4.303)
  assert t["ci95"][0] == pytest.approx(0.2 - 4.303 * sd / math.sqrt(3))  # −0.048
  assert t["verdict"] == claims.INCONCLUSIVE  # a mean of +0.2 dB, but 3 seeds this spread
  t = claims.paired_test([0.3, 0.2, 0.25])  # sd 0.05: lower bound 0.25 − 0.124 > 0
  assert t["ci95"][0] == pytest.approx(0.25 - 4.303 * 0.05 / math.sqrt(3))
  assert t["verdict"] == claims.HOLDS


@pytest.mark.parametrize("d,verdict", [
    ([0.30, 0.20, 0.25], claims.HOLDS),
    ([-0.30, -0.20, -0.25], claims.FAILS),  # the mirror condition
    ([0.50, -0.10, 0.20], claims.INCONCLUSIVE),  # interval straddles 0
    ([0.04, 0.041, 0.042], claims.INCONCLUSIVE),  # significant but below 0.05 dB
    ([-0.04, -0.041, -0.042], claims.INCONCLUSIVE),  # its mirror is not a failure either
])
def test_superiority_rule_and_its_mirror(d, verdict):
  assert claims.paired_test(d)["verdict"] == verdict


@pytest.mark.parametrize("d,verdict", [
    ([0.0, 0.01, -0.01], claims.HOLDS),  # lower bound ≈ −0.025 > −0.05
    ([-0.2, -0.21, -0.19], claims.FAILS),  # upper bound < −0.05: inferior
    ([0.1, -0.2, 0.0], claims.INCONCLUSIVE),
])
def test_noninferiority_rule(d, verdict):
  assert claims.paired_test(d, "noninferior")["verdict"] == verdict


def _row(label, psnr5, psnr14=None, scale=2):
  res = {"set5": {f"x{scale}": {"psnr": psnr5}}}
  if psnr14 is not None:
    res["set14"] = {f"x{scale}": {"psnr": psnr14}}
  return {"row": label, "results": res}


def _arms(a, b, half_a=None, half_b=None):
  rows = []
  for k, (x, y) in enumerate(zip(a, b)):
    rows += [_row(claims.seed_label("A", k), x, x), _row(claims.seed_label("B", k), y, y)]
  for k, (x, y) in enumerate(zip(half_a or (), half_b or ())):
    rows += [_row(claims.seed_label("A" + claims.HALF_SUFFIX, k), x, x),
             _row(claims.seed_label("B" + claims.HALF_SUFFIX, k), y, y)]
  return rows


def test_relative_claims_pair_the_seeds_and_flag_budget_sensitivity():
  c = claims.Relative("r", "A beats B", {}, "A", "B")
  rows = _arms([30.3, 30.2, 30.25], [30.0, 30.0, 30.0], [30.5, 30.6, 30.7], [30.0] * 3)
  [e] = claims.decide([c], rows, "cpu", 3, 2, ("set5", "set14"))
  assert e["verdict"] == claims.HOLDS and e["ours"]["d_per_seed_db"] == pytest.approx(
      [0.3, 0.2, 0.25])
  assert e["ours"]["half_steps"]["mean_d_db"] == pytest.approx(0.6)
  assert e["budget_sensitive"] and "budget-sensitive" in e["why"]  # 0.6 → 0.25: shrinking
  grow = _arms([30.3, 30.2, 30.25], [30.0] * 3, [30.05] * 3, [30.0] * 3)
  assert not claims.decide([c], grow, "cpu", 3, 2, ("set5",))[0]["budget_sensitive"]
  assert claims.budget_sensitive(0.1, -0.1) and claims.budget_sensitive(-0.1, 0.1)
  two = claims.decide([c], rows, "cpu", 2, 2, ("set5",))[0]
  assert two["verdict"] == claims.NOT_JUDGED and "≥ 3" in two["why"]
  smoke = claims.decide([c], rows, "smoke", 3, 2, ("set5",))[0]
  assert smoke["verdict"] == claims.NOT_JUDGED and "smoke" in smoke["why"]
  missing = claims.decide([c], rows[:3], "cpu", 3, 2, ("set5",))[0]
  assert missing["verdict"] == claims.NOT_JUDGED and missing["ours"] is None


def test_cost_rule():
  assert claims.cost_verdict(0.155, 0.145, "within")[0] == claims.HOLDS  # +6.9 %
  assert claims.cost_verdict(0.100, 0.145, "within")[0] == claims.HOLDS  # better (lower)
  assert claims.cost_verdict(0.165, 0.145, "within")[0] == claims.FAILS  # +13.8 %
  assert claims.cost_verdict(7e-4, 1e-3, "at most")[0] == claims.HOLDS
  assert claims.cost_verdict(2e-3, 1e-3, "at most")[0] == claims.FAILS
  c = claims.Cost("c", "s", {}, lambda rows, extra: {"value": 1.05, "target": 1.0,
                                                     "sense": "within"})
  assert claims.decide([c], [], "cpu", 3, 2, ())[0]["verdict"] == claims.HOLDS
  assert claims.decide([c], [], "smoke", 1, 2, ())[0]["verdict"] == claims.NOT_JUDGED
  why = claims.Cost("c", "s", {}, lambda rows, extra: {"not_measured": "no checkpoint"})
  assert claims.decide([why], [], "cpu", 3, 2, ())[0]["why"] == "no checkpoint"


def _absolute(rows, budget="cpu"):
  c = claims.Absolute("a", "S within 0.34 dB of T", {}, base.gap_margin("S", "T", 0.34, 2),
                      [("S", 3.5)])
  return claims.decide([c], rows, budget, 1, 2, ("set5", "set14"))[0]


def test_the_gate_decides_whether_an_absolute_claim_is_judged():
  bic = _row("bicubic", 33.0, 30.0)  # mean 31.5
  conv = [bic, _row("T", 35.5, 35.5), _row("S", 35.2, 35.2),
          _row("S" + claims.LATE_SUFFIX, 35.17, 35.17)]
  e = _absolute(conv)  # gain 3.7 ≥ 0.85 × 3.5, +0.03 dB over the last quarter
  assert e["converged"] and e["verdict"] == claims.HOLDS and e["observed_margin_db"] == (
      pytest.approx(0.04))
  assert _absolute(conv, "smoke")["verdict"] == claims.NOT_JUDGED
  still_learning = conv[:3] + [_row("S" + claims.LATE_SUFFIX, 35.1, 35.1)]  # +0.1 dB
  e = _absolute(still_learning)
  assert not e["converged"] and e["verdict"] == claims.NOT_JUDGED
  assert e["gate"]["S"]["gain_last_25pct_db"] == pytest.approx(0.1)
  short = [bic, _row("T", 35.5, 35.5), _row("S", 33.5, 33.5),
           _row("S" + claims.LATE_SUFFIX, 33.5, 33.5)]  # 2.0 / 3.5 = 57 % of the gain
  e = _absolute(short)
  assert e["verdict"] == claims.NOT_JUDGED and "57 %" in e["why"]
  assert e["observed_margin_db"] == pytest.approx(0.34 - 2.0)  # reported, not a verdict
  assert _absolute(conv[:3])["verdict"] == claims.NOT_JUDGED  # 75 % row not measured


def test_gap_margin_uses_the_sets_both_rows_have():
  m, figs = base.gap_margin("a", "b", 0.0, 2)({"a": _row("a", 30.0), "b": _row("b", 29.0, 20.0)})
  assert figs["sets"] == "set5" and m == pytest.approx(1.0)


def test_claims_markdown_escapes_pipes():
  e = {"id": "x", "kind": "cost", "source": "paper", "sentence": "max |a − b| ≤ 1", "paper": {},
       "ours": {"value": 1.0, "target": 2.0}, "seeds": 1, "verdict": "holds", "why": "w"}
  line = claims.markdown([e])[2]
  assert "max \\|a − b\\|" in line and line.count(" | ") == 7
