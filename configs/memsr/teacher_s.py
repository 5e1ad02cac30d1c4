"""MemSR Teacher-S (64 ch, 8 res blocks, 1×1 conv tail) on DIV2K, MemSR's training recipe.

  python train.py --config configs/memsr/teacher_s.py:x2 --workdir runs/teacher_s_x2 \
      --config.data.root=/data/DIV2K --config.val.root=/data/benchmark

The recipe (docs/MEMSR.md) is `memsr_jax.methods.memsr.config.teacher_config`.
"""
from memsr_jax.methods.memsr import config as memsr_config


def get_config(arg: str = "x2"):
  return memsr_config.teacher_config("memsr_teacher_s", arg)
