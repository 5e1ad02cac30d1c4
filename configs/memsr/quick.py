"""MemSR in a few CPU minutes: a 32-channel, 4-block teacher ×2 on scikit-image's photos.

  python train.py --config configs/memsr/quick.py --workdir runs/memsr_quick
  # + an int8 student for ONNX Runtime (workdir/qat; export it with --quantize int8):
  python train.py --config configs/memsr/quick.py --workdir runs/memsr_quick \
      --config.memsr.qat.steps=300
Same stages as configs/memsr/plain.py; `quick.py:random` / `quick.py:nodistill` for the ablation.
Sizes: 600 teacher and 600 student steps, student width 32, the smallest measured here whose
student beats bicubic on skimage_val (+0.82 dB; the earlier 16-channel, 2-block, 100-step
defaults ended 3.99 dB below it); docs/MEMSR.md.
"""
from memsr_jax.methods.memsr import config as memsr_config


def get_config(arg: str = ""):
  kw = memsr_config.parse_arg(arg)
  c = memsr_config.paper(size="s", scale=kw.pop("scale", 2), **kw)
  c.data.dataset = "skimage_train"
  c.data.lr_patch = 24
  c.data.batch_size = 8
  c.val.dataset = "skimage_val"
  c.val.every_steps = 0
  c.total_steps = 600
  c.log_every = 100
  c.ckpt_every = 100
  c.schedule.lr = 1e-3
  c.memsr.teacher.kwargs.n_feats = 32
  c.memsr.teacher.kwargs.n_resblocks = 4
  c.memsr.teacher.total_steps = 600
  c.memsr.teacher.lr = 1e-3
  c.memsr.width = 32
  c.memsr.n_patches = 8
  c.progress = False
  c.tensorboard = False
  return c
