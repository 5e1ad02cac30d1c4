"""MemSR Teacher-M (64 ch, 16 res blocks, 1×1 conv tail).

  python train.py --config configs/memsr/teacher_m.py:x2 --workdir runs/teacher_m_x2 \
      --config.data.root=/data/DIV2K --config.val.root=/data/benchmark

The recipe (docs/MEMSR.md) is `memsr_jax.methods.memsr.config.teacher_config`.
"""
from memsr_jax.methods.memsr import config as memsr_config


def get_config(arg: str = "x2"):
  return memsr_config.teacher_config("memsr_teacher_m", arg)
