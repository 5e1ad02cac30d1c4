"""EDSR-baseline ×3: the recipe of configs/edsr/baseline.py at scale 3."""
from memsr_jax.methods import supervised


def get_config():
  return supervised.edsr_baseline_config("x3")
