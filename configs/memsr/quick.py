"""MemSR in a few CPU minutes: a 16-channel, 2-block teacher ×2 on scikit-image's photos.

  python train.py --config configs/memsr/quick.py --workdir runs/memsr_quick
Same stages as configs/memsr/plain.py; `quick.py:random` / `quick.py:nodistill` for the ablation.
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
  c.total_steps = 100
  c.log_every = 25
  c.ckpt_every = 100
  c.schedule.lr = 1e-3
  c.memsr.teacher.kwargs.n_feats = 16
  c.memsr.teacher.kwargs.n_resblocks = 2
  c.memsr.teacher.total_steps = 100
  c.memsr.teacher.lr = 1e-3
  c.memsr.width = 12
  c.memsr.n_patches = 8
  c.progress = False
  c.tensorboard = False
  return c
