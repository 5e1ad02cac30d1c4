"""SwinIR's PyTorch reference (Liang et al. 2021) with the official state-dict names; see
`memsr_jax.interop.torch_models` (torch is optional: import this module only where it is needed).
"""
import torch
from torch import nn
import torch.nn.functional as F

from memsr_jax.interop.torch_models import mean_like
from memsr_jax.interop.torch_models import same_conv
from memsr_jax.interop.torch_models import upsampler_convs


def _windows(x, w):
  """[B, H, W, C] → [B·nW, w·w, C]."""
  b, h, wd, c = x.shape
  x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
  return x.reshape(-1, w * w, c)


def _unwindows(x, w, h, wd):
  c = x.shape[-1]
  x = x.view(-1, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
  return x.reshape(-1, h, wd, c)


def _rel_index(w):
  ys, xs = torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")
  pos = torch.stack([ys.flatten(), xs.flatten()], -1)  # w², 2
  d = pos[:, None, :] - pos[None, :, :] + (w - 1)
  return d[..., 0] * (2 * w - 1) + d[..., 1]


def _shift_mask(h, wd, w, s):
  label = torch.zeros(1, h, wd, 1)
  bounds = [(0, h - w), (h - w, h - s), (h - s, h)]
  bounds_w = [(0, wd - w), (wd - w, wd - s), (wd - s, wd)]
  n = 0
  for y0, y1 in bounds:
    for x0, x1 in bounds_w:
      label[:, y0:y1, x0:x1] = n
      n += 1
  lw = _windows(label, w)[..., 0]  # nW, w²
  same = lw[:, None, :] == lw[:, :, None]
  return torch.where(same, torch.tensor(0.0), torch.tensor(-100.0))


class _Attention(nn.Module):

  def __init__(self, dim, heads, w):
    super().__init__()
    self.heads, self.w = heads, w
    self.qkv = nn.Linear(dim, 3 * dim)
    self.proj = nn.Linear(dim, dim)
    self.relative_position_bias_table = nn.Parameter(0.02 * torch.randn((2 * w - 1) ** 2, heads))
    self.register_buffer("relative_position_index", _rel_index(w))

  def forward(self, x, mask):
    bn, n, c = x.shape
    q, k, v = self.qkv(x).view(bn, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
    att = (q * (c // self.heads) ** -0.5) @ k.transpose(-1, -2)
    bias = self.relative_position_bias_table[self.relative_position_index.flatten()]
    att = att + bias.view(n, n, self.heads).permute(2, 0, 1)[None]
    if mask is not None:
      nw = mask.shape[0]
      att = (att.view(bn // nw, nw, self.heads, n, n) + mask[None, :, None]).view(bn, -1, n, n)
    out = att.softmax(-1) @ v
    return self.proj(out.transpose(1, 2).reshape(bn, n, c))


class _Mlp(nn.Module):

  def __init__(self, dim, hidden):
    super().__init__()
    self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

  def forward(self, x):
    return self.fc2(F.gelu(self.fc1(x)))


class _SwinBlock(nn.Module):

  def __init__(self, dim, heads, w, shift, mlp_ratio, train_size):
    super().__init__()
    self.w, self.shift = w, shift
    self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
    self.attn = _Attention(dim, heads, w)
    self.mlp = _Mlp(dim, int(dim * mlp_ratio))
    if shift:  # the release keeps the training-size mask as a buffer
      self.register_buffer("attn_mask", _shift_mask(train_size, train_size, w, shift))

  def forward(self, x):  # B, H, W, C
    b, h, wd, c = x.shape
    y = self.norm1(x)
    mask = None
    if self.shift:
      y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
      mask = _shift_mask(h, wd, self.w, self.shift)
    y = _unwindows(self.attn(_windows(y, self.w), mask), self.w, h, wd)
    if self.shift:
      y = torch.roll(y, (self.shift, self.shift), (1, 2))
    x = x + y
    return x + self.mlp(self.norm2(x))


class _ResidualGroup(nn.Module):

  def __init__(self, blocks):
    super().__init__()
    self.blocks = nn.ModuleList(blocks)


class _RSTB(nn.Module):

  def __init__(self, dim, depth, heads, w, mlp_ratio, train_size):
    super().__init__()
    self.residual_group = _ResidualGroup(
        [_SwinBlock(dim, heads, w, 0 if j % 2 == 0 else w // 2, mlp_ratio, train_size)
         for j in range(depth)])
    self.conv = same_conv(dim, dim)

  def forward(self, x):  # B, H, W, C
    h = x
    for blk in self.residual_group.blocks:
      h = blk(h)
    return self.conv(h.permute(0, 3, 1, 2)).permute(0, 2, 3, 1) + x


class _PatchEmbed(nn.Module):

  def __init__(self, dim):
    super().__init__()
    self.norm = nn.LayerNorm(dim)


class SwinIRRef(nn.Module):
  """SwinIR with the official names; 0..1 in/out, img_range 1, reflect padding to the window."""

  def __init__(self, scale, embed_dim, depths, heads, window, mlp_ratio, upsampler,
               train_size=16, num_feat=64):
    super().__init__()
    self.scale, self.window, self.upsampler_kind = scale, window, upsampler
    self.conv_first = same_conv(3, embed_dim)
    self.patch_embed = _PatchEmbed(embed_dim)
    self.layers = nn.ModuleList([_RSTB(embed_dim, d, h, window, mlp_ratio, train_size)
                                 for d, h in zip(depths, heads)])
    self.norm = nn.LayerNorm(embed_dim)
    self.conv_after_body = same_conv(embed_dim, embed_dim)
    if upsampler == "pixelshuffle":
      self.conv_before_upsample = nn.Sequential(same_conv(embed_dim, num_feat), nn.LeakyReLU())
      self.upsample = upsampler_convs(scale, num_feat)
      self.conv_last = same_conv(num_feat, 3)
    else:
      self.upsample = nn.Sequential(same_conv(embed_dim, 3 * scale * scale), nn.PixelShuffle(scale))

  def forward(self, x):
    h, w = x.shape[2:]
    ph, pw = (-h) % self.window, (-w) % self.window
    mean = mean_like(x)
    x = F.pad(x - mean, (0, pw, 0, ph), mode="reflect")
    feat = self.conv_first(x)
    t = self.patch_embed.norm(feat.permute(0, 2, 3, 1))
    for layer in self.layers:
      t = layer(t)
    t = self.norm(t).permute(0, 3, 1, 2)
    feat = self.conv_after_body(t) + feat
    if self.upsampler_kind == "pixelshuffle":
      y = self.conv_last(self.upsample(self.conv_before_upsample(feat)))
    else:
      y = self.upsample(feat)
    return y[:, :, :h * self.scale, :w * self.scale] + mean
