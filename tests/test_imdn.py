"""IMDN in Flax: structure, parameter counts and the 0..255 contract (no torch needed)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.models import registry
from memsr_jax.models.imdn import IMDN
from memsr_jax.models.imdn import ContrastChannelAttention
from memsr_jax.utils import precision
from memsr_jax.utils import pytrees


def _shapes(model, hw=(8, 8)):
  x = jnp.zeros((1, *hw, 3), jnp.float32)
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x))["params"]


# Element counts of the official IMDN_x{2,3,4}.pth state dicts.
@pytest.mark.parametrize("scale,count", [(2, 694_404), (3, 703_059), (4, 715_176)])
def test_param_count_matches_official_release(scale, count):
  assert pytrees.count_params(_shapes(registry.build_model("imdn", scale=scale))) == count


def test_param_tree_layout():
  p = _shapes(registry.build_model("imdn", scale=2))
  assert sorted(p) == sorted(["fea_conv", "fuse", "lr_conv", "upsampler"]
                             + [f"imdb_{i}" for i in range(6)])
  blk = p["imdb_0"]
  assert sorted(blk) == ["c1", "c2", "c3", "c4", "c5", "cca"]
  # Distillation: c2..c4 see the 48 remaining channels; c4 emits the 16 distilled ones.
  assert blk["c2"]["kernel"].shape == (3, 3, 48, 64)
  assert blk["c4"]["kernel"].shape == (3, 3, 48, 16)
  assert blk["cca"]["down"]["kernel"].shape == (1, 1, 64, 4)
  assert p["fuse"]["kernel"].shape == (1, 1, 384, 64)
  assert p["upsampler"]["kernel"].shape == (3, 3, 64, 12)


def test_nearest_upsampling_weights_reproduce_input():
  """Hand-set weights make IMDN an exact nearest-neighbour upsampler.

  fea_conv copies RGB into channels 0..2, every block's c5 and the fuse/lr convs are zero (blocks
  become identities, the global skip carries the features), and the upsampler copies channel c
  to its s² sub-pixels. Checks the ÷255/×255 contract, the skip and the pixel-shuffle order.
  """
  s = 3
  model = IMDN(scale=s, n_feats=16, n_blocks=2)
  params = jax.tree.map(jnp.zeros_like, _shapes(model))
  fea = np.zeros((3, 3, 3, 16), np.float32)
  fea[1, 1, np.arange(3), np.arange(3)] = 1.0
  up = np.zeros((3, 3, 16, 3 * s * s), np.float32)
  for c in range(3):
    up[1, 1, c, c * s * s:(c + 1) * s * s] = 1.0  # PyTorch order: channel c·s² + i·s + j
  params["fea_conv"]["kernel"] = jnp.asarray(fea)
  params["upsampler"]["kernel"] = jnp.asarray(up)
  x = np.random.default_rng(0).uniform(0, 255, (2, 5, 7, 3)).astype(np.float32)
  y = np.asarray(jax.jit(model.apply)({"params": params}, jnp.asarray(x)))
  expected = x.repeat(s, axis=1).repeat(s, axis=2)
  np.testing.assert_allclose(y, expected, atol=1e-3)


def test_contrast_channel_attention_formula():
  cca = ContrastChannelAttention(channels=32, reduction=16)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 5, 32))
  params = cca.init(jax.random.PRNGKey(2), x)["params"]
  with precision.exact():  # compared with float64 at 1e-5: no TF32 1×1 convs on GPUs
    y = np.asarray(cca.apply({"params": params}, x))
  xn = np.asarray(x, np.float64)
  contrast = xn.std(axis=(1, 2)) + xn.mean(axis=(1, 2))  # population std, per image/channel
  down = {k: np.asarray(v, np.float64) for k, v in params["down"].items()}
  upp = {k: np.asarray(v, np.float64) for k, v in params["up"].items()}
  hidden = np.maximum(contrast @ down["kernel"][0, 0] + down["bias"], 0.0)
  gate = 1.0 / (1.0 + np.exp(-(hidden @ upp["kernel"][0, 0] + upp["bias"])))
  np.testing.assert_allclose(y, xn * gate[:, None, None, :], rtol=1e-5, atol=1e-5)


def test_output_shape_any_size():
  model = registry.build_model("imdn", scale=4, n_feats=16, n_blocks=1)
  x = jnp.full((1, 7, 5, 3), 128.0)
  params = _shapes(model, hw=(7, 5))
  out = jax.eval_shape(lambda p: model.apply({"params": p}, x), params)
  assert out.shape == (1, 28, 20, 3) and out.dtype == jnp.float32
