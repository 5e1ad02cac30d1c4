"""EDSR-baseline ×2: the recipe of configs/edsr/baseline.py at scale 2."""
from memsr_jax.methods import supervised


def get_config():
  return supervised.edsr_baseline_config("x2")
