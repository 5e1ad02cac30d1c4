"""EDSR family: EDSR, EDSR-baseline, EDSRmini and the MemSR residual teachers.

EDSR (Lim et al. 2017) without BatchNorm. The MemSR teachers use a 1×1 conv tail to 3·s² channels
followed by pixel shuffle instead of EDSR's 3×3 upsampler (METHODS.md §1).
"""
import flax.linen as nn
import jax.numpy as jnp

from memsr_jax.models.layers import DIV2K_RGB_MEAN
from memsr_jax.models.layers import conv
from memsr_jax.models.layers import pixel_shuffle
from memsr_jax.models.layers import upsample_stages


class ResBlock(nn.Module):
  n_feats: int
  res_scale: float = 1.0

  @nn.compact
  def __call__(self, x):
    y = conv(self.n_feats, name="conv1")(x)
    y = nn.relu(y)
    y = conv(self.n_feats, name="conv2")(y)
    if self.res_scale != 1.0:
      y = y * self.res_scale
    return x + y


class EDSR(nn.Module):
  """EDSR-style residual SR network; input/output float32 NHWC in 0..255."""
  scale: int = 2
  n_feats: int = 64
  n_resblocks: int = 16
  res_scale: float = 1.0
  tail: str = "upsampler"  # "upsampler" (EDSR) | "conv1x1" (MemSR teachers)
  rgb_mean: tuple = DIV2K_RGB_MEAN
  n_colors: int = 3

  def setup(self):
    if self.tail not in ("upsampler", "conv1x1"):
      raise ValueError(f"EDSR tail must be 'upsampler' or 'conv1x1', got {self.tail!r}")
    self.head = conv(self.n_feats, name="head")
    self.blocks = [ResBlock(self.n_feats, self.res_scale, name=f"body_{i}")
                   for i in range(self.n_resblocks)]
    self.body_conv = conv(self.n_feats, name="body_conv")
    if self.tail == "conv1x1":
      self.tail_1x1 = conv(self.n_colors * self.scale ** 2, kernel=1, name="tail")
    else:
      self.ups = [conv(self.n_feats * s * s, name=f"upsampler_{k}")
                  for k, s in enumerate(upsample_stages(self.scale))]
      self.tail_conv = conv(self.n_colors, name="tail_conv")

  def encode(self, x):
    """Mean shift and head conv: the features the global skip starts from."""
    return self.head(x - jnp.asarray(self.rgb_mean, x.dtype))

  def run_blocks(self, h, start: int = 0, stop: int | None = None):
    """Residual blocks start..stop-1 (Python ints, static)."""
    stop = self.n_resblocks if stop is None else stop
    for blk in self.blocks[start:stop]:
      h = blk(h)
    return h

  def decode(self, body_out, h0):
    """Body conv, global skip, tail (upsampler or 1×1 + pixel shuffle) and mean add-back."""
    h = self.body_conv(body_out) + h0
    if self.tail == "conv1x1":
      y = pixel_shuffle(self.tail_1x1(h), self.scale)
    else:
      for s, up in zip(upsample_stages(self.scale), self.ups):
        h = pixel_shuffle(up(h), s)
      y = self.tail_conv(h)
    return y + jnp.asarray(self.rgb_mean, y.dtype)

  def __call__(self, x):
    h0 = self.encode(x)
    return self.decode(self.run_blocks(h0), h0)
