"""EDSR-baseline ×4: the recipe of configs/edsr/baseline.py at scale 4."""
from memsr_jax.train import config_lib


def get_config():
  return config_lib.edsr_baseline_config("x4")
