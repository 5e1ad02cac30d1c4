"""CPU-scale run of all three stages on SwinIR: SwinIR-S → SwinIRmini ×2, on a small budget.

No pretrained SwinIR-S weights are available offline, so the prune stage starts from a random
SwinIR-S (pass --config.model.init.kind=torch --config.model.init.path=... to use the official
release); the distill stage uses the imported IMDN ×2 as the teacher. It shows the stages run,
resume and give a SwinIRmini that beats bicubic; it does not reproduce the paper's numbers.

  memsr-fetch t91 bsd200 set5 imdn
  memsr-train --config compress/cpu_swinir_x2 --workdir runs/cpu_swinir_compress
The no-teacher baseline (same fixed student, steps, data and seed; no prune stage needed):
  ... --config.compress.stages=distill --config.compress.distill.teacher.source=none \
      --workdir runs/cpu_swinir_scratch
"""
from memsr_jax.methods.compress.config import compress_config
from memsr_jax.methods.compress.config import cpu_imdn_distill


def get_config():
  c = compress_config("swinir_s", "swinir_mini", scale=2, prune_steps=50, distill_steps=1000,
                      lr_patch=24, batch_size=8)
  c.data.dataset = "t91+bsd200"
  c.data.root = ""
  c.val.dataset = ""  # SwinIR compiles once per image size: evaluate afterwards instead
  c.val.every_steps = 0
  c.log_every = 50
  c.ckpt_every = 250
  c.progress = False
  c.compress.prune.optim.ema_decay = 0.9
  c.compress.shrink.mode = "fixed"  # the rule's answer is recorded in compress/result.json
  cpu_imdn_distill(c)
  return c
