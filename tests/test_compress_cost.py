"""The compression cost report: params and MACs of registry models against hand counts."""
import pytest

from memsr_jax.methods.compress import cost_report


def test_edsr_mini_matches_hand_count():
  # Per LR pixel: head 27·16, 16 body convs 9·16·16, body_conv 9·16·16, upsampler 9·16·64,
  # and the tail conv 9·16·3 at each of the s² = 4 HR pixels.
  per_lr_pixel = 27 * 16 + 17 * 9 * 16 * 16 + 9 * 16 * 64 + 4 * 9 * 16 * 3
  r = cost_report.model_cost("edsr_mini", 2, hr_size=(32, 48))
  assert r["params"] == 49_603
  assert r["macs"] == per_lr_pixel * 16 * 24
  assert r["dot_macs"] == 0


def test_swinir_attention_is_counted():
  # A one-block SwinIR: dense layers + q·kᵀ and attn·v (window 8 → 64 tokens per window).
  r = cost_report.model_cost("swinir_mini", 2, hr_size=(16, 16), depths=(1,), num_heads=(6,))
  n, c = 8 * 8, 24  # LR 8×8 = one window
  dense = n * (3 * c * c + c * c + 2 * c * 2 * c)  # qkv, proj, fc1 (×2 hidden), fc2
  attn = 2 * n * n * c
  assert r["dot_macs"] == dense + attn
  with pytest.raises(ValueError, match="divisible"):
    cost_report.model_cost("edsr_mini", 2, hr_size=(15, 16))
