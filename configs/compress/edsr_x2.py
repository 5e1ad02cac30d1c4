"""EDSR-baseline ×2 → EDSRmini ×2 (the paper's run; GPU/TPU recipe).

  python train.py --config configs/compress/edsr_x2.py --workdir runs/compress_edsr_x2 \
      --config.model.init.path=/path/to/edsr_baseline_x2.pth

Prune (Charbonnier + L1-prox SGD 5e-3, λ 1e-4) → EDSRmini (16 ch, 8 blocks, 49,603 params) →
distillation from the pretrained EDSR-baseline (Adam 1e-4, batch 16, LR patch 48, Laplacian-pyramid
loss + 0.1·L1). DIV2K under config.data.root / $MEMSR_DATA_DIR.
"""
from memsr_jax.methods.compress.config import compress_config


def get_config():
  c = compress_config("edsr_baseline", "edsr_mini", scale=2, lr_patch=48, batch_size=16)
  c.data.dataset = "div2k"
  c.model.init.kind = "torch"  # official EDSR-PyTorch or BasicSR weights of EDSR-baseline ×2
  c.model.init.path = ""
  return c
