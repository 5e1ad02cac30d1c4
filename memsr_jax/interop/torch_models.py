"""PyTorch reference networks (torch is optional: import this module only where torch is needed).

One reference per architecture, written from the papers' definitions with the state-dict key
layout of each public release (EDSR-PyTorch, BasicSR, Zheng222/IMDN, the MemSR teachers of
wukailu/MemSR; SwinIR is `torch_swinir`), so `memsr_jax.interop.torch_import` is tested on the
names it meets in practice, plus the plain net. `from_jax(model, params)` builds the EDSR or plain
reference of a JAX model with its weights copied: the twin the PyTorch side-by-side benchmarks
(`memsr_jax.measure.torch_bench`, benchmarks/) run. Inputs and outputs follow each release's
convention: EDSR, the plain net and the MemSR teacher 0..255, the BasicSR EDSR / IMDN / SwinIR
0..1. NCHW tensors.
"""
import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


def mean_like(x):
  """The DIV2K mean in x's dtype (exact in float64 runs, unlike a float32 buffer cast up)."""
  return torch.tensor(DIV2K_MEAN, dtype=x.dtype).view(1, 3, 1, 1)


def same_conv(cin, cout, k=3):
  return nn.Conv2d(cin, cout, k, padding=k // 2)


def upsampler_convs(scale, feats):
  """EDSR/SwinIR upsampler: [conv to s²·F, PixelShuffle(s)] per stage (×2 stages or one ×3)."""
  stages = [3] if scale == 3 else [2] * int(math.log2(scale))
  mods = []
  for s in stages:
    mods += [same_conv(feats, feats * s * s), nn.PixelShuffle(s)]
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
    self.body = nn.Sequential(same_conv(feats, feats), nn.ReLU(True), same_conv(feats, feats))
    self.res_scale = res_scale

  def forward(self, x):
    return x + self.body(x) * self.res_scale


class EDSROfficial(nn.Module):
  """EDSR with EDSR-PyTorch names: sub_mean, head.0, body.i.body.{0,2}, body.N, tail.{0,1}.

  tail="conv1x1" (the MemSR teachers' tail with vector biases, no release layout): tail.0 is a
  1×1 conv to 3·s², then the pixel shuffle. `mean`: the RGB mean in 0..1.
  """

  def __init__(self, scale, feats, n_blocks, res_scale=1.0, tail="upsampler", mean=DIV2K_MEAN):
    super().__init__()
    self.sub_mean = MeanShift(-1, mean)
    self.add_mean = MeanShift(+1, mean)
    self.head = nn.Sequential(same_conv(3, feats))
    self.body = nn.Sequential(*[_EDSRBlockOfficial(feats, res_scale) for _ in range(n_blocks)],
                              same_conv(feats, feats))
    if tail == "conv1x1":
      self.tail = nn.Sequential(same_conv(feats, 3 * scale * scale, 1), nn.PixelShuffle(scale))
    else:
      self.tail = nn.Sequential(upsampler_convs(scale, feats), same_conv(feats, 3))

  def forward(self, x):  # 0..255
    x = self.head(self.sub_mean(x))
    return self.add_mean(self.tail(self.body(x) + x))


class _EDSRBlockBasicSR(nn.Module):

  def __init__(self, feats, res_scale):
    super().__init__()
    self.conv1, self.conv2 = same_conv(feats, feats), same_conv(feats, feats)
    self.res_scale = res_scale

  def forward(self, x):
    return x + self.conv2(F.relu(self.conv1(x))) * self.res_scale


class EDSRBasicSR(nn.Module):
  """EDSR with BasicSR names; works on 0..1 with img_range 255 and the mean as a plain tensor."""

  def __init__(self, scale, feats, n_blocks, res_scale=1.0):
    super().__init__()
    self.conv_first = same_conv(3, feats)
    self.body = nn.Sequential(*[_EDSRBlockBasicSR(feats, res_scale) for _ in range(n_blocks)])
    self.conv_after_body = same_conv(feats, feats)
    self.upsample = upsampler_convs(scale, feats)
    self.conv_last = same_conv(feats, 3)

  def forward(self, x):  # 0..1
    mean = mean_like(x)  # a plain tensor in BasicSR, not in the state dict
    x = (x - mean) * 255.0
    h = self.conv_first(x)
    h = self.conv_after_body(self.body(h)) + h
    return self.conv_last(self.upsample(h)) / 255.0 + mean


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
    self.conv = same_conv(3, feats)

  def forward(self, x):
    return self.conv(self.sub_mean(x))


class _MemSRTail(nn.Module):
  """simple_tail: 1×1 conv to 3·s² + pixel shuffle; otherwise EDSR's upsampler and last conv."""

  def __init__(self, scale, feats, simple):
    super().__init__()
    self.simple = simple
    if simple:
      self.conv = same_conv(feats, 3 * scale * scale, 1)
      self.shuffle = nn.PixelShuffle(scale)
    else:
      self.tail = nn.Sequential(upsampler_convs(scale, feats), same_conv(feats, 3))
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


# ---------------------------------------------------------------------------------------------
# IMDN (Hui et al. 2019).
# ---------------------------------------------------------------------------------------------

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
    self.c1, self.c2 = same_conv(ch, ch), same_conv(ch - self.d, ch)
    self.c3 = same_conv(ch - self.d, ch)
    self.c4 = same_conv(ch - self.d, self.d)
    self.c5 = same_conv(ch, ch, 1)
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
    self.fea_conv = same_conv(3, feats)
    for i in range(n_blocks):
      setattr(self, f"IMDB{i + 1}", IMDB(feats))
    self.n_blocks = n_blocks
    self.c = nn.Sequential(nn.Conv2d(feats * n_blocks, feats, 1), nn.LeakyReLU(0.05))
    self.LR_conv = same_conv(feats, feats)  # the reference implementation's name
    self.upsampler = nn.Sequential(same_conv(feats, 3 * scale * scale), nn.PixelShuffle(scale))

  def forward(self, x):
    fea = self.fea_conv(x)
    outs, h = [], fea
    for i in range(self.n_blocks):
      h = getattr(self, f"IMDB{i + 1}")(h)
      outs.append(h)
    h = self.LR_conv(self.c(torch.cat(outs, 1))) + fea
    return self.upsampler(h)


# ---------------------------------------------------------------------------------------------
# The plain net (MemSR's students and converted teachers; memsr_jax.models.plain.PlainNet).
# ---------------------------------------------------------------------------------------------

class PlainRef(nn.Module):
  """convs.i (3×3; bias_mode "map": no bias, a 3×3 kernel over a zero-padded ones image in
  bias_maps.i), ReLU where `relu[i]`, tail (tail_kernel² conv to 3·s²) + pixel shuffle. 0..255;
  `mean` (0..255) subtracted and added back when `sub_mean`."""

  def __init__(self, scale, widths, relu, bias_mode="vector", tail_kernel=1, sub_mean=True,
               mean=tuple(255.0 * m for m in DIV2K_MEAN)):
    super().__init__()
    self.scale, self.relu, self.sub_mean = scale, tuple(relu), sub_mean
    self.convs = nn.ModuleList(nn.Conv2d(cin, cout, 3, padding=1, bias=bias_mode == "vector")
                               for cin, cout in zip(widths[:-1], widths[1:]))
    self.bias_maps = nn.ParameterList(
        nn.Parameter(torch.zeros(cout, 1, 3, 3)) for cout in widths[1:]
    ) if bias_mode == "map" else None
    self.tail = same_conv(widths[-1], 3 * scale * scale, tail_kernel)
    self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))

  def forward(self, x):
    h = x - self.mean if self.sub_mean else x
    for i, (conv, relu) in enumerate(zip(self.convs, self.relu)):
      h = conv(h)
      if self.bias_maps is not None:
        h = h + F.conv2d(torch.ones_like(h[:, :1]), self.bias_maps[i], padding=1)
      if relu:
        h = torch.relu(h)
    y = F.pixel_shuffle(self.tail(h), self.scale)
    return y + self.mean if self.sub_mean else y


def from_jax(model, params) -> nn.Module:
  """The torch reference of a JAX `PlainNet` or vector-bias `EDSR` with `params` copied in, in
  eval mode: it computes `model.apply({"params": params}, x)` on NCHW 0..255."""
  from memsr_jax.models.edsr import EDSR
  from memsr_jax.models.layers import upsample_stages
  from memsr_jax.models.plain import PlainNet

  def weight(p, key="kernel"):  # [kh, kw, cin, cout] → [cout, cin, kh, kw]
    return torch.from_numpy(np.ascontiguousarray(np.asarray(p[key]).transpose(3, 2, 0, 1)))

  state = {}

  def put(name, p):
    state[f"{name}.weight"] = weight(p)
    if "bias" in p:
      state[f"{name}.bias"] = torch.from_numpy(np.array(p["bias"]))

  if isinstance(model, PlainNet):
    net = PlainRef(model.scale, model.widths, model.relu_flags(), model.bias_mode,
                   model.tail_kernel, model.sub_mean, model.rgb_mean)
    for i in range(model.n_layers):
      put(f"convs.{i}", params[f"conv_{i}"])
      if model.bias_mode == "map":
        state[f"bias_maps.{i}"] = weight(params[f"conv_{i}"], "bias_map")
    put("tail", params["tail"])
  elif isinstance(model, EDSR) and model.body_bias == "vector":
    net = EDSROfficial(model.scale, model.n_feats, model.n_resblocks, model.res_scale, model.tail,
                       tuple(m / 255.0 for m in model.rgb_mean))
    put("head.0", params["head"])
    for i in range(model.n_resblocks):
      put(f"body.{i}.body.0", params[f"body_{i}"]["conv1"])
      put(f"body.{i}.body.2", params[f"body_{i}"]["conv2"])
    put(f"body.{model.n_resblocks}", params["body_conv"])
    if model.tail == "conv1x1":
      put("tail.0", params["tail"])
    else:
      for k in range(len(upsample_stages(model.scale))):
        put(f"tail.0.{2 * k}", params[f"upsampler_{k}"])
      put("tail.1", params["tail_conv"])
  else:
    raise ValueError(f"no torch reference for {type(model).__name__}")
  state.update({k: v for k, v in net.state_dict().items() if "mean" in k})  # fixed, not params
  net.load_state_dict(state, strict=True)
  return net.eval()


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
