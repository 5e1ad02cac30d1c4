"""SwinIR in Flax: parameter counts, window machinery, padding and stochastic depth (no torch)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.models import registry
from memsr_jax.models import swinir
from memsr_jax.utils import pytrees

TINY = dict(embed_dim=8, depths=(2,), num_heads=(2,), window_size=4, mlp_ratio=2.0)


def _count(name, scale):
  model = registry.build_model(name, scale=scale)
  x = jnp.zeros((1, 16, 16, 3), jnp.float32)
  params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x))["params"]
  return pytrees.count_params(params)


# SwinIR-S from the SwinIR paper; SwinIRmini from the compression paper (docs/COMPRESS.md).
@pytest.mark.parametrize("name,scale,count", [("swinir_s", 2, 910_152), ("swinir_mini", 2, 98_868),
                                              ("swinir_mini", 3, 102_123),
                                              ("swinir_mini", 4, 106_680)])
def test_param_counts(name, scale, count):
  assert _count(name, scale) == count


def test_relative_position_bias_is_a_param_and_index_is_not():
  model = registry.build_model("swinir_mini", scale=2)
  params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                             jnp.zeros((1, 8, 8, 3))))["params"]
  attn = params["layers_0"]["blocks_1"]["attn"]
  assert sorted(attn) == ["proj", "qkv", "relative_position_bias_table"]
  assert attn["relative_position_bias_table"].shape == (15 * 15, 6)


@pytest.mark.parametrize("w", [1, 4, 8])
def test_relative_position_index(w):
  idx = swinir.relative_position_index(w)
  assert idx.shape == (w * w, w * w)
  center = (w - 1) * (2 * w - 1) + (w - 1)  # offset (0, 0)
  assert (np.diag(idx) == center).all()
  assert (idx + idx.T == 2 * center).all()  # offset (dy, dx) and (−dy, −dx)
  # Token p = (r, c) = divmod(p, w): the index encodes (r_p − r_q + w − 1, c_p − c_q + w − 1).
  r, c = np.divmod(np.arange(w * w), w)
  expected = (r[:, None] - r[None] + w - 1) * (2 * w - 1) + (c[:, None] - c[None] + w - 1)
  np.testing.assert_array_equal(idx, expected)


def test_window_partition_roundtrip():
  x = jnp.arange(2 * 8 * 12 * 3, dtype=jnp.float32).reshape(2, 8, 12, 3)
  win = swinir.window_partition(x, 4)
  assert win.shape == (2 * 2 * 3, 16, 3)
  np.testing.assert_array_equal(win[1].reshape(4, 4, 3), x[0, 0:4, 4:8])  # row-major windows
  np.testing.assert_array_equal(swinir.window_reverse(win, 4, 8, 12), x)


@pytest.mark.parametrize("h,w", [(16, 16), (8, 24), (24, 16)])
def test_shifted_window_mask(h, w):
  """Tokens attend freely iff neither axis mixes wrapped-around and in-place pixels."""
  win, shift = 8, 4
  mask = swinir.shifted_window_mask(h, w, win, shift)
  assert mask.shape == ((h // win) * (w // win), win * win, win * win)
  assert set(np.unique(mask)) <= {0.0, -100.0}
  rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  # In the rolled frame, position i holds pixel i + shift; it wrapped iff i + shift ≥ size.
  wrapped = np.stack([rows + shift >= h, cols + shift >= w], -1).astype(np.float32)
  tok = np.asarray(swinir.window_partition(wrapped[None], win))  # nW, w², 2
  same = (tok[:, :, None, :] == tok[:, None, :, :]).all(-1)
  np.testing.assert_array_equal(mask == 0.0, same)
  if h > win and w > win:
    assert (mask[0] == 0).all()  # the top-left window does not reach a wrapped border
  assert (mask[-1] == -100.0).any()


def _tiny(scale=2, **kw):
  """A tiny SwinIR and random params (from shapes alone: compiling `init` costs CPU seconds)."""
  model = registry.build_model("swinir_mini", scale=scale, **dict(TINY, **kw))
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3))))
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda s: jnp.asarray(rng.normal(0.0, 0.1, s.shape), jnp.float32),
                        shapes["params"])
  return model, params


def _apply(model, **kw):
  return jax.jit(lambda p, x: model.apply({"params": p}, x, **kw))


def test_non_multiple_input_is_padded_and_cropped():
  model, params = _tiny(scale=2)
  x = np.random.default_rng(0).uniform(0, 255, (1, 13, 10, 3)).astype(np.float32)
  run = _apply(model)
  y = run(params, jnp.asarray(x))
  assert y.shape == (1, 26, 20, 3)
  # Same as padding by hand (reflect, to 16×12) and cropping the output.
  xp = np.pad(x, ((0, 0), (0, 3), (0, 2), (0, 0)), mode="reflect")
  yp = run(params, jnp.asarray(xp))
  np.testing.assert_allclose(y, yp[:, :26, :20], atol=1e-4)


def test_zero_params_output_the_mean_in_0_255():
  """All-zero params leave only the mean add-back: (0 / img_range + mean)·255."""
  model, params = _tiny(scale=2)
  params = jax.tree.map(jnp.zeros_like, params)
  y = _apply(model)(params, jnp.full((1, 8, 8, 3), 50.0))
  np.testing.assert_allclose(y[0, 0, 0], np.array(swinir.SWINIR_RGB_MEAN) * 255.0, atol=1e-4)


def test_stochastic_depth_only_in_training():
  model, params = _tiny(drop_path_rate=0.5)
  x = jnp.asarray(np.random.default_rng(1).uniform(0, 255, (4, 8, 8, 3)), jnp.float32)
  eval_a = _apply(model)(params, x)
  eval_b = _apply(model, deterministic=True)(params, x)
  np.testing.assert_array_equal(eval_a, eval_b)
  train_fn = jax.jit(lambda p, x, key: model.apply({"params": p}, x, deterministic=False,
                                                   rngs={"dropout": key}))
  train = lambda k: train_fn(params, x, jax.random.PRNGKey(k))
  t1, t2 = train(1), train(2)
  assert not np.allclose(t1, eval_a) and not np.allclose(t1, t2)
  np.testing.assert_array_equal(t1, train(1))  # same rng, same drops
  with pytest.raises(Exception, match="dropout"):
    model.apply({"params": params}, x, deterministic=False)


def test_no_drop_path_rate_means_training_equals_eval():
  model, params = _tiny(drop_path_rate=0.0)
  x = jnp.full((1, 8, 8, 3), 100.0)
  np.testing.assert_array_equal(_apply(model)(params, x),
                                _apply(model, deterministic=False)(params, x))


def test_layer_norm_eps_and_exact_gelu():
  # Variance (≈1e-5) comparable to eps, on a mean of 1: eps and a stable variance both matter.
  x = jnp.asarray(np.random.default_rng(2).normal(size=(3, 12)) * 3e-3 + 1.0, jnp.float32)
  ln = swinir.layer_norm("n")
  y = ln.apply(ln.init(jax.random.PRNGKey(0), x), x)
  xn = np.asarray(x, np.float64)
  ref = (xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-5)
  np.testing.assert_allclose(y, ref, atol=1e-3)
  mlp = swinir.Mlp(dim=4, hidden=8)
  z = jnp.linspace(-3, 3, 16).reshape(4, 4)
  p = mlp.init(jax.random.PRNGKey(0), z)["params"]
  h = np.asarray(z) @ np.asarray(p["fc1"]["kernel"]) + np.asarray(p["fc1"]["bias"])
  from scipy.special import erf  # scipy: only this test
  g = 0.5 * h * (1 + erf(h / np.sqrt(2)))
  ref = g @ np.asarray(p["fc2"]["kernel"]) + np.asarray(p["fc2"]["bias"])
  np.testing.assert_allclose(mlp.apply({"params": p}, z), ref, atol=1e-5)


def test_bad_configs():
  with pytest.raises(ValueError, match="upsampler"):
    _tiny(upsampler="nearest+conv")
  with pytest.raises(ValueError, match="same length"):
    _tiny(num_heads=(2, 2))
  with pytest.raises(ValueError, match="divisible"):
    _tiny(num_heads=(3,))
