"""Receptive fields (halo widths) of the zoo's models, in LR pixels.

A model whose output pixel depends only on LR pixels within `r` of it (and that zero-pads every
conv at the true image border) can be tiled exactly: run each tile with a halo of `r` real
neighbour pixels and keep only its core. `None` means "unbounded" (global pooling, attention over
the padded image): such models are tiled approximately with feathered overlaps.
"""
from memsr_jax.models.edsr import EDSR
from memsr_jax.models.layers import upsample_stages
from memsr_jax.models.plain import PlainNet


def receptive_radius(model) -> int | None:
  """LR pixels each side that one output pixel can see, or None when unbounded."""
  if isinstance(model, PlainNet):
    # Each 3×3 body conv sees 1 pixel each side; the tail runs at LR resolution before the shuffle.
    return model.n_layers + model.tail_kernel // 2
  if isinstance(model, EDSR):
    radius = 1 + 2 * model.n_resblocks + 1  # head, two convs per block, body conv (all LR)
    if model.tail == "upsampler":
      # Upsampler and tail convs run at 2×/4× resolution and so see less than one LR pixel each;
      # after the pixel-shuffle rounding, one LR pixel per conv is a safe (never too small) bound.
      radius += len(upsample_stages(model.scale)) + 1
    return radius
  return None
