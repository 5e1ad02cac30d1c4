"""MSSR on EDSR-baseline ×4, DIV2K (GPU/TPU recipe; see memsr_jax/methods/mssr/recipes.py).

  python train.py --config configs/mssr/edsr_baseline_x4.py --workdir runs/mssr_x4 \
      --config.data.root=/path/to/datasets --config.val.root=/path/to/datasets
"""
from memsr_jax.methods.mssr import recipes


def get_config():
  return recipes.edsr_baseline_div2k(scale=4)
