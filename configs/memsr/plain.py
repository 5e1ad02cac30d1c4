"""MemSR (ICML'22) with the paper's recipe: one config per experiment, picked by the argument.

  python train.py --config configs/memsr/plain.py:m,x4 --workdir runs/memsr_m_x4 \
      --config.data.root=/data --config.val.root=/data
Argument tokens: size s | m | l | x0.14 | x0.05 (Plain-X, adaptive widths), scale x2 | x3 | x4,
and for the ablation `random` (random init) and/or `nodistill` (L1 only).
Stages: teacher (or --config.teacher_checkpoint=<trained teacher>) → convert → init → student.
"""
from memsr_jax.methods.memsr import config as memsr_config


def get_config(arg: str = "m,x4"):
  return memsr_config.paper(**memsr_config.parse_arg(arg))
