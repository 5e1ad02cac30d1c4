"""EDSR family: EDSR, EDSR-baseline, EDSRmini and the MemSR residual teachers.

EDSR (Lim et al. 2017) without BatchNorm. The MemSR teachers use a 1×1 conv tail to 3·s² channels
followed by pixel shuffle instead of EDSR's 3×3 upsampler (docs/MEMSR.md).

`body_bias="map"` gives the body convs (both convs of every block and the body conv) a 3×3 bias map
on a zero-padded ones image instead of a vector bias: the layout of the official MemSR teachers
(wukailu/MemSR `EDSR_layerwise`, whose body convs read a constant ones channel), which differs
from a vector bias at the image border only.
"""
import flax.linen as nn
import jax.numpy as jnp

from memsr_jax.models.layers import DIV2K_RGB_MEAN
from memsr_jax.models.layers import TORCH_CONV_INIT
from memsr_jax.models.layers import conv
from memsr_jax.models.layers import pixel_shuffle
from memsr_jax.models.layers import upsample_stages
from memsr_jax.models.plain import PlainConv

BODY_BIAS = ("vector", "map")


def body_conv(features: int, body_bias: str, name: str):
  """A 3×3 body conv with a vector bias (EDSR) or a ones-image bias map (official MemSR)."""
  if body_bias == "vector":
    return conv(features, name=name)
  if body_bias == "map":
    return PlainConv(features, "map", 3, TORCH_CONV_INIT, name=name)
  raise ValueError(f"EDSR body_bias must be one of {BODY_BIAS}, got {body_bias!r}")


class ResBlock(nn.Module):
  n_feats: int
  res_scale: float = 1.0
  body_bias: str = "vector"

  @nn.compact
  def __call__(self, x):
    y = body_conv(self.n_feats, self.body_bias, "conv1")(x)
    y = nn.relu(y)
    y = body_conv(self.n_feats, self.body_bias, "conv2")(y)
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
  body_bias: str = "vector"  # "vector" | "map" (official MemSR teachers, see the module doc)
  rgb_mean: tuple = DIV2K_RGB_MEAN
  n_colors: int = 3

  def setup(self):
    if self.tail not in ("upsampler", "conv1x1"):
      raise ValueError(f"EDSR tail must be 'upsampler' or 'conv1x1', got {self.tail!r}")
    if self.body_bias not in BODY_BIAS:
      raise ValueError(f"EDSR body_bias must be one of {BODY_BIAS}, got {self.body_bias!r}")
    self.head = conv(self.n_feats, name="head")
    self.blocks = [ResBlock(self.n_feats, self.res_scale, self.body_bias, name=f"body_{i}")
                   for i in range(self.n_resblocks)]
    self.body_conv = body_conv(self.n_feats, self.body_bias, "body_conv")
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
