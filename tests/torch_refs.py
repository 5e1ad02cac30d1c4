"""Small PyTorch reference networks, written for the import tests from the papers' definitions.

Each produces the state-dict key layout of the corresponding public release (EDSR-PyTorch,
BasicSR, Zheng222/IMDN, JingyunLiang/SwinIR, the MemSR teachers of wukailu/MemSR), so
`memsr_jax.interop.torch_import` is tested on the names it meets in practice. Inputs and outputs
follow each release's convention: EDSR and the MemSR teacher 0..255, the BasicSR EDSR / IMDN /
SwinIR 0..1. NCHW tensors. Used only in tests.
"""
import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


def _mean_like(x):
  """The DIV2K mean in x's dtype (exact in float64 runs, unlike a float32 buffer cast up)."""
  return torch.tensor(DIV2K_MEAN, dtype=x.dtype).view(1, 3, 1, 1)


def _conv(cin, cout, k=3):
  return nn.Conv2d(cin, cout, k, padding=k // 2)


def _upsampler_convs(scale, feats):
  """EDSR/SwinIR upsampler: [conv to s²·F, PixelShuffle(s)] per stage (×2 stages or one ×3)."""
  stages = [3] if scale == 3 else [2] * int(math.log2(scale))
  mods = []
  for s in stages:
    mods += [_conv(feats, feats * s * s), nn.PixelShuffle(s)]
  return nn.Sequential(*mods)


# ---------------------------------------------------------------------------------------------
# EDSR (Lim et al. 2017), two key layouts.
# ---------------------------------------------------------------------------------------------

class MeanShift(nn.Conv2d):
  """A fixed 1×1 conv adding sign·mean (0..255), as EDSR-PyTorch stores it (rgb_std = 1)."""

  def __init__(self, sign, mean=DIV2K_MEAN, rgb_range=255.0):
    super().__init__(3, 3, 1)
    self.weight.data = torch.eye(3).view(3, 3, 1, 1)
    self.bias.data = sign * rgb_range * torch.tensor(mean)
    self.requires_grad_(False)


class _EDSRBlockOfficial(nn.Module):

  def __init__(self, feats, res_scale):
    super().__init__()
    self.body = nn.Sequential(_conv(feats, feats), nn.ReLU(True), _conv(feats, feats))
    self.res_scale = res_scale

  def forward(self, x):
    return x + self.body(x) * self.res_scale


class EDSROfficial(nn.Module):
  """EDSR with EDSR-PyTorch names: sub_mean, head.0, body.i.body.{0,2}, body.N, tail.{0,1}."""

  def __init__(self, scale, feats, n_blocks, res_scale=1.0):
    super().__init__()
    self.sub_mean = MeanShift(-1)
    self.add_mean = MeanShift(+1)
    self.head = nn.Sequential(_conv(3, feats))
    self.body = nn.Sequential(*[_EDSRBlockOfficial(feats, res_scale) for _ in range(n_blocks)],
                              _conv(feats, feats))
    self.tail = nn.Sequential(_upsampler_convs(scale, feats), _conv(feats, 3))

  def forward(self, x):  # 0..255
    x = self.head(self.sub_mean(x))
    return self.add_mean(self.tail(self.body(x) + x))


class _EDSRBlockBasicSR(nn.Module):

  def __init__(self, feats, res_scale):
    super().__init__()
    self.conv1, self.conv2 = _conv(feats, feats), _conv(feats, feats)
    self.res_scale = res_scale

  def forward(self, x):
    return x + self.conv2(F.relu(self.conv1(x))) * self.res_scale


class EDSRBasicSR(nn.Module):
  """EDSR with BasicSR names; works on 0..1 with img_range 255 and the mean as a plain tensor."""

  def __init__(self, scale, feats, n_blocks, res_scale=1.0):
    super().__init__()
    self.conv_first = _conv(3, feats)
    self.body = nn.Sequential(*[_EDSRBlockBasicSR(feats, res_scale) for _ in range(n_blocks)])
    self.conv_after_body = _conv(feats, feats)
    self.upsample = _upsampler_convs(scale, feats)
    self.conv_last = _conv(feats, 3)

  def forward(self, x):  # 0..1
    mean = _mean_like(x)  # a plain tensor in BasicSR, not in the state dict
    x = (x - mean) * 255.0
    h = self.conv_first(x)
    h = self.conv_after_body(self.body(h)) + h
    return self.conv_last(self.upsample(h)) / 255.0 + mean


# ---------------------------------------------------------------------------------------------
# IMDN (Hui et al. 2019).
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# The official MemSR teacher (wukailu/MemSR EDSR_layerwise), written from its description: a
# layer list whose body convs read a constant ones channel at input channel 0 instead of having a
# bias, so the "bias" is a 3×3 kernel over a zero-padded ones image.
# ---------------------------------------------------------------------------------------------

class _OnesConv(nn.Module):
  """conv([1, x]) with a bias-free 3×3 conv over 1 + F channels, then act."""

  def __init__(self, feats, relu=False):
    super().__init__()
    self.conv = nn.Conv2d(feats + 1, feats, 3, padding=1, bias=False)
    self.relu = relu

  def forward(self, x):
    y = self.conv(torch.cat([torch.ones_like(x[:, :1]), x], dim=1))
    return F.relu(y) if self.relu else y


class _Layers(nn.Module):
  def __init__(self, layers):
    super().__init__()
    self.sequential_models = nn.ModuleList(layers)


class _MemSRHead(nn.Module):
  def __init__(self, feats):
    super().__init__()
    self.sub_mean = MeanShift(-1)
    self.conv = _conv(3, feats)

  def forward(self, x):
    return self.conv(self.sub_mean(x))


class _MemSRTail(nn.Module):
  """simple_tail: 1×1 conv to 3·s² + pixel shuffle; otherwise EDSR's upsampler and last conv."""

  def __init__(self, scale, feats, simple):
    super().__init__()
    self.simple = simple
    if simple:
      self.conv = _conv(feats, 3 * scale * scale, 1)
      self.shuffle = nn.PixelShuffle(scale)
    else:
      self.tail = nn.Sequential(_upsampler_convs(scale, feats), _conv(feats, 3))
    self.add_mean = MeanShift(+1)

  def forward(self, x):
    y = self.shuffle(self.conv(x)) if self.simple else self.tail(x)
    return self.add_mean(y)


class MemSRTeacher(nn.Module):
  """EDSR_layerwise: sequential_models = [head, body, tail]; body.sequential_models = N blocks
  (each .sequential_models = [ones-conv + ReLU, ones-conv], skip added) + the body ones-conv,
  with the global skip around the body. 0..255 in and out."""

  def __init__(self, scale, feats, n_blocks, simple_tail=True):
    super().__init__()
    blocks = [_Layers([_OnesConv(feats, relu=True), _OnesConv(feats)]) for _ in range(n_blocks)]
    self.sequential_models = nn.ModuleList([
        _MemSRHead(feats), _Layers(blocks + [_OnesConv(feats)]),
        _MemSRTail(scale, feats, simple_tail)])

  def forward(self, x):
    head, body, tail = self.sequential_models
    h0 = head(x)
    h = h0
    for block in body.sequential_models[:-1]:
      conv1, conv2 = block.sequential_models
      h = h + conv2(conv1(h))
    return tail(h0 + body.sequential_models[-1](h))


class LightningWrapper(nn.Module):
  """A LightningModule's network attribute: state-dict keys gain the `model.` prefix."""

  def __init__(self, model):
    super().__init__()
    self.model = model

  def forward(self, x):
    return self.model(x)


class CCA(nn.Module):
  """Contrast-aware channel attention: sigmoid(up(relu(down(std + mean))))."""

  def __init__(self, channels, reduction=16):
    super().__init__()
    self.conv_du = nn.Sequential(nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(),
                                 nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid())

  def forward(self, x):
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
    return x * self.conv_du(std + mean)


class IMDB(nn.Module):

  def __init__(self, ch, rate=0.25, slope=0.05):
    super().__init__()
    self.d = int(ch * rate)
    self.c1, self.c2, self.c3 = _conv(ch, ch), _conv(ch - self.d, ch), _conv(ch - self.d, ch)
    self.c4 = _conv(ch - self.d, self.d)
    self.c5 = _conv(ch, ch, 1)
    self.cca = CCA(4 * self.d)
    self.slope = slope

  def forward(self, x):
    act = lambda t: F.leaky_relu(t, self.slope)
    kept, rest = [], x
    for c in (self.c1, self.c2, self.c3):
      out = act(c(rest))
      kept.append(out[:, :self.d])
      rest = out[:, self.d:]
    kept.append(self.c4(rest))
    return self.c5(self.cca(torch.cat(kept, 1))) + x


class IMDNRef(nn.Module):
  """IMDN with the official names: fea_conv, IMDB1..n, c.0, LR_conv, upsampler.0. 0..1 in/out."""

  def __init__(self, scale, feats=64, n_blocks=6):
    super().__init__()
    self.fea_conv = _conv(3, feats)
    for i in range(n_blocks):
      setattr(self, f"IMDB{i + 1}", IMDB(feats))
    self.n_blocks = n_blocks
    self.c = nn.Sequential(nn.Conv2d(feats * n_blocks, feats, 1), nn.LeakyReLU(0.05))
    self.LR_conv = _conv(feats, feats)  # the reference implementation's name
    self.upsampler = nn.Sequential(_conv(feats, 3 * scale * scale), nn.PixelShuffle(scale))

  def forward(self, x):
    fea = self.fea_conv(x)
    outs, h = [], fea
    for i in range(self.n_blocks):
      h = getattr(self, f"IMDB{i + 1}")(h)
      outs.append(h)
    h = self.LR_conv(self.c(torch.cat(outs, 1))) + fea
    return self.upsampler(h)


# ---------------------------------------------------------------------------------------------
# SwinIR (Liang et al. 2021).
# ---------------------------------------------------------------------------------------------

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
    self.conv = _conv(dim, dim)

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
    self.conv_first = _conv(3, embed_dim)
    self.patch_embed = _PatchEmbed(embed_dim)
    self.layers = nn.ModuleList([_RSTB(embed_dim, d, h, window, mlp_ratio, train_size)
                                 for d, h in zip(depths, heads)])
    self.norm = nn.LayerNorm(embed_dim)
    self.conv_after_body = _conv(embed_dim, embed_dim)
    if upsampler == "pixelshuffle":
      self.conv_before_upsample = nn.Sequential(_conv(embed_dim, num_feat), nn.LeakyReLU())
      self.upsample = _upsampler_convs(scale, num_feat)
      self.conv_last = _conv(num_feat, 3)
    else:
      self.upsample = nn.Sequential(_conv(embed_dim, 3 * scale * scale), nn.PixelShuffle(scale))

  def forward(self, x):
    h, w = x.shape[2:]
    ph, pw = (-h) % self.window, (-w) % self.window
    mean = _mean_like(x)
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


def randomize_(module: nn.Module, seed: int = 0, std: float = 0.1) -> nn.Module:
  """Random weights for every float parameter (LayerNorm scales around 1), buffers untouched."""
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in module.named_parameters():
      if not p.requires_grad:
        continue
      noise = torch.randn(p.shape, generator=gen) * std
      if name.endswith("norm1.weight") or name.endswith("norm2.weight") or (
          "norm" in name and name.endswith(".weight")):
        p.copy_(1.0 + noise)
      else:
        p.copy_(noise)
  return module


def nchw_to_nhwc(t: torch.Tensor) -> np.ndarray:
  return t.detach().permute(0, 2, 3, 1).numpy()


def nhwc_to_nchw(x: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
