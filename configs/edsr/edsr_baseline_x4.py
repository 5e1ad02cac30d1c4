"""EDSR-baseline ×4: the recipe of configs/edsr/baseline.py at scale 4."""
from memsr_jax.methods import supervised


def get_config():
  return supervised.edsr_baseline_config("x4")
