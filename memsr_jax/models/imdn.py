"""IMDN: Information Multi-distillation Network (Hui, Gao, Yang, Wang; ACM MM 2019).

Architecture of the official `Zheng222/IMDN` release, so its PyTorch weights load exactly
(`memsr_jax.interop.torch_import`):
  fea_conv 3×3 → 6 IMDBs → concat of all block outputs → 1×1 fuse conv + LeakyReLU(0.05)
  → lr_conv 3×3 + global skip from fea_conv → upsampler (3×3 conv to 3·s², pixel shuffle).
An IMDB runs three 3×3 conv + LeakyReLU stages; each splits off `distilled` channels (a quarter)
and passes the rest on; a fourth conv maps the remainder to `distilled` channels. The four
distilled parts are concatenated, reweighted by contrast-aware channel attention (CCA: per-channel
std + mean → 1×1 down, ReLU, 1×1 up, sigmoid), fused by a 1×1 conv and added to the block input.

IMDN works on 0..1 images without mean shift; this module takes and returns 0..255 (DESIGN.md).
"""
import flax.linen as nn
import jax.numpy as jnp

from memsr_jax.models.layers import conv
from memsr_jax.models.layers import pixel_shuffle


class ContrastChannelAttention(nn.Module):
  """CCA layer: gates channels by sigmoid(MLP(std + mean)) over the spatial dims."""
  channels: int
  reduction: int = 16

  @nn.compact
  def __call__(self, x):
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    # Population std (divide by H·W), as the official `stdv_channels`.
    std = jnp.sqrt(jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True))
    y = conv(self.channels // self.reduction, kernel=1, name="down")(std + mean)
    y = nn.relu(y)
    y = conv(self.channels, kernel=1, name="up")(y)
    return x * nn.sigmoid(y)


class IMDBlock(nn.Module):
  """Information multi-distillation block (the official `IMDModule`)."""
  channels: int = 64
  distill_rate: float = 0.25
  negative_slope: float = 0.05

  @nn.compact
  def __call__(self, x):
    distilled = int(self.channels * self.distill_rate)
    act = lambda t: nn.leaky_relu(t, self.negative_slope)
    parts = []
    h = x
    for k in (1, 2, 3):
      h = act(conv(self.channels, name=f"c{k}")(h))
      parts.append(h[..., :distilled])
      h = h[..., distilled:]
    parts.append(conv(distilled, name="c4")(h))
    out = jnp.concatenate(parts, axis=-1)
    out = ContrastChannelAttention(distilled * 4, name="cca")(out)
    return conv(self.channels, kernel=1, name="c5")(out) + x


class IMDN(nn.Module):
  """IMDN; input/output float32 NHWC in 0..255 (0..1 inside, as the official model)."""
  scale: int = 2
  n_feats: int = 64
  n_blocks: int = 6
  distill_rate: float = 0.25
  negative_slope: float = 0.05
  n_colors: int = 3

  @nn.compact
  def __call__(self, x):
    x = x / 255.0
    act = lambda t: nn.leaky_relu(t, self.negative_slope)
    fea = conv(self.n_feats, name="fea_conv")(x)
    h = fea
    outs = []
    for i in range(self.n_blocks):
      h = IMDBlock(self.n_feats, self.distill_rate, self.negative_slope, name=f"imdb_{i}")(h)
      outs.append(h)
    h = act(conv(self.n_feats, kernel=1, name="fuse")(jnp.concatenate(outs, axis=-1)))
    h = conv(self.n_feats, name="lr_conv")(h) + fea
    y = conv(self.n_colors * self.scale ** 2, name="upsampler")(h)
    return pixel_shuffle(y, self.scale) * 255.0

