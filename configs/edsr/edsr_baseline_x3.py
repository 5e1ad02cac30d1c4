"""EDSR-baseline ×3: the recipe of configs/edsr/baseline.py at scale 3."""
from memsr_jax.train import config_lib


def get_config():
  return config_lib.edsr_baseline_config("x3")
