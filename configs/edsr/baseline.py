"""EDSR-baseline (64 ch, 16 res blocks) on DIV2K, the EDSR paper's recipe.

  python train.py --config configs/edsr/baseline.py:x2 --workdir runs/edsr_baseline_x2 \
      --config.data.root=/data/DIV2K --config.val.root=/data/benchmark

Batch 16, LR patch 48 (HR 96/144/192 at ×2/×3/×4), L1, Adam (0.9, 0.999, eps 1e-8), lr 1e-4
halved every 200k of 1M iterations (the ×3/×4 models are usually fine-tuned from ×2; here each
trains from scratch unless you start from a checkpoint). Validation: Set5 every 10k steps.
"""
from memsr_jax.train import config_lib


def get_config(arg: str = "x2"):
  scale = {"x2": 2, "x3": 3, "x4": 4}.get(arg)
  if scale is None:
    raise ValueError(f"configs/edsr/baseline.py takes x2, x3 or x4, got {arg!r}")
  c = config_lib.base_config()
  c.scale = scale
  c.model.name = "edsr_baseline"
  c.data.dataset = "div2k"
  c.data.lr_patch = 48
  c.data.batch_size = 16
  c.val.dataset = "set5"
  c.val.every_steps = 10_000
  c.loss.name = "l1"
  c.optim.name = "adam"
  c.schedule.name = "multistep"
  c.schedule.lr = 1e-4
  c.schedule.milestones = (200_000, 400_000, 600_000, 800_000)
  c.schedule.gamma = 0.5
  c.total_steps = 1_000_000
  c.log_every = 100
  c.ckpt_every = 10_000
  return c
