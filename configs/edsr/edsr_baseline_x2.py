"""EDSR-baseline ×2: the recipe of configs/edsr/baseline.py at scale 2."""
from memsr_jax.train import config_lib


def get_config():
  return config_lib.edsr_baseline_config("x2")
