"""Model zoo basics: pixel shuffle order, registry, parameter counts, plain-net bias maps."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.models import layers
from memsr_jax.models import plain
from memsr_jax.models import registry
from memsr_jax.models.plain import PlainNet
from memsr_jax.utils import pytrees


def _pixel_shuffle_reference(x, s):
  """PyTorch's definition written out: out[n, h*s+i, w*s+j, c] = in[n, h, w, c*s*s + i*s + j]."""
  n, h, w, cin = x.shape
  c = cin // (s * s)
  out = np.zeros((n, h * s, w * s, c), x.dtype)
  for hh in range(h):
    for ww in range(w):
      for cc in range(c):
        for i in range(s):
          for j in range(s):
            out[:, hh * s + i, ww * s + j, cc] = x[:, hh, ww, cc * s * s + i * s + j]
  return out


@pytest.mark.parametrize("s", [2, 3])
def test_pixel_shuffle_matches_pytorch_order(rng, s):
  x = rng.normal(size=(2, 3, 4, 2 * s * s)).astype(np.float32)
  np.testing.assert_array_equal(np.asarray(layers.pixel_shuffle(jnp.asarray(x), s)),
                                _pixel_shuffle_reference(x, s))
  np.testing.assert_array_equal(
      np.asarray(layers.pixel_unshuffle(layers.pixel_shuffle(jnp.asarray(x), s), s)), x)


def test_pixel_shuffle_matches_torch(rng):
  torch = pytest.importorskip("torch")
  x = rng.normal(size=(1, 3, 5, 12)).astype(np.float32)
  ref = torch.nn.functional.pixel_shuffle(torch.from_numpy(x.transpose(0, 3, 1, 2)), 2)
  np.testing.assert_array_equal(np.asarray(layers.pixel_shuffle(jnp.asarray(x), 2)),
                                ref.numpy().transpose(0, 2, 3, 1))


def test_pixel_shuffle_rejects_bad_channels():
  with pytest.raises(ValueError, match="not divisible"):
    layers.pixel_shuffle(jnp.zeros((1, 2, 2, 5)), 2)


@pytest.mark.parametrize("name,scale,count", [
    ("edsr_baseline", 2, 1_369_859),
    ("edsr_mini", 2, 49_603),
    # head + 32 block convs + body conv + 1×1 tail: (3·9+1)·64 + 33·(64·64·9+64) + (64+1)·12
    ("memsr_teacher_m", 2, 28 * 64 + 33 * (64 * 64 * 9 + 64) + 65 * 12),
    ("plain_m", 2, 1_221_196),
])
def test_param_counts(name, scale, count):
  model = registry.build_model(name, scale=scale)
  shapes = jax.eval_shape(lambda: registry.init_params(model, jax.random.key(0)))
  assert pytrees.count_params(shapes) == count


def test_full_edsr_count():
  # EDSR (256 ch, 32 blocks) ×2: 40.7M parameters as published (40,729,603 without the mean shifts).
  model = registry.build_model("edsr", scale=2)
  shapes = jax.eval_shape(lambda: registry.init_params(model, jax.random.key(0)))
  assert pytrees.count_params(shapes) == 40_729_603


def test_registry_errors():
  with pytest.raises(ValueError, match="unknown model 'nope'"):
    registry.build_model("nope")
  with pytest.raises(ValueError, match="no hyperparameter"):
    registry.build_model("edsr_baseline", n_feets=3)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shapes(scale):
  for name in ("edsr_mini", "memsr_teacher_s"):
    model = registry.build_model(name, scale=scale, n_resblocks=2, n_feats=8)
    params = registry.init_params(model, jax.random.key(0))
    y = model.apply({"params": params}, jnp.zeros((2, 7, 9, 3)))
    assert y.shape == (2, 7 * scale, 9 * scale, 3)


def test_edsr_stage_methods_compose():
  model = registry.build_model("edsr_mini", scale=2, n_resblocks=4)
  params = registry.init_params(model, jax.random.key(1))
  x = jax.random.uniform(jax.random.key(2), (1, 6, 7, 3)) * 255
  v = {"params": params}
  h0 = model.apply(v, x, method=model.encode)
  h = model.apply(v, h0, 0, 2, method=model.run_blocks)
  h = model.apply(v, h, 2, 4, method=model.run_blocks)
  y = model.apply(v, h, h0, method=model.decode)
  np.testing.assert_allclose(y, model.apply(v, x), atol=1e-4)


def test_plain_bias_map_is_constant_inside_and_differs_at_border():
  net = PlainNet(scale=2, widths=(3, 4), relu=(False,), bias_mode="map", sub_mean=False)
  params = net.init(jax.random.key(0), jnp.zeros((1, 6, 6, 3)))["params"]
  bmap = jax.random.normal(jax.random.key(3), params["conv_0"]["bias_map"].shape)
  params = jax.tree_util.tree_map(jnp.zeros_like, params)
  params["conv_0"]["bias_map"] = bmap
  _, feats = net.apply({"params": params}, jnp.zeros((1, 6, 6, 3)), capture=True)
  f = np.asarray(feats[0])[0]
  np.testing.assert_allclose(f[1:-1, 1:-1], np.broadcast_to(bmap.sum((0, 1, 2)), (4, 4, 4)),
                             atol=1e-5)
  # Top-left corner sees only the bottom-right 2×2 of the bias kernel.
  np.testing.assert_allclose(f[0, 0], np.asarray(bmap)[1:, 1:, 0].sum((0, 1)), atol=1e-5)


def test_plain_relu_flags_validated():
  with pytest.raises(ValueError, match="relu flags"):
    net = PlainNet(widths=(3, 4, 4), relu=(True,))
    net.init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))


def test_init_params_cached_compile_matches_plain_jit():
  """The cached, CPU-O0-compiled init gives the plain jitted init's params, per rng, in and out
  of tracing."""
  model = registry.build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=1)
  plain = jax.jit(lambda r: model.init(r, jnp.zeros((1, 16, 16, 3), jnp.float32))["params"])
  for rng in (jax.random.PRNGKey(0), jax.random.PRNGKey(1), jax.random.key(2)):
    jax.tree.map(np.testing.assert_array_equal, registry.init_params(model, rng), plain(rng))
  a = registry.init_params(model, jax.random.PRNGKey(0))
  b = registry.init_params(model, jax.random.PRNGKey(1))
  assert not np.array_equal(a["head"]["kernel"], b["head"]["kernel"])
  shapes = jax.eval_shape(lambda: registry.init_params(model, jax.random.key(0)))
  assert jax.tree.map(lambda s: s.shape, shapes) == jax.tree.map(lambda x: x.shape, a)


def test_plain_param_counts_both_readings():
  """MemSR's Plain-M ×4: 1,223,536 params with vector biases (the paper's "1.22M"); the converted
  or winning-initialized student stores 3×3 bias maps: 1,240,944."""
  model = registry.build_model("plain_m", scale=4, bias_mode="map")
  shapes = jax.eval_shape(lambda: registry.init_params(model, jax.random.key(0)))
  counts = plain.param_counts(shapes)
  assert counts == {"n_params": 1_240_944, "n_params_vector_bias": 1_223_536}
  vector = jax.eval_shape(lambda: registry.init_params(
      registry.build_model("plain_m", scale=4), jax.random.key(0)))
  assert plain.param_counts(vector) == {"n_params": 1_223_536, "n_params_vector_bias": 1_223_536}


@pytest.mark.parametrize("name,overrides,fragment", [
    ("imdn", dict(n_feats="abc"), "n_feats='abc' (expected an integer >= 1)"),
    ("imdn", dict(n_feats=-3), "n_feats=-3 (expected an integer >= 1)"),
    ("edsr_baseline", dict(n_resblocks=-1), "n_resblocks=-1 (expected an integer >= 0)"),
    ("edsr_baseline", dict(n_feats=16.5), "n_feats=16.5"),
    ("edsr_baseline", dict(res_scale=float("nan")), "res_scale=nan (expected a finite number)"),
    ("edsr_baseline", dict(tail="x"), "tail='x' (expected one of upsampler, conv1x1)"),
    ("swinir_s", dict(depths=[2, -2]), "depths=[2, -2] (expected a list of integers >= 1)"),
    ("swinir_s", dict(mlp_ratio=0), "mlp_ratio=0 (expected a number > 0)"),
    ("plain", dict(relu="yes"), "relu='yes'"),
    ("imdn", dict(scale=True), "scale=True"),
])
def test_hyperparameter_values_are_checked_before_building(name, overrides, fragment):
  with pytest.raises(ValueError, match=re.escape(fragment)):
    registry.model_kwargs(name, **overrides)


def test_fitting_hyperparameter_values_pass():
  registry.model_kwargs("edsr_baseline", n_resblocks=0, n_feats=8, res_scale=0.1)
  registry.model_kwargs("swinir_s", depths=[2, 2], num_heads=(2, 2), embed_dim=12)
  registry.model_kwargs("plain", widths=[3, 8, 8], relu=[True, False], tail_kernel=3)
  registry.model_kwargs("edsr_baseline", rgb_mean=[100, 110, 120])
