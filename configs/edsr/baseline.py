"""EDSR-baseline (64 ch, 16 res blocks) on DIV2K, the EDSR paper's recipe.

  python train.py --config configs/edsr/baseline.py:x2 --workdir runs/edsr_baseline_x2 \
      --config.data.root=/data/DIV2K --config.val.root=/data/benchmark

Batch 16, LR patch 48 (HR 96/144/192 at ×2/×3/×4), L1, Adam (0.9, 0.999, eps 1e-8), lr 1e-4
halved every 200k of 1M iterations (the ×3/×4 models are usually fine-tuned from ×2; here each
trains from scratch unless you start from a checkpoint). Validation: Set5 every 10k steps.
The recipe is `memsr_jax.methods.supervised.edsr_baseline_config`.
"""
from memsr_jax.methods import supervised


def get_config(arg: str = "x2"):
  return supervised.edsr_baseline_config(arg)
