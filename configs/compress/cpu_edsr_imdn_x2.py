"""CPU-scale: EDSRmini ×2 distilled from the pretrained IMDN ×2 (official weights, imported).

Distill stage only (the student is the paper's fixed EDSRmini); T91 + BSD200, Set5 validation.

  memsr-fetch t91 bsd200 set5 imdn
  memsr-train --config compress/cpu_edsr_imdn_x2 --workdir runs/cpu_edsrmini_kd
The no-teacher baseline (plain L1, same student, steps, data and seed):
  ... --config.compress.distill.teacher.source=none --workdir runs/cpu_edsrmini_scratch
The paper's level weights 2^i (the recipe configs' default) instead of equal ones:
  ... --config.compress.distill.level_weight_base=2 --workdir runs/cpu_edsrmini_kd_2i

Budget: 2 shared CPU cores, so a short schedule (Adam 1e-3 with cosine decay instead of the paper's
1e-4 for 500k steps), batch 16 and LR patch 32 (HR 64: the 4-level pyramid goes 64→32→16→8).
"""
from memsr_jax.methods.compress.config import compress_config
from memsr_jax.methods.compress.config import cpu_imdn_distill


def get_config():
  c = compress_config("imdn", "edsr_mini", scale=2, distill_steps=1000, lr_patch=32,
                      batch_size=16)
  c.data.dataset = "t91+bsd200"
  c.data.root = ""  # named sets are found under $MEMSR_DATA_DIR
  c.val.dataset = "set5"
  c.val.every_steps = 500
  c.log_every = 50
  c.ckpt_every = 500
  c.progress = False
  c.compress.stages = "distill"
  cpu_imdn_distill(c)
  # docs/COMPRESS.md CPU figures were measured with EDSRmini at res_scale 1 (the release uses 2).
  c.compress.shrink.student_kwargs.res_scale = 1.0
  return c
