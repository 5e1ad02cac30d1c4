"""Layer tables of the PyTorch releases: every parameterised torch layer of an architecture, its
Flax module path, and how its tensor becomes a Flax leaf (conv OIHW → HWIO, Linear transposed,
LayerNorm weight → scale, MemSR's ones-channel convs → kernel + bias map)."""
from typing import Callable, Iterator

import numpy as np

from memsr_jax.models.layers import upsample_stages
from memsr_jax.models.swinir import relative_position_index

# How a torch tensor becomes a Flax leaf.
_CONV, _DENSE, _VECTOR, _TABLE = "conv", "dense", "vector", "table"
# A conv whose input channel 0 is a constant ones channel (MemSR's ConvLayer, no bias): one torch
# weight [O, 1 + I, k, k] gives the kernel (channels 1:) and the 3×3 bias map (channel 0).
_ONES_KERNEL, _ONES_MAP = "ones_kernel", "ones_map"

# A layer: (torch prefix, flax path (tuple of module names), kind: "conv" | "dense" | "norm").
Layer = tuple[str, tuple[str, ...], str]
# A buffer to accept and check: torch key → check(array) returning an error string or None.
BufferChecks = dict[str, Callable[[np.ndarray], str | None]]


def edsr_layers(model, fmt: str) -> tuple[list[Layer], BufferChecks]:
  if fmt == "memsr":
    return memsr_teacher_layers(model)
  if model.body_bias != "vector":
    raise ValueError(f"EDSR with body_bias={model.body_bias!r}: the {fmt} EDSR layout has vector "
                     "biases; leave body_bias at 'vector'")
  if model.tail != "upsampler":
    raise ValueError(f"EDSR with tail={model.tail!r} has no PyTorch EDSR counterpart; only "
                     "tail='upsampler' models (edsr, edsr_baseline, edsr_mini) can be imported "
                     "from the EDSR-PyTorch / BasicSR layouts")
  n = model.n_resblocks
  n_up = len(upsample_stages(model.scale))
  if fmt == "official":
    layers = [("head.0", ("head",), "conv")]
    layers += [(f"body.{i}.body.{k}", (f"body_{i}", c), "conv")
               for i in range(n) for k, c in ((0, "conv1"), (2, "conv2"))]
    layers += [(f"body.{n}", ("body_conv",), "conv")]
    layers += [(f"tail.0.{2 * k}", (f"upsampler_{k}",), "conv") for k in range(n_up)]
    layers += [("tail.1", ("tail_conv",), "conv")]
    mean = np.asarray(model.rgb_mean, np.float64)
    buffers = {f"{name}.{p}": mean_shift_check(name, p, sign, mean)
               for name, sign in (("sub_mean", -1.0), ("add_mean", 1.0))
               for p in ("weight", "bias")}
    return layers, buffers
  layers = [("conv_first", ("head",), "conv")]
  layers += [(f"body.{i}.{c}", (f"body_{i}", c), "conv")
             for i in range(n) for c in ("conv1", "conv2")]
  layers += [("conv_after_body", ("body_conv",), "conv")]
  layers += [(f"upsample.{2 * k}", (f"upsampler_{k}",), "conv") for k in range(n_up)]
  layers += [("conv_last", ("tail_conv",), "conv")]
  return layers, {}


def memsr_teacher_layers(model) -> tuple[list[Layer], BufferChecks]:
  """wukailu/MemSR EDSR_layerwise: head, body (blocks + body conv), tail, as sequential_models.*"""
  if model.body_bias != "map":
    raise ValueError("the official MemSR teacher's body convs carry 3×3 bias maps (a constant "
                     "ones input channel); build the model with body_bias='map' "
                     "(--set body_bias=map)")
  if model.res_scale != 1.0:
    raise ValueError(f"the official MemSR teacher has no residual scaling, but the model has "
                     f"res_scale={model.res_scale}; pass --set res_scale=1.0")
  seq, n = "sequential_models", model.n_resblocks
  body = f"{seq}.1.{seq}"
  layers = [(f"{seq}.0.conv", ("head",), "conv")]
  layers += [(f"{body}.{i}.{seq}.{k}.conv", (f"body_{i}", c), "ones_conv")
             for i in range(n) for k, c in ((0, "conv1"), (1, "conv2"))]
  layers += [(f"{body}.{n}.conv", ("body_conv",), "ones_conv")]
  if model.tail == "conv1x1":  # EDSREasyTail (simple_tail=True): 1×1 conv to 3·s², shuffle
    layers += [(f"{seq}.2.conv", ("tail",), "conv")]
  else:  # EDSRTail: EDSR's upsampler and last conv
    n_up = len(upsample_stages(model.scale))
    layers += [(f"{seq}.2.tail.0.{2 * k}", (f"upsampler_{k}",), "conv") for k in range(n_up)]
    layers += [(f"{seq}.2.tail.1", ("tail_conv",), "conv")]
  mean = np.asarray(model.rgb_mean, np.float64)
  buffers = {f"{seq}.{i}.{name}.{p}": mean_shift_check(name, p, sign, mean)
             for i, name, sign in ((0, "sub_mean", -1.0), (2, "add_mean", 1.0))
             for p in ("weight", "bias")}
  return layers, buffers


def mean_shift_check(name: str, part: str, sign: float, mean: np.ndarray):
  """EDSR-PyTorch MeanShift (rgb_std = 1): weight = I (1×1 conv), bias = sign·mean (0..255)."""
  def check(value: np.ndarray) -> str | None:
    if part == "weight":
      expected = np.eye(3).reshape(3, 3, 1, 1)
    else:
      expected = sign * mean
    if value.shape != expected.shape:
      return f"{name}.{part}: shape {tuple(value.shape)}, expected {expected.shape}"
    if not np.allclose(value, expected, atol=1e-3):
      return (f"{name}.{part} = {np.round(value.reshape(-1)[:9], 4).tolist()} does not match this "
              f"model's rgb_mean {tuple(mean.round(4))} (std 1); pass rgb_mean=… to match it")
    return None
  return check


def imdn_layers(model) -> tuple[list[Layer], BufferChecks]:
  layers = [("fea_conv", ("fea_conv",), "conv")]
  for i in range(model.n_blocks):
    blk = f"IMDB{i + 1}"
    layers += [(f"{blk}.c{k}", (f"imdb_{i}", f"c{k}"), "conv") for k in range(1, 6)]
    layers += [(f"{blk}.cca.conv_du.0", (f"imdb_{i}", "cca", "down"), "conv"),
               (f"{blk}.cca.conv_du.2", (f"imdb_{i}", "cca", "up"), "conv")]
  layers += [("c.0", ("fuse",), "conv"), ("LR_conv", ("lr_conv",), "conv"),
             ("upsampler.0", ("upsampler",), "conv")]
  return layers, {}


def swinir_layers(model) -> tuple[list[Layer], BufferChecks]:
  ws = model.window_size
  n_tok = ws * ws
  index = relative_position_index(ws)

  def check_index(key):
    def check(value):
      if value.shape != index.shape or not np.array_equal(value, index):
        return (f"{key}: relative position index {tuple(value.shape)} does not match window "
                f"size {ws} (expected {index.shape}); pass window_size=…")
      return None
    return check

  def check_mask(key):
    def check(value):
      # Recomputed for the actual input size at run time; only its window size is checked.
      if value.ndim != 3 or value.shape[1:] != (n_tok, n_tok):
        return f"{key}: attention mask {tuple(value.shape)} is not [nW, {n_tok}, {n_tok}]"
      return None
    return check

  layers = [("conv_first", ("conv_first",), "conv"),
            ("patch_embed.norm", ("patch_embed_norm",), "norm")]
  buffers: BufferChecks = {}
  for i, depth in enumerate(model.depths):
    for j in range(depth):
      t = f"layers.{i}.residual_group.blocks.{j}"
      f = (f"layers_{i}", f"blocks_{j}")
      layers += [(f"{t}.norm1", f + ("norm1",), "norm"),
                 (f"{t}.attn.qkv", f + ("attn", "qkv"), "dense"),
                 (f"{t}.attn.proj", f + ("attn", "proj"), "dense"),
                 (f"{t}.attn.relative_position_bias_table",
                  f + ("attn", "relative_position_bias_table"), "table"),
                 (f"{t}.norm2", f + ("norm2",), "norm"),
                 (f"{t}.mlp.fc1", f + ("mlp", "fc1"), "dense"),
                 (f"{t}.mlp.fc2", f + ("mlp", "fc2"), "dense")]
      buffers[f"{t}.attn.relative_position_index"] = check_index(
          f"{t}.attn.relative_position_index")
      if j % 2 == 1:
        buffers[f"{t}.attn_mask"] = check_mask(f"{t}.attn_mask")
    layers.append((f"layers.{i}.conv", (f"layers_{i}", "conv"), "conv"))
  layers += [("norm", ("norm",), "norm"), ("conv_after_body", ("conv_after_body",), "conv")]
  if model.upsampler == "pixelshuffle":
    layers.append(("conv_before_upsample.0", ("conv_before_upsample",), "conv"))
    layers += [(f"upsample.{2 * k}", (f"upsample_{k}",), "conv")
               for k in range(len(upsample_stages(model.scale)))]
    layers.append(("conv_last", ("conv_last",), "conv"))
  else:
    layers.append(("upsample.0", ("upsample",), "conv"))
  return layers, buffers


def expand(layers: list[Layer]) -> Iterator[tuple[str, tuple[str, ...], str]]:
  """Layer table → (torch key, flax leaf path, leaf kind)."""
  for prefix, path, kind in layers:
    if kind == "table":
      yield prefix, path, _TABLE
    elif kind == "norm":
      yield f"{prefix}.weight", path + ("scale",), _VECTOR
      yield f"{prefix}.bias", path + ("bias",), _VECTOR
    elif kind == "ones_conv":
      yield f"{prefix}.weight", path + ("kernel",), _ONES_KERNEL
      yield f"{prefix}.weight", path + ("bias_map",), _ONES_MAP
    else:
      yield f"{prefix}.weight", path + ("kernel",), _CONV if kind == "conv" else _DENSE
      yield f"{prefix}.bias", path + ("bias",), _VECTOR


def torch_shape(template, path: tuple[str, ...], kind: str) -> tuple[int, ...]:
  flax_shape = template[path]
  if kind in (_ONES_KERNEL, _ONES_MAP):  # both read the [O, 1 + I, k, k] weight
    kh, kw, cin, cout = template[path[:-1] + ("kernel",)]
    return (cout, 1 + cin, kh, kw)
  if kind == _CONV:
    kh, kw, cin, cout = flax_shape
    return (cout, cin, kh, kw)
  if kind == _DENSE:
    return tuple(reversed(flax_shape))
  return tuple(flax_shape)


def to_flax(value: np.ndarray, kind: str) -> np.ndarray:
  if kind == _ONES_KERNEL:
    return value[:, 1:].transpose(2, 3, 1, 0)
  if kind == _ONES_MAP:
    return value[:, :1].transpose(2, 3, 1, 0)
  if kind == _CONV:
    return value.transpose(2, 3, 1, 0)
  if kind == _DENSE:
    return value.T
  return value
