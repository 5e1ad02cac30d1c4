"""MSSR on EDSR-baseline ×2, DIV2K (GPU/TPU recipe; see memsr_jax/methods/mssr/config.py).

  python train.py --config configs/mssr/edsr_baseline_x2.py --workdir runs/mssr_x2 \
      --config.data.root=/path/to/datasets --config.val.root=/path/to/datasets
"""
from memsr_jax.methods.mssr import config as mssr_config


def get_config():
  return mssr_config.edsr_baseline_div2k(scale=2)
