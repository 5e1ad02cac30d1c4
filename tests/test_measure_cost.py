"""The one multiply-add counter (jaxprs, scans included), XLA's cost analysis, the layer-wise
memory profile of plain nets, and random params."""
import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.measure import cost
from memsr_jax.models import registry


def test_conv_and_dot_counts():
  x = jax.ShapeDtypeStruct((2, 10, 12, 3), jnp.float32)
  k = jax.ShapeDtypeStruct((3, 3, 3, 5), jnp.float32)
  w = jax.ShapeDtypeStruct((5, 7), jnp.float32)

  def f(x, k, w):
    y = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.einsum("bhwc,cd->bhwd", jax.nn.relu(y), w) + 1.0

  r = cost.count_macs(f, x, k, w)
  assert r["conv_macs"] == 2 * 10 * 12 * 5 * (3 * 3 * 3)
  assert r["dot_macs"] == 2 * 10 * 12 * 7 * 5
  assert r["macs"] == r["conv_macs"] + r["dot_macs"]
  # Inside jit (a nested jaxpr) the count is the same.
  assert cost.count_macs(jax.jit(f), x, k, w) == r


def test_scan_bodies_count_once_per_iteration():
  x = jax.ShapeDtypeStruct((1, 6, 6, 4), jnp.float32)
  k = jax.ShapeDtypeStruct((3, 3, 4, 4), jnp.float32)

  def conv(h, k):
    return jax.lax.conv_general_dilated(h, k, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def scanned(x, k):
    return jax.lax.scan(lambda h, _: (conv(h, k), None), x, None, length=5)[0]

  assert cost.count_macs(scanned, x, k)["conv_macs"] == 5 * cost.count_macs(conv, x, k)["macs"]


def test_random_params_match_init_shapes():
  model = registry.build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=1)
  p = registry.random_params(model, seed=1)
  ref = jax.eval_shape(lambda: registry.init_params(model, jax.random.key(0)))
  assert jax.tree_util.tree_structure(p) == jax.tree_util.tree_structure(ref)
  assert all(a.shape == b.shape for a, b in zip(jax.tree_util.tree_leaves(p),
                                                 jax.tree_util.tree_leaves(ref)))
  assert np.abs(p["head"]["bias"]).max() > 0  # non-zero biases, unlike the default init


def test_mult_adds_of_a_plain_net_match_the_formula():
  model = registry.build_model("plain", scale=2, widths=(3, 4, 4), relu=None, tail_kernel=3)
  params = registry.random_params(model)
  h, w = 10, 12
  # conv 3→4, conv 4→4 (3×3), tail 4→12 (3×3): MACs = H·W·Σ 9·cin·cout.
  expected = h * w * 9 * (3 * 4 + 4 * 4 + 4 * 12)
  assert cost.model_macs(model, params, (1, h, w, 3)) == expected
  xc, _ = cost.xla_cost(lambda p, x: model.apply({"params": p}, x), params,
                        jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32))
  # XLA skips the zero padding at borders (a big share of a 10×12 image) and adds elementwise work.
  assert 1.6 * expected <= xc.flops < 2.5 * expected


def test_mult_adds_count_matmuls():
  model = registry.build_model("swinir_mini", scale=2, depths=(2,), num_heads=(2,), embed_dim=8)
  params = registry.random_params(model)
  macs = cost.model_macs(model, params, (1, 8, 8, 3))
  closed = jax.make_jaxpr(lambda p, x: model.apply({"params": p}, x))(
      params, jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32))
  assert macs > 0 and "dot_general" in str(closed)
  xc, _ = cost.xla_cost(lambda p, x: model.apply({"params": p}, x), params,
                        jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32))
  assert 0.5 * xc.flops < 2 * macs <= 1.2 * xc.flops


def test_plain_layerwise_peak_is_near_two_feature_maps():
  model = registry.build_model("plain", scale=2, widths=(3, 16, 16, 16), relu=None,
                               tail_kernel=1)
  params = registry.random_params(model)
  r = cost.plain_layerwise_peak(model, params, (1, 32, 32, 3))
  assert r["two_feature_maps_bytes"] == 2 * 32 * 32 * 16 * 4
  ideal = r["two_feature_maps_bytes"]
  assert ideal <= r["layerwise_peak_bytes"] < 1.6 * ideal
