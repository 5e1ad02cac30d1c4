"""EDSR-baseline ×2 → EDSRmini ×2 (the paper's run; GPU/TPU recipe).

  python train.py --config configs/compress/edsr_x2.py --workdir runs/compress_edsr_x2 \
      --config.model.init.path=/path/to/edsr_baseline_x2.pth

The authors' released recipe (memsr_jax/methods/compress/release.py; docs/COMPRESS.md has the
table, `python -m memsr_jax.release_check` prints it): prune 100k steps (Charbonnier ε 1e-6 on 0..1,
L1-prox SGD 5e-3 halved at 20k, λ 1e-4, EMA 0.999) → EDSRmini (16 ch, 8 blocks, res_scale 2, 49,603
params) → distillation from the pretrained EDSR-baseline for 800k steps (Adam 1e-4 halved at 200k,
EMA 0.999, batch 16, LR patch 48, 5-level average-pooling Laplacian-pyramid loss + 0.1·L1).
DIV2K under config.data.root / $MEMSR_DATA_DIR.
"""
from memsr_jax.methods.compress import release
from memsr_jax.methods.compress.config import compress_config


def get_config():
  c = compress_config("edsr_baseline", "edsr_mini", scale=2, lr_patch=48, batch_size=16)
  release.apply(c, "edsr_baseline")
  c.data.dataset = "div2k"
  c.model.init.kind = "torch"  # official EDSR-PyTorch or BasicSR weights of EDSR-baseline ×2
  c.model.init.path = ""
  return c
