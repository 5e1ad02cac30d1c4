"""Laplacian-pyramid distillation loss (METHODS.md §2, distill stage).

Our reading of the spec, where the paper leaves details open (docs/COMPRESS.md):
  G        5×5 binomial blur, kernel outer([1,4,6,4,1])/256, reflect padding (edge not repeated,
           as numpy/PyTorch 'reflect'), applied per channel.
  levels   g_0 = x;  g_{i+1} = G(g_i)[::2, ::2]  (blur, then keep every other row/column).
  residual h_i = g_i − G(g_i)  (the high-pass part at level i).
  loss     Σ_{i=0}^{L−1} 2^i · ( mean|g_i(a) − g_i(b)| + mean|h_i(a) − h_i(b)| ),  L = 4.
The weights start at 2^0 = 1 on the full-resolution level; a mean per level means coarse levels
count per pixel, so 2^i gives the low frequencies (where a student's errors are largest) more say.
"""
import jax.numpy as jnp
import numpy as np

BINOMIAL_5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def blur(x: jnp.ndarray) -> jnp.ndarray:
  """5×5 binomial blur of NHWC images with reflect padding (separable; exact same as the 2-D kernel)."""
  if x.ndim != 4:
    raise ValueError(f"blur expects NHWC images, got shape {x.shape}")
  if min(x.shape[1], x.shape[2]) < 3:
    raise ValueError(f"reflect padding by 2 needs images of at least 3×3, got {x.shape[1:3]}: "
                     "use fewer pyramid levels or larger patches")
  k = jnp.asarray(BINOMIAL_5, x.dtype)
  x = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
  h, w = x.shape[1] - 4, x.shape[2] - 4
  x = sum(k[i] * x[:, i:i + h] for i in range(5))      # vertical
  return sum(k[j] * x[:, :, j:j + w] for j in range(5))  # horizontal


def gaussian_pyramid(x: jnp.ndarray, levels: int = 4) -> list[jnp.ndarray]:
  pyr = [x]
  for _ in range(levels - 1):
    pyr.append(blur(pyr[-1])[:, ::2, ::2])
  return pyr


def lap_pyramid_loss(a: jnp.ndarray, b: jnp.ndarray, levels: int = 4,
                     level_weight_base: float = 2.0) -> jnp.ndarray:
  """Σ_i base^i · (L1 of level i + L1 of its high-pass residual); a, b: NHWC, same shape."""
  if a.shape != b.shape:
    raise ValueError(f"lap_pyramid_loss: shapes differ, {a.shape} vs {b.shape}")
  if levels < 1:
    raise ValueError(f"levels must be >= 1, got {levels}")
  total = jnp.zeros([], jnp.float32)
  # The pyramid is linear, so it is built once on the difference: g_i(a) − g_i(b) = g_i(a − b).
  for i, g in enumerate(gaussian_pyramid(a - b, levels)):
    w = level_weight_base ** i
    total = total + w * (jnp.mean(jnp.abs(g)) + jnp.mean(jnp.abs(g - blur(g))))
  return total
