"""SwinIR (Liang et al., ICCVW 2021) for image SR, in Flax.

Matches the official `JingyunLiang/SwinIR` network so released weights convert exactly
(`memsr_jax.interop.torch_import`):
  (x − mean)·img_range → conv_first 3×3 → patch embed (flatten + LayerNorm)
  → RSTBs (Swin blocks, then a 3×3 conv on the unembedded map, + the RSTB input)
  → LayerNorm → conv_after_body 3×3 + skip from conv_first → upsampler → /img_range + mean.
Swin block: x + W-MSA(LN(x)), then x + MLP(LN(x)) (GELU, exact erf form); odd blocks shift the
windows by window//2 with a cyclic roll and mask attention across the wrapped-around regions.
Window attention adds a learned relative position bias, a (2w−1)² × heads table indexed by a
constant relative-position index (a buffer in PyTorch, a NumPy constant here, never a param).

The input is padded (reflect, bottom/right) to a multiple of the window and the output cropped
back, as the `check_image_size` of SwinIR-style PyTorch networks; the shift mask is computed for
the padded size at trace time. (The official test script instead pads by mirror-concatenation,
which repeats the edge pixel, so its border pixels can differ slightly from this model's.)
(Inputs smaller than the padding, e.g. 3×3 with window 8, are reflected repeatedly as NumPy does,
where PyTorch's reflect pad would refuse them.)

Stochastic depth (linearly increasing to `drop_path_rate`) is active only with
`deterministic=False` and then needs the "dropout" rng.

Input/output: float32 NHWC 0..255 (the official model runs on 0..1 with img_range 1).
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.models.layers import conv
from memsr_jax.models.layers import pixel_shuffle
from memsr_jax.models.layers import upsample_stages

SWINIR_RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K mean in 0..1, subtracted before img_range.
_MASK_VALUE = -100.0  # The official code adds −100 (not −inf) across shifted-window regions.
_dense_init = nn.initializers.truncated_normal(stddev=0.02)  # official `trunc_normal_(std=.02)`


def layer_norm(name: str) -> nn.LayerNorm:
  # Two-pass variance: the fast E[x²]−E[x]² form loses digits that PyTorch's LayerNorm keeps.
  return nn.LayerNorm(epsilon=1e-5, use_fast_variance=False, name=name)


def relative_position_index(window: int) -> np.ndarray:
  """[w², w²] index into the (2w−1)² bias table for every (query, key) pair in a window."""
  coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij"))
  coords = coords.reshape(2, -1)
  rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)
  return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def window_partition(x: jnp.ndarray, window: int) -> jnp.ndarray:
  """[B, H, W, C] → [B·nW, w², C], windows in row-major order."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // window, window, w // window, window, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: jnp.ndarray, window: int, h: int, w: int) -> jnp.ndarray:
  """Inverse of `window_partition`: [B·nW, w², C] → [B, H, W, C]."""
  c = windows.shape[-1]
  x = windows.reshape(-1, h // window, w // window, window, window, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shifted_window_regions(h: int, w: int, window: int, shift: int) -> np.ndarray:
  """[nW, w²] int32 region label of every pixel of every shifted window on an h×w map.

  After the cyclic roll, a window at the bottom/right edge holds pixels from up to four regions
  that are not neighbours in the image; attention between different regions is suppressed.
  """
  region = np.zeros((1, h, w, 1), np.int32)
  cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
  label = 0
  for hs in cuts:
    for ws in cuts:
      region[:, hs, ws, :] = label
      label += 1
  return np.asarray(window_partition(region, window))[..., 0]


def region_mask(regions) -> jnp.ndarray:
  """Additive attention mask (0 or −100) [nW, w², w²] from window region labels."""
  regions = jnp.asarray(regions)
  return jnp.where(regions[:, None, :] != regions[:, :, None], _MASK_VALUE, 0.0)


def shifted_window_mask(h: int, w: int, window: int, shift: int) -> np.ndarray:
  """[nW, w², w²] additive mask (0 or −100) for shifted windows on an h×w map."""
  return np.asarray(region_mask(shifted_window_regions(h, w, window, shift)), np.float32)


class DropPath(nn.Module):
  """Stochastic depth: drops the whole residual branch per sample (rescaled by 1/keep)."""
  rate: float

  @nn.compact
  def __call__(self, x, deterministic: bool):
    if deterministic or self.rate == 0.0:
      return x
    keep = 1.0 - self.rate
    mask = jax.random.bernoulli(self.make_rng("dropout"), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, 0.0)


class WindowAttention(nn.Module):
  """Multi-head self-attention inside w×w windows with relative position bias."""
  dim: int
  num_heads: int
  window: int

  @nn.compact
  def __call__(self, x, mask=None):
    n_win, n, c = x.shape  # n_win = B·nW, n = w²
    head_dim = c // self.num_heads
    qkv = nn.Dense(3 * c, kernel_init=_dense_init, name="qkv")(x)
    qkv = qkv.reshape(n_win, n, 3, self.num_heads, head_dim).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * head_dim ** -0.5, qkv[1], qkv[2]
    attn = jnp.einsum("bhqd,bhkd->bhqk", q, k)
    table = self.param("relative_position_bias_table", _dense_init,
                       ((2 * self.window - 1) ** 2, self.num_heads))
    index = relative_position_index(self.window).reshape(-1)
    bias = table[index].reshape(n, n, self.num_heads).transpose(2, 0, 1)
    attn = attn + bias[None]
    if mask is not None:
      n_mask = mask.shape[0]
      attn = attn.reshape(n_win // n_mask, n_mask, self.num_heads, n, n) + mask[None, :, None]
      attn = attn.reshape(n_win, self.num_heads, n, n)
    attn = jax.nn.softmax(attn, axis=-1)
    out = jnp.einsum("bhqk,bhkd->bqhd", attn, v).reshape(n_win, n, c)
    return nn.Dense(c, kernel_init=_dense_init, name="proj")(out)


class Mlp(nn.Module):
  dim: int
  hidden: int

  @nn.compact
  def __call__(self, x):
    x = nn.Dense(self.hidden, kernel_init=_dense_init, name="fc1")(x)
    x = nn.gelu(x, approximate=False)
    return nn.Dense(self.dim, kernel_init=_dense_init, name="fc2")(x)


class SwinBlock(nn.Module):
  """Swin Transformer block on a [B, H, W, C] map (H, W multiples of the window)."""
  dim: int
  num_heads: int
  window: int
  shift: int
  mlp_ratio: float
  drop_path: float = 0.0

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    b, h, w, c = x.shape
    drop = DropPath(self.drop_path)
    y = layer_norm("norm1")(x)
    if self.shift:
      y = jnp.roll(y, (-self.shift, -self.shift), axis=(1, 2))
      # Only the small [nW, w²] label table is a constant; the [nW, w², w²] mask is built in the
      # graph, where XLA fuses it into the attention logits instead of embedding it per block.
      mask = region_mask(shifted_window_regions(h, w, self.window, self.shift))
    else:
      mask = None
    y = window_partition(y, self.window)
    y = WindowAttention(self.dim, self.num_heads, self.window, name="attn")(y, mask)
    y = window_reverse(y, self.window, h, w)
    if self.shift:
      y = jnp.roll(y, (self.shift, self.shift), axis=(1, 2))
    x = x + drop(y, deterministic)
    y = Mlp(self.dim, int(self.dim * self.mlp_ratio), name="mlp")(layer_norm("norm2")(x))
    return x + drop(y, deterministic)


class RSTB(nn.Module):
  """Residual Swin Transformer block: Swin blocks, a 3×3 conv, and a skip over both."""
  dim: int
  depth: int
  num_heads: int
  window: int
  mlp_ratio: float
  drop_path: Sequence[float]

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    h = x
    for j in range(self.depth):
      h = SwinBlock(self.dim, self.num_heads, self.window,
                    shift=0 if j % 2 == 0 else self.window // 2, mlp_ratio=self.mlp_ratio,
                    drop_path=self.drop_path[j], name=f"blocks_{j}")(h, deterministic)
    return conv(self.dim, name="conv")(h) + x


class SwinIR(nn.Module):
  """SwinIR for SR; input/output float32 NHWC in 0..255."""
  scale: int = 2
  embed_dim: int = 60
  depths: Sequence[int] = (6, 6, 6, 6)
  num_heads: Sequence[int] = (6, 6, 6, 6)
  window_size: int = 8
  mlp_ratio: float = 2.0
  upsampler: str = "pixelshuffledirect"  # "pixelshuffle" (classical) | "pixelshuffledirect"
  img_range: float = 1.0
  rgb_mean: Sequence[float] = SWINIR_RGB_MEAN
  drop_path_rate: float = 0.1
  num_feat: int = 64  # width of the classical upsampler
  n_colors: int = 3

  def _check(self):
    if self.upsampler not in ("pixelshuffle", "pixelshuffledirect"):
      raise ValueError(f"SwinIR upsampler must be 'pixelshuffle' or 'pixelshuffledirect', "
                       f"got {self.upsampler!r}")
    if len(self.depths) != len(self.num_heads):
      raise ValueError(f"SwinIR depths {tuple(self.depths)} and num_heads "
                       f"{tuple(self.num_heads)} must have the same length")
    for heads in self.num_heads:
      if self.embed_dim % heads:
        raise ValueError(f"SwinIR embed_dim {self.embed_dim} is not divisible by {heads} heads")

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    self._check()
    b, h, w, _ = x.shape
    ws = self.window_size
    pad_h, pad_w = (-h) % ws, (-w) % ws
    mean = jnp.asarray(self.rgb_mean, x.dtype)
    x = (x / 255.0 - mean) * self.img_range
    if pad_h or pad_w:
      x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect")

    feat = conv(self.embed_dim, name="conv_first")(x)
    t = layer_norm("patch_embed_norm")(feat)
    n_blocks = sum(self.depths)
    rates = np.linspace(0.0, self.drop_path_rate, n_blocks).tolist() if n_blocks else []
    start = 0
    for i, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
      t = RSTB(self.embed_dim, depth, heads, ws, self.mlp_ratio,
               tuple(rates[start:start + depth]), name=f"layers_{i}")(t, deterministic)
      start += depth
    t = layer_norm("norm")(t)
    feat = conv(self.embed_dim, name="conv_after_body")(t) + feat

    if self.upsampler == "pixelshuffle":
      y = nn.leaky_relu(conv(self.num_feat, name="conv_before_upsample")(feat), 0.01)
      for k, s in enumerate(upsample_stages(self.scale)):
        y = pixel_shuffle(conv(self.num_feat * s * s, name=f"upsample_{k}")(y), s)
      y = conv(self.n_colors, name="conv_last")(y)
    else:
      y = conv(self.n_colors * self.scale ** 2, name="upsample")(feat)
      y = pixel_shuffle(y, self.scale)
    y = y[:, :h * self.scale, :w * self.scale]
    return (y / self.img_range + mean) * 255.0

