"""Quickstart: a small EDSR ×2 on scikit-image's bundled photos, a few minutes on a laptop CPU.

  python train.py --config configs/quickstart.py --workdir runs/quickstart

Trains 16 channels × 4 residual blocks on `skimage_train` (7 photos), validates on `skimage_val`
(2 photos) by the evaluation protocol, and leaves checkpoints, metrics.jsonl and TensorBoard events
in the workdir. Rerunning the command resumes (or skips, when finished).

This is a smoke-scale run (about 2 minutes on a busy 2-core CPU): after 500 steps the model reaches
about 31.6 dB Y-PSNR on skimage_val, still below bicubic (32.9 dB); real quality needs the DIV2K
recipes (configs/edsr, configs/memsr) and many more steps.
"""
from memsr_jax.train import config_lib


def get_config():
  c = config_lib.base_config()
  c.scale = 2
  c.model.name = "edsr_mini"
  c.model.kwargs.n_feats = 16
  c.model.kwargs.n_resblocks = 4
  c.data.dataset = "skimage_train"
  c.data.lr_patch = 32
  c.data.batch_size = 8
  c.val.dataset = "skimage_val"
  c.val.every_steps = 250
  c.total_steps = 500
  c.schedule.name = "one_cycle"
  c.schedule.lr = 1e-3
  c.log_every = 25
  c.ckpt_every = 250
  return c
