"""The four experiments as data: runs (what trains, in W/<run>/), rows (what the table shows) and
the claims each tests. One module per experiment (exp_*.py); base.py holds what they share."""
from memsr_jax.experiments import base
from memsr_jax.experiments import exp_compress
from memsr_jax.experiments import exp_edsr
from memsr_jax.experiments import exp_memsr
from memsr_jax.experiments import exp_mssr

TrainRun, Row, Experiment = base.TrainRun, base.Row, base.Experiment
TRAIN_SETS, CLAIM_SETS = base.TRAIN_SETS, base.CLAIM_SETS
level_sizes, matching_width = exp_mssr.level_sizes, exp_mssr.matching_width

NAMES = ("edsr_baseline_x2", "memsr_x4", "mssr_x2", "compress_x2")


def build(name: str, budget: str, data_dir: str, weights_dir: str, workdir: str,
          seeds: int = 1, teacher: str = "") -> base.Experiment:
  """Experiment `name` at `budget`; its seeded runs repeated for `seeds` seeds; `teacher`:
  compress_x2's distillation teacher checkpoint instead of the official IMDN ×2 weights."""
  if name == "edsr_baseline_x2":
    exp = exp_edsr.edsr_baseline_x2(budget, data_dir, weights_dir)
  elif name == "memsr_x4":
    exp = exp_memsr.memsr_x4(budget, data_dir, weights_dir, workdir)
  elif name == "mssr_x2":
    exp = exp_mssr.mssr_x2(budget, data_dir, weights_dir)
  elif name == "compress_x2":
    exp = exp_compress.compress_x2(budget, data_dir, weights_dir, workdir, teacher)
  else:
    raise ValueError(f"unknown experiment {name!r}; use one of {NAMES}")
  return base.with_seeds(exp, seeds)
