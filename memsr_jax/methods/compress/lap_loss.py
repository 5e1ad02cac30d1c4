"""Laplacian-pyramid distillation loss (docs/COMPRESS.md, distill stage).

Our reading of the spec, where the paper leaves details open (docs/COMPRESS.md):
  G        5×5 binomial blur, kernel outer([1,4,6,4,1])/256, reflect padding (edge not repeated,
           as numpy/PyTorch 'reflect'), per channel.
  pyramid  Burt & Adelson's Laplacian pyramid with `levels` entries:
             g_0 = x,  g_{i+1} = REDUCE(g_i) = G(g_i)[::2, ::2]  (blur, keep every other row/col)
             band_i = g_i − EXPAND(g_{i+1})  for i < levels − 1, the last entry is g_{levels−1}
           EXPAND(y) = 4·G(y with zeros inserted between samples), cropped to g_i's size.
  L_lap    Σ_i 2^i · mean|P_i(a) − P_i(b)|   (i = 0 is the full-resolution band: weights 1,2,4,8)
  L_dis    L_lap(a, b) + L_lap(a − G(a), b − G(b))   ("applied to the images and to their
           high-pass residuals").
The pyramid is linear, so both are computed on the difference a − b.

The authors' release (BasicSR fork, losses/basic_loss.py: LaplacianPyramid / MultiLapLoss) builds
the same band-pass pyramid with two differences: REDUCE is blur + 2×2 *average pooling* (not keeping
every other sample) and it has 5 levels. `pyramid="release"` (`release_distill_loss`) is that
construction; the paper configs use it (docs/COMPRESS.md).

`gaussian_lap_loss` is the other reading we tried first (Gaussian levels g_i each with its own
high-pass g_i − G(g_i)); it trained worse at CPU scale (docs/COMPRESS.md) and is kept for the
record.
"""
import jax
import jax.numpy as jnp
import numpy as np

BINOMIAL_5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def blur(x: jnp.ndarray) -> jnp.ndarray:
  """5×5 binomial blur of NHWC images with reflect padding (a depthwise conv, fp32-exact)."""
  if x.ndim != 4:
    raise ValueError(f"blur expects NHWC images, got shape {x.shape}")
  if min(x.shape[1], x.shape[2]) < 3:
    raise ValueError(f"reflect padding by 2 needs images of at least 3×3, got {x.shape[1:3]}: "
                     "use fewer pyramid levels or larger patches")
  c = x.shape[-1]
  k = jnp.asarray(np.outer(BINOMIAL_5, BINOMIAL_5), x.dtype)
  k = jnp.tile(k[:, :, None, None], (1, 1, 1, c))  # depthwise HWIO: [5, 5, 1, C]
  x = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
  return jax.lax.conv_general_dilated(x, k, (1, 1), "VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      feature_group_count=c,
                                      precision=jax.lax.Precision.HIGHEST)


DOWNSAMPLES = ("decimate", "avgpool")


def reduce(x: jnp.ndarray, downsample: str = "decimate") -> jnp.ndarray:
  """Blur, then halve: keep every other sample (Burt & Adelson) or 2×2 average pooling (the
  release; odd trailing rows/columns are dropped, as PyTorch's avg_pool2d does)."""
  g = blur(x)
  if downsample == "decimate":
    return g[:, ::2, ::2]
  if downsample == "avgpool":
    b, h, w, c = g.shape
    g = g[:, :h // 2 * 2, :w // 2 * 2]
    return g.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
  raise ValueError(f"downsample must be one of {DOWNSAMPLES}, got {downsample!r}")


def expand(y: jnp.ndarray, shape: tuple[int, int]) -> jnp.ndarray:
  """Zero-insertion upsampling to `shape` (h, w), then 4·G (the zeros dilute the signal by 4).

  After average pooling an odd side has no sample for its last row/column (2·h < shape): it
  stays zero, like the other inserted zeros."""
  b, h, w, c = y.shape
  up = jnp.zeros((b, max(2 * h, shape[0]), max(2 * w, shape[1]), c), y.dtype)
  up = up.at[:, :2 * h:2, :2 * w:2].set(y)
  return 4.0 * blur(up[:, :shape[0], :shape[1]])


def laplacian_pyramid(x: jnp.ndarray, levels: int = 4,
                      downsample: str = "decimate") -> list[jnp.ndarray]:
  """[band_0, …, band_{L−2}, g_{L−1}] of NHWC images."""
  if levels < 1:
    raise ValueError(f"levels must be >= 1, got {levels}")
  out, g = [], x
  for _ in range(levels - 1):
    nxt = reduce(g, downsample)
    out.append(g - expand(nxt, g.shape[1:3]))
    g = nxt
  out.append(g)
  return out


def lap_pyramid_loss(a: jnp.ndarray, b: jnp.ndarray, levels: int = 4,
                     level_weight_base: float = 2.0, downsample: str = "decimate"
                     ) -> jnp.ndarray:
  """L_lap: Σ_i base^i · mean|P_i(a) − P_i(b)| over the Laplacian pyramid P."""
  if a.shape != b.shape:
    raise ValueError(f"lap_pyramid_loss: shapes differ, {a.shape} vs {b.shape}")
  total = jnp.zeros([], jnp.float32)
  for i, p in enumerate(laplacian_pyramid(a - b, levels, downsample)):
    total = total + level_weight_base ** i * jnp.mean(jnp.abs(p))
  return total


def distill_loss(a: jnp.ndarray, b: jnp.ndarray, levels: int = 4,
                 level_weight_base: float = 2.0, downsample: str = "decimate") -> jnp.ndarray:
  """L_dis: L_lap on the images plus L_lap on their high-pass residuals x − G(x)."""
  if a.shape != b.shape:
    raise ValueError(f"distill_loss: shapes differ, {a.shape} vs {b.shape}")
  d = a - b
  zero = jnp.zeros_like(d)
  return (lap_pyramid_loss(d, zero, levels, level_weight_base, downsample)
          + lap_pyramid_loss(d - blur(d), zero, levels, level_weight_base, downsample))


def release_distill_loss(a: jnp.ndarray, b: jnp.ndarray, levels: int = 5,
                         level_weight_base: float = 2.0) -> jnp.ndarray:
  """L_dis with the release's pyramid (blur + 2×2 average pooling); `levels` from the config
  (the release uses 5)."""
  return distill_loss(a, b, levels, level_weight_base, downsample="avgpool")


def gaussian_lap_loss(a: jnp.ndarray, b: jnp.ndarray, levels: int = 4,
                      level_weight_base: float = 2.0) -> jnp.ndarray:
  """The first reading: Σ_i base^i (mean|g_i(d)| + mean|g_i(d) − G(g_i(d))|), g Gaussian levels."""
  if a.shape != b.shape:
    raise ValueError(f"gaussian_lap_loss: shapes differ, {a.shape} vs {b.shape}")
  total, g = jnp.zeros([], jnp.float32), a - b
  for i in range(levels):
    if i:
      g = reduce(g)
    total = total + level_weight_base ** i * (jnp.mean(jnp.abs(g)) + jnp.mean(jnp.abs(g - blur(g))))
  return total


def l1_distill_loss(a: jnp.ndarray, b: jnp.ndarray, levels: int = 1,
                    level_weight_base: float = 1.0) -> jnp.ndarray:
  """Plain L1 between student and teacher outputs (no pyramid): the ablation of the pyramid."""
  del levels, level_weight_base
  return jnp.mean(jnp.abs(a - b))


LOSSES = {"laplacian": distill_loss, "release": release_distill_loss,
          "gaussian": gaussian_lap_loss, "l1": l1_distill_loss}
