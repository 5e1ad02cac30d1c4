"""CPU-scale smoke run of all three stages on SwinIR: SwinIR-S → SwinIRmini ×2.

No pretrained SwinIR-S weights are available offline, so the prune stage starts from a random
SwinIR-S (pass --config.model.init.kind=torch --config.model.init.path=... to use the official
release); the distill stage uses the imported IMDN ×2 as the teacher. A small budget that shows the
stages run and resume, not a reproduction of the paper's numbers.

  MEMSR_DATA_DIR=../shared/datasets python train.py \
      --config configs/compress/cpu_swinir_x2.py --workdir runs/cpu_swinir_compress
"""
from memsr_jax.methods.compress.config import compress_config


def get_config():
  c = compress_config("swinir_s", "swinir_mini", scale=2, prune_steps=10, distill_steps=100,
                      lr_patch=16, batch_size=4)
  c.data.dataset = "t91+bsd200"
  c.data.root = ""
  c.val.dataset = ""  # SwinIR compiles once per image size: evaluate afterwards instead
  c.val.every_steps = 0
  c.log_every = 5
  c.ckpt_every = 100
  c.progress = False
  c.compress.prune.optim.ema_decay = 0.9
  c.compress.shrink.mode = "fixed"  # the rule's answer is recorded in compress/result.json
  c.compress.distill.schedule.name = "cosine"
  c.compress.distill.schedule.lr = 1e-3
  c.compress.distill.teacher.source = "torch"
  c.compress.distill.teacher.model = "imdn"
  c.compress.distill.teacher.path = "../shared/weights/imdn/IMDN_x2.pth"
  return c
