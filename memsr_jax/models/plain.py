"""Plain SR networks: a chain of 3×3 convs (no skips) and a 1×1 or 3×3 tail + pixel shuffle.

Layer i: y = conv3x3(x) + bias, then ReLU if relu[i]. With bias_mode="map" the bias is a 3×3 kernel
applied to a zero-padded image of ones (MemSR's constant channel), which equals a constant bias in
the interior and stays exact at image borders after 1×1 kernels are merged into the layer.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.models.layers import DIV2K_RGB_MEAN
from memsr_jax.models.layers import pixel_shuffle


def ones_conv(shape_hw, bias_map: jnp.ndarray, dtype) -> jnp.ndarray:
  """conv(ones[H, W], bias_map) with zero padding → [1, H, W, C] (see `rect_ones_conv`)."""
  h, w = shape_hw
  return rect_ones_conv(jnp.ones((h,), dtype), jnp.ones((w,), dtype), bias_map, dtype)


def rect_ones_conv(row_valid, col_valid, bias_map: jnp.ndarray, dtype) -> jnp.ndarray:
  """conv(row_valid ⊗ col_valid, bias_map) with zero padding → [1, H, W, C], in separable form.

  A tap (di, dj) sees a one at (i, j) iff row i+di-p and column j+dj-p are valid, so the map is
  Σ_di rows_di(i) · Q_di(j, c) with Q_di = Σ_dj cols_dj(j) · bias_map[di, dj]. Written as k
  broadcast multiply-adds it fuses into the consumer (y + map) instead of being a conv whose
  input-independent [H, W, C] result XLA would materialize (and hoist, raising peak memory).
  Tiled inference passes a tile's in-image rows/columns and gets bit-identical values.
  """
  k = bias_map.shape[0]
  p = k // 2

  def shifted(valid):  # [N] -> [N, k]: valid[n + tap - p], zero outside
    padded = jnp.pad(valid.astype(dtype), (p, p))
    return jnp.stack([padded[t:t + valid.shape[0]] for t in range(k)], axis=1)

  row_in, col_in = shifted(row_valid), shifted(col_valid)
  bm = bias_map[:, :, 0, :].astype(dtype)  # [k, k, C]
  out = 0.0
  for di in range(k):
    q = sum(col_in[:, dj, None] * bm[di, dj][None, :] for dj in range(k))  # [W, C], small
    out = out + row_in[:, di, None, None] * q[None, :, :]
  return out[None]


class PlainConv(nn.Module):
  features: int
  bias_mode: str = "vector"
  kernel_size: int = 3
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  precision: str | None = None  # e.g. "highest": needed where ±C offset channels pass through

  @nn.compact
  def __call__(self, x, valid=None):
    """conv(x) + bias; `valid` ([1, H, W, 1], 0/1, a rectangle) marks the true image inside a
    zero-padded tile, where a 'map' bias is the whole image's ones-image bias restricted to it."""
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
    y = jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=self.precision)
    if self.bias_mode == "vector":
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype)
    elif self.bias_mode == "map":
      bmap = self.param("bias_map", nn.initializers.zeros, (k, k, 1, self.features))
      if valid is None:
        y = y + ones_conv(x.shape[1:3], bmap, x.dtype)
      else:  # the same separable arithmetic on the tile's in-image rows × columns: bit-identical
        y = y + rect_ones_conv(valid[0, :, :, 0].max(axis=1), valid[0, :, :, 0].max(axis=0),
                               bmap, x.dtype)
    else:
      raise ValueError(f"bias_mode must be 'vector' or 'map', got {self.bias_mode!r}")
    return y


class PlainNet(nn.Module):
  """widths = (3, c_1, …, c_L): L 3×3 convs; relu[i] says whether conv i is followed by ReLU.

  One forward, `layer(h, i, valid)`, serves every use: `__call__` chains layers 0 … L (L = the
  tail), the layer-wise memory profile jits them one at a time, and tiled inference passes a
  validity mask (the per-layer hook that re-zeroes features outside the true image).
  """
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

  def setup(self):
    self.convs = [PlainConv(cout, self.bias_mode, 3, self.kernel_init, self.precision,
                            name=f"conv_{i}") for i, cout in enumerate(self.widths[1:])]
    self.tail_conv = PlainConv(3 * self.scale ** 2, "vector", self.tail_kernel, self.kernel_init,
                               self.precision, name="tail")

  @property
  def n_layers(self) -> int:
    return len(self.widths) - 1

  def relu_flags(self) -> tuple:
    if self.relu is None:
      return tuple([True] * (self.n_layers - 1) + [False])
    if len(self.relu) != self.n_layers:
      raise ValueError(f"PlainNet: {len(self.relu)} relu flags for {self.n_layers} conv layers")
    return tuple(bool(r) for r in self.relu)

  def layer(self, h, i: int, valid=None):
    """Layer i: conv_i (+ ReLU) for i < n_layers, the tail + pixel shuffle for i = n_layers.

    Mean handling belongs to the first and last layer. With `valid` ([1, H, W, 1], 1 inside the
    true image, 0 in a tile's padding) the input and every conv output are multiplied by it, so
    zero padding happens at the true border only (exact tiling, docs/DEPLOY.md).
    """
    mean = jnp.asarray(self.rgb_mean, h.dtype)
    if i == 0:
      if h.shape[-1] != self.widths[0]:
        raise ValueError(f"PlainNet expects {self.widths[0]} input channels, got {h.shape[-1]}")
      if self.sub_mean:
        h = h - mean
      if valid is not None:
        h = h * valid
    if i == self.n_layers:
      y = pixel_shuffle(self.tail_conv(h), self.scale)
      return y + mean if self.sub_mean else y
    y = self.convs[i](h, valid)
    if self.relu_flags()[i]:
      y = nn.relu(y)
    return y if valid is None else y * valid

  def __call__(self, x, capture: bool = False, valid=None):
    """SR of x; `capture=True` also returns the features after each conv_i; `valid`: see `layer`."""
    h, feats = x, []
    for i in range(self.n_layers):
      h = self.layer(h, i, valid)
      feats.append(h)
    y = self.layer(h, self.n_layers)
    return (y, feats) if capture else y


def param_counts(params) -> dict[str, int]:
  """{"n_params": what the network stores, "n_params_vector_bias": the same with every 3×3 bias map
  counted as the vector bias it equals away from the borders}.

  MemSR's paper counts the second (Plain-M ×4: 1,223,536 ≈ "1.22M"); a converted or
  winning-initialized student stores and exports bias maps (1,240,944), the first.
  """
  total = vector = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    n = int(np.prod(np.shape(leaf)))
    total += n
    name = str(getattr(path[-1], "key", path[-1]))
    vector += int(np.shape(leaf)[-1]) if name == "bias_map" else n
  return {"n_params": total, "n_params_vector_bias": vector}

