"""mssr_x2: one scalable checkpoint from nested lottery tickets (MSSR, CVPR 2023), against a dense
network of the smallest level's size and a non-nested ticket, both trained for the same steps.

The paper's smallest level is ≈ 94 % sparse (13 rounds of p = 0.2: 94.5 % of the pruned convs);
every budget here reaches 4 rounds of p = 0.5 (93.75 %). Both sparsities are shown: of the pruned
set (the body convs, what the schedule targets) and of the whole network.
"""
import copy

import jax
import ml_collections

from memsr_jax import pytrees
from memsr_jax.experiments import base
from memsr_jax.experiments import budgets
from memsr_jax.experiments import claims
from memsr_jax.methods.mssr import config as mssr_config
from memsr_jax.methods.mssr import masks

IMDN_LABEL = "IMDN ×2 (official weights), lightweight reference"


def level_sizes(model_name: str, kwargs: dict, schedule: list[float], prunable: str
                ) -> list[int]:
  """Non-zero params of levels 0..K, from shapes alone (as masks.level_stats counts them)."""
  params = base.params_of(model_name, kwargs)
  flags = jax.tree_util.tree_leaves(masks.prunable_tree(params, prunable))
  sizes = [x.size for x in jax.tree_util.tree_leaves(params)]
  n_prunable = sum(n for n, f in zip(sizes, flags) if f)
  n_dense = pytrees.count_params(params) - n_prunable
  return [n_prunable + n_dense] + [masks.keep_count(n_prunable, sp) + n_dense for sp in schedule]


def matching_width(model_name: str, kwargs: dict, target: int) -> int:
  """n_feats of the dense model (same depth) whose param count is closest to `target`."""
  best = None
  for f in range(1, int(kwargs["n_feats"]) + 1):
    n = pytrees.count_params(base.params_of(model_name, {**kwargs, "n_feats": f}))
    if best is None or abs(n - target) < best[1]:
      best = (f, abs(n - target))
  return best[0]


def _scalable_config(s: dict, data_dir: str) -> ml_collections.ConfigDict:
  if s.get("recipe") == "cpu":
    c = mssr_config.edsr_cpu(scale=2)
    s.update(batch=c.data.batch_size, lr_patch=c.data.lr_patch, ckpt_every=c.ckpt_every)
  else:
    c = mssr_config.edsr_baseline_div2k(scale=2)
    c.model.name = s["model"]
    c.model.kwargs = ml_collections.ConfigDict(dict(s["model_kwargs"]))
    c.schedule.lr = s["lr"]
    base.set_values(c.mssr, {k: s[k] for k in ("rounds", "prune_fraction", "dense_steps",
                                                "rewind_step", "round_steps", "expand_steps",
                                                "expand_lr")})
  base.train_data(c, s, data_dir)
  c.mssr.eval_sets = ()  # rows are evaluated by the runner, with the protocol's SSIM too
  c.total_steps = c.mssr.dense_steps
  return c


def _ticket_config(c, sparsity: float, steps: int) -> ml_collections.ConfigDict:
  """The same dense training, then one prune straight to `sparsity` (no intermediate levels),
  rewind, and retraining for the rest of the scalable model's steps: no SSD, no backward stage."""
  t = copy.deepcopy(c)
  t.mssr.sparsities = (sparsity,)
  t.mssr.rounds = 1
  t.mssr.ssd_weight = 0.0
  t.mssr.expand = False
  t.mssr.round_steps = steps - t.mssr.dense_steps
  return t


def _dense_config(c, s: dict, data_dir: str, width: int, steps: int):
  d = base.config_file("edsr/baseline.py", "x2")  # the supervised engine config
  base.train_data(d, s, data_dir)
  d.model.name = c.model.name
  d.model.kwargs = ml_collections.ConfigDict({**c.model.kwargs.to_dict(), "n_feats": width})
  d.schedule = copy.deepcopy(c.schedule)
  d.optim = copy.deepcopy(c.optim)
  d.total_steps = steps
  return d


def mssr_x2(budget: str, data_dir: str, weights_dir: str) -> base.Experiment:
  s = budgets.settings("mssr_x2", budget)
  c = _scalable_config(s, data_dir)
  m = c.mssr
  schedule = masks.sparsity_schedule(m.prune_fraction, m.rounds, tuple(m.sparsities) or None)
  steps = m.dense_steps + len(schedule) * m.round_steps + (
      (len(schedule) + 1) * m.expand_steps if m.expand else 0)
  kwargs = {**base.registry_kwargs(c.model.name, c.model.kwargs.to_dict()), "scale": 2}
  sizes = level_sizes(c.model.name, kwargs, schedule, m.prunable)
  K = len(schedule)
  width = matching_width(c.model.name, kwargs, sizes[K])
  runs = [base.Run("mssr", c, steps),
          base.Run("dense", _dense_config(c, s, data_dir, width, steps), steps),
          base.Run("ticket", _ticket_config(c, schedule[-1], steps), steps)]
  rows = [base.Row("bicubic", "", ("bicubic",))]
  for k in range(K + 1):
    rows.append(base.Row(f"level {k} of the scalable checkpoint", "mssr", ("mssr_level", k),
                         steps))
  smallest = f"level {K} of the scalable checkpoint"
  dense = f"dense, {width} ch (size of level {K}), trained alone"
  rows += [base.Row(dense, "dense", ("checkpoint", "."), steps),
           base.Row(f"IMP ticket at level {K}'s sparsity, one prune, not nested", "ticket",
                    ("checkpoint", "round_01"), steps),
           base.imdn_row(weights_dir, 2, IMDN_LABEL)]

  def vs_imdn(rows):
    a, b = rows.get(smallest), rows.get(IMDN_LABEL)
    pa, pb = claims.psnr(a, base.CLAIM_SETS, 2), claims.psnr(b, base.CLAIM_SETS, 2)
    return {} if pa is None or pb is None else {"smallest level − IMDN (dB)": pa - pb}

  claim = base.psnr_gap_claim(
      "one scalable checkpoint serves every size, and its smallest level (≈ 94 % sparse) is no "
      "worse than a dense network of the same size trained alone for the same steps (the paper: "
      "the 94 %-sparse level beats the compared lightweight SR models)",
      {"smallest level sparsity (pruned set)": 0.945}, "margin = PSNR(smallest level) − "
      "PSNR(dense rival, same non-zeros, same total steps), mean of Set5 and Set14 ×2; the gap "
      "to IMDN (official weights, trained 1M steps on DIV2K) is reported beside it",
      ("mssr", "dense"), 2, smallest, dense, 0.0, extra=vs_imdn)
  return base.Experiment("mssr_x2", 2, f"MSSR ×2: {c.model.name}, nested lottery-ticket levels",
                         claim, runs, rows, columns=("sparsity",), settings=s)
