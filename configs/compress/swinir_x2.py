"""SwinIR-S ×2 → SwinIRmini ×2 (the paper's run; GPU/TPU recipe).

  python train.py --config configs/compress/swinir_x2.py --workdir runs/compress_swinir_x2 \
      --config.model.init.path=/path/to/002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2.pth

The authors' released recipe (memsr_jax/methods/compress/release.py): prune SwinIR-S (embed 60,
depths [6,6,6,6]) 500k steps at constant 5e-3 → SwinIRmini (embed 24, depths [4,4,4], heads 6:
98,868 params) → distill 800k steps, Adam 1e-4 halved at 250k/400k/450k, EMA 0.999, batch 16,
LR patch 64, 5-level average-pooling Laplacian-pyramid loss + 0.1·L1. Students and teacher run
without stochastic depth.
"""
from memsr_jax.methods.compress import release
from memsr_jax.methods.compress.config import compress_config


def get_config():
  c = compress_config("swinir_s", "swinir_mini", scale=2, lr_patch=64, batch_size=16)
  release.apply(c, "swinir_s")
  c.data.dataset = "div2k"
  c.model.init.kind = "torch"  # the official SwinIR-S ×2 release
  c.model.init.path = ""
  return c
