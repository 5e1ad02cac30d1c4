"""Exactness of the residual → plain conversion (MemSR step 1)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.methods.memsr import convert
from memsr_jax.methods.memsr.convert_error import trained_like
from memsr_jax.models import registry
from memsr_jax.models.plain import PlainNet
from memsr_jax.utils import precision


def _teacher(name, scale, seed=0, **kw):
  model = registry.build_model(name, scale=scale, **kw)
  params = registry.init_params(model, jax.random.key(seed))
  return model, params


def _image(shape, seed=0, dtype=jnp.float32):
  return jnp.asarray(np.random.default_rng(seed).uniform(0, 255, shape), dtype)


@pytest.mark.parametrize("name,scale,hw", [("memsr_teacher_s", 2, (12, 15)),
                                           ("memsr_teacher_m", 4, (13, 11))])
def test_fp32_plain_matches_residual(name, scale, hw):
  model, params = _teacher(name, scale, seed=scale)
  params = trained_like(params, seed=scale)
  x = _image((2, *hw, 3), seed=1)
  # The residual reference runs under the precision policy too: with the backend default a GPU
  # computes it in TF32 (~1e-3 relative), which no fp32 bound covers.
  with precision.exact():
    ref = jax.jit(model.apply)({"params": params}, x)
  assert 30.0 < float(ref.min()) and float(ref.max()) < 230.0  # realistic output range
  plain_model, plain_params = convert.convert(model, params)
  out = jax.jit(plain_model.apply)({"params": plain_params}, x)  # HIGHEST: the model carries it
  # Both sides are IEEE fp32 sums now (any summation order), so what is measured here holds on any
  # backend. The worst-case bound of utils.numerics is vacuous for these 10–34-layer chains
  # (|W| products: ~1e11), so the tolerances stay measured ones, with headroom stated:
  # literal plain net (sums the +C = 1000 copies in every conv): measured ≤ 1.5e-3 for S and M,
  # ×2/3/4 (python -m memsr_jax.methods.memsr.convert_error).
  assert float(jnp.max(jnp.abs(out - ref))) <= 4e-3
  # The same network with C folded analytically (never forms values near ±C): measured ≤ 2.3e-5
  # (one to two ulps at 128).
  spec = convert.teacher_spec(model)
  folded = convert.fold_offsets(spec, convert.convert_params(spec, params))
  fold_fn = jax.jit(lambda q, xx: convert.apply_folded(spec, q, xx))
  assert float(jnp.max(jnp.abs(fold_fn(folded, x) - ref))) <= 2e-4
  # Both still catch a real mistake by orders of magnitude: one block's bias dropped.
  bad = dict(folded, conv_2=dict(folded["conv_2"], bias_map=folded["conv_2"]["bias_map"] * 0))
  assert float(jnp.max(jnp.abs(fold_fn(bad, x) - ref))) > 0.05


@pytest.mark.parametrize("name,scale,weights,offset,body_bias", [
    ("memsr_teacher_s", 3, "random", 1e5, "vector"),  # default init: features in the thousands
    ("memsr_teacher_m", 2, "trained_like", 1000.0, "vector"),
    ("memsr_teacher_s", 4, "trained_like", 1000.0, "vector"),
    # the official MemSR teachers' layout: 3×3 bias maps in the body convs
    ("memsr_teacher_s", 4, "trained_like", 1000.0, "map")])
def test_fp64_plain_matches_residual(name, scale, weights, offset, body_bias):
  with jax.enable_x64(True):
    model, params = _teacher(name, scale, seed=7, body_bias=body_bias)
    if weights == "trained_like":
      params = trained_like(params, seed=7)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    x = _image((1, 12, 15, 3), seed=2, dtype=jnp.float64)
    ref = jax.jit(model.apply)({"params": params}, x)
    plain_model, plain_params = convert.convert(model, params, offset=offset, dtype=np.float64)
    out = jax.jit(plain_model.apply)({"params": plain_params}, x)
    assert out.dtype == jnp.float64
    assert float(jnp.max(jnp.abs(out - ref))) <= 1e-8


def test_plain_teacher_m_layout():
  model, params = _teacher("memsr_teacher_m", 4)
  plain_model, plain_params = convert.convert(model, params)
  assert plain_model.widths == tuple([3, 64] + [192, 128] * 16 + [64])
  assert plain_model.n_layers == 34
  assert plain_model.relu_flags() == tuple([False] + [True, False] * 16 + [False])
  assert not plain_model.sub_mean and plain_model.bias_mode == "map"
  expected = jax.eval_shape(lambda: registry.init_params(plain_model, jax.random.key(0)))
  got = jax.tree_util.tree_map(np.shape, plain_params)
  want = jax.tree_util.tree_map(lambda s: s.shape, expected)
  assert got == want
  assert plain_params["tail"]["kernel"].shape == (1, 1, 64, 48)


@pytest.mark.parametrize("kw", [dict(n_feats=8, n_resblocks=3, res_scale=0.1),
                                dict(n_feats=6, n_resblocks=0)])
def test_res_scale_and_depth_variants(kw):
  with jax.enable_x64(True):
    model = registry.build_model("edsr", scale=2, tail="conv1x1", **kw)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64),
                                    registry.init_params(model, jax.random.key(3)))
    params = jax.tree_util.tree_map(jnp.asarray, trained_like(params, seed=3))
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    x = _image((1, 9, 7, 3), seed=4, dtype=jnp.float64)
    ref = jax.jit(model.apply)({"params": params}, x)
    plain_model, plain_params = convert.convert(model, params, dtype=np.float64)
    assert plain_model.n_layers == 2 * kw["n_resblocks"] + 2
    out = jax.jit(plain_model.apply)({"params": plain_params}, x)
    assert float(jnp.max(jnp.abs(out - ref))) <= 1e-8


@pytest.mark.parametrize("body_bias", ["vector", "map"])
def test_residual_features_equal_plain_features_minus_offsets(body_bias):
  with jax.enable_x64(True):
    model = registry.build_model("memsr_teacher_s", scale=2, n_feats=8, n_resblocks=2,
                                 body_bias=body_bias)
    params = trained_like(registry.init_params(model, jax.random.key(5)), seed=5)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    spec = convert.teacher_spec(model)
    x = _image((1, 10, 13, 3), seed=6, dtype=jnp.float64)
    plain_model, plain_params = convert.convert(model, params, dtype=np.float64)
    sr_p, feats_p = plain_model.apply({"params": plain_params}, x, capture=True)
    sr_r, feats_r = convert.residual_plain_features(spec, params, x)
    assert float(jnp.max(jnp.abs(sr_p - sr_r))) <= 1e-8
    masks = convert.offset_masks(spec)
    assert len(feats_p) == len(feats_r) == len(masks) == 6
    for fp, fr, mask in zip(feats_p, feats_r, masks):
      fr = jnp.concatenate(fr, axis=-1)
      assert float(jnp.max(jnp.abs(fp - fr - 1000.0 * mask))) <= 1e-8


def test_upsampler_tail_is_rejected():
  model, params = _teacher("edsr_baseline", 2)
  with pytest.raises(ValueError, match="upsampler"):
    convert.convert(model, params)


def test_non_edsr_model_is_rejected():
  model = PlainNet(scale=2, widths=(3, 8, 8))
  with pytest.raises(ValueError, match="PlainNet"):
    convert.teacher_spec(model)


def test_missing_params_are_named():
  model, params = _teacher("memsr_teacher_s", 2, n_feats=4, n_resblocks=2)
  params = dict(params)
  del params["body_1"]
  with pytest.raises(ValueError, match="body_1"):
    convert.convert(model, params)


def test_bias_map_teacher_borders_matter():
  """The bias-map test cases are not vector biases in disguise: reading each map's centre tap as
  a vector bias changes the border pixels, and the conversion follows the map, not the centre."""
  with jax.enable_x64(True):
    model, params = _teacher("memsr_teacher_s", 2, seed=4, n_feats=8, n_resblocks=2,
                             body_bias="map")
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64),
                                    trained_like(params, seed=4))
    vec_model = registry.build_model("memsr_teacher_s", scale=2, n_feats=8, n_resblocks=2)

    def centre(tree):
      if isinstance(tree, dict):
        if "bias_map" in tree:
          return {"kernel": tree["kernel"], "bias": tree["bias_map"][1, 1, 0]}
        return {k: centre(v) for k, v in tree.items()}
      return tree
    x = _image((1, 10, 9, 3), seed=5, dtype=jnp.float64)
    ref = model.apply({"params": params}, x)
    approx = vec_model.apply({"params": centre(params)}, x)
    assert float(jnp.max(jnp.abs(ref - approx))) > 0.1
    plain_model, plain_params = convert.convert(model, params, dtype=np.float64)
    assert float(jnp.max(jnp.abs(plain_model.apply({"params": plain_params}, x) - ref))) <= 1e-8
