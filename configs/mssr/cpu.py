"""MSSR at CPU scale: EDSR 16 ch × 8 blocks ×2 on T91 (+ BSD200 when given a merged folder).

  memsr-fetch t91 set5 && memsr-train --config mssr/cpu --workdir runs/mssr_cpu
Ablations: --config.mssr.rewind_to=init (reset to init), --config.mssr.ssd_weight=0 (no SSD),
--config.mssr.expand=False (forward stage only).
"""
from memsr_jax.methods.mssr import config as mssr_config


def get_config():
  return mssr_config.edsr_cpu(scale=2)
