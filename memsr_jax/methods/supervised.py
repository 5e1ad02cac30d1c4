"""Supervised training's recipes (config.method = "supervised": the engine's SupervisedTask trains
config.model on LR/HR pairs)."""
import ml_collections

from memsr_jax.train import config_lib


def edsr_baseline_config(arg: str = "x2") -> ml_collections.ConfigDict:
  """EDSR-baseline (64 ch, 16 res blocks) on DIV2K by the EDSR paper's recipe, at x2, x3 or x4.

  Batch 16, LR patch 48, L1, Adam (0.9, 0.999, eps 1e-8), lr 1e-4 halved every 200k of 1M
  iterations; validation on Set5 every 10k steps.
  """
  scale = {"x2": 2, "x3": 3, "x4": 4}.get(arg)
  if scale is None:
    raise ValueError(f"the EDSR-baseline recipe takes x2, x3 or x4, got {arg!r}")
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
