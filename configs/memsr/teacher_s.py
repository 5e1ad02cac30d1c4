"""MemSR Teacher-S (64 ch, 8 res blocks, 1×1 conv tail) on DIV2K, MemSR's training recipe.

  python train.py --config configs/memsr/teacher_s.py:x2 --workdir runs/teacher_s_x2 \
      --config.data.root=/data/DIV2K --config.val.root=/data/benchmark

METHODS.md §1: DIV2K 800 images, HR patch 192 (LR patch 192/s), batch 16, flips and transpose,
Adam (0.9, 0.999), L1, 1e6 iterations, one-cycle LR with max 2e-4 (30 % warm-up, cosine).
"""
from memsr_jax.train import config_lib

PRESET = "memsr_teacher_s"


def teacher_config(preset: str, arg: str):
  scale = {"x2": 2, "x3": 3, "x4": 4}.get(arg)
  if scale is None:
    raise ValueError(f"MemSR teacher configs take x2, x3 or x4, got {arg!r}")
  c = config_lib.base_config()
  c.scale = scale
  c.model.name = preset
  c.data.dataset = "div2k"
  c.data.lr_patch = 192 // scale  # HR patch 192 at every scale
  c.data.batch_size = 16
  c.val.dataset = "set5"
  c.val.every_steps = 10_000
  c.loss.name = "l1"
  c.optim.name = "adam"
  c.optim.b1, c.optim.b2 = 0.9, 0.999
  c.schedule.name = "one_cycle"
  c.schedule.lr = 2e-4
  c.schedule.warmup_frac = 0.3
  c.total_steps = 1_000_000
  c.log_every = 100
  c.ckpt_every = 10_000
  return c


def get_config(arg: str = "x2"):
  return teacher_config(PRESET, arg)
