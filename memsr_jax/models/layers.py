"""Small building blocks shared by the model zoo."""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

# DIV2K RGB mean on the 0..255 scale, as in EDSR / BasicSR.
DIV2K_RGB_MEAN = (0.4488 * 255.0, 0.4371 * 255.0, 0.4040 * 255.0)


def pixel_shuffle(x: jnp.ndarray, scale: int) -> jnp.ndarray:
  """NHWC pixel shuffle with PyTorch's channel order.

  PyTorch reads input channel c*s*s + i*s + j into output pixel (h*s+i, w*s+j), channel c.
  """
  b, h, w, c = x.shape
  s = scale
  if c % (s * s):
    raise ValueError(f"pixel_shuffle: {c} channels is not divisible by scale² = {s * s}")
  oc = c // (s * s)
  x = x.reshape(b, h, w, oc, s, s)
  x = x.transpose(0, 1, 4, 2, 5, 3)  # b, h, i, w, j, c
  return x.reshape(b, h * s, w * s, oc)


def pixel_unshuffle(x: jnp.ndarray, scale: int) -> jnp.ndarray:
  """Inverse of `pixel_shuffle` (PyTorch channel order)."""
  b, h, w, c = x.shape
  s = scale
  x = x.reshape(b, h // s, s, w // s, s, c)
  x = x.transpose(0, 1, 3, 5, 2, 4)  # b, h, w, c, i, j
  return x.reshape(b, h // s, w // s, c * s * s)


# PyTorch's default conv init (kaiming_uniform with a=√5: U(±1/√fan_in), variance 1/(3·fan_in)).
# EDSR-family nets work on the 0..255 scale with identity skips; lecun_normal (3× the variance)
# lets features grow ~20× over 16 residual blocks and untrained outputs explode.
TORCH_CONV_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def conv(features: int, kernel: int = 3, name: str | None = None, use_bias: bool = True,
         kernel_init=TORCH_CONV_INIT) -> nn.Conv:
  """A 'same'-padded (zero) stride-1 conv, the only conv most SR models use."""
  return nn.Conv(features, (kernel, kernel), padding="SAME", use_bias=use_bias, name=name,
                 kernel_init=kernel_init)


def upsample_stages(scale: int) -> Sequence[int]:
  """EDSR's upsampler: log2(scale) ×2 stages for powers of two, one ×3 stage for 3."""
  if scale in (1, 2, 4, 8):
    return [2] * {1: 0, 2: 1, 4: 2, 8: 3}[scale]
  if scale == 3:
    return [3]
  raise ValueError(f"unsupported scale {scale}: use 2, 3, 4 or 8")
