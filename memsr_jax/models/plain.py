"""Plain SR networks: a chain of 3×3 convs (no skips) and a 1×1 or 3×3 tail + pixel shuffle.

Layer i: y = conv3x3(x) + bias, then ReLU if relu[i]. With bias_mode="map" the bias is a 3×3 kernel
applied to a zero-padded image of ones (MemSR's constant channel), which equals a constant bias in
the interior and stays exact at image borders after 1×1 kernels are merged into the layer.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from memsr_jax.models.layers import DIV2K_RGB_MEAN, pixel_shuffle


def ones_conv(shape_hw, bias_map: jnp.ndarray, dtype, precision=None) -> jnp.ndarray:
  """conv3x3(ones[H, W], bias_map) with zero padding → [1, H, W, C]."""
  h, w = shape_hw
  ones = jnp.ones((1, h, w, 1), dtype)
  return jax.lax.conv_general_dilated(ones, bias_map.astype(dtype), (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      precision=precision)


class PlainConv(nn.Module):
  features: int
  bias_mode: str = "vector"
  kernel_size: int = 3
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  precision: str | None = None  # e.g. "highest": needed where ±C offset channels pass through

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
    y = jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=self.precision)
    if self.bias_mode == "vector":
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype)
    elif self.bias_mode == "map":
      bmap = self.param("bias_map", nn.initializers.zeros, (k, k, 1, self.features))
      y = y + ones_conv(x.shape[1:3], bmap, x.dtype, self.precision)
    else:
      raise ValueError(f"bias_mode must be 'vector' or 'map', got {self.bias_mode!r}")
    return y


class PlainNet(nn.Module):
  """widths = (3, c_1, …, c_L): L 3×3 convs; relu[i] says whether conv i is followed by ReLU."""
  scale: int = 2
  widths: Sequence[int] = (3, 64, 64, 64)
  relu: Sequence[bool] | None = None  # default: ReLU after every body conv but the last
  bias_mode: str = "vector"
  tail_kernel: int = 1
  sub_mean: bool = True
  rgb_mean: tuple = DIV2K_RGB_MEAN
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  # Conv precision (None = JAX default; "highest" for converted teachers, whose +C skip channels
  # lose the skip values under TF32/bf16 matmuls).
  precision: str | None = None

  @property
  def n_layers(self) -> int:
    return len(self.widths) - 1

  def relu_flags(self) -> tuple:
    if self.relu is None:
      return tuple([True] * (self.n_layers - 1) + [False])
    if len(self.relu) != self.n_layers:
      raise ValueError(f"PlainNet: {len(self.relu)} relu flags for {self.n_layers} conv layers")
    return tuple(bool(r) for r in self.relu)

  @nn.compact
  def __call__(self, x, capture: bool = False):
    if x.shape[-1] != self.widths[0]:
      raise ValueError(f"PlainNet expects {self.widths[0]} input channels, got {x.shape[-1]}")
    mean = jnp.asarray(self.rgb_mean, x.dtype)
    h = x - mean if self.sub_mean else x
    feats = []
    for i, (cout, r) in enumerate(zip(self.widths[1:], self.relu_flags())):
      h = PlainConv(cout, self.bias_mode, 3, self.kernel_init, self.precision,
                    name=f"conv_{i}")(h)
      if r:
        h = nn.relu(h)
      feats.append(h)
    y = PlainConv(3 * self.scale ** 2, "vector", self.tail_kernel, self.kernel_init,
                  self.precision, name="tail")(h)
    y = pixel_shuffle(y, self.scale)
    if self.sub_mean:
      y = y + mean
    return (y, feats) if capture else y
