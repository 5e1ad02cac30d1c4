"""Memory budgets: parsing, tile choice, the too-small error, random params, cost counting."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.deploy import budget, cost, memory, tiling
from memsr_jax.models import registry


def _tiny_plain():
  model = registry.build_model("plain", scale=2, widths=(3, 4, 4), relu=None, tail_kernel=3)
  return model, memory.random_params(model)


def _tile_fn(model, params):
  fn = tiling.make_tile_fn(model, params, "masked")
  # The RSS growth across the first compile depends on what this test process compiled before;
  # fix it so the estimates are deterministic.
  fn.compile_rss = 5_000_000
  return fn


def test_parse_memory():
  assert budget.parse_memory("256MB") == 256_000_000
  assert budget.parse_memory("1.5 GB") == 1_500_000_000
  assert budget.parse_memory("512MiB") == 512 * 2 ** 20
  assert budget.parse_memory("1000") == 1000
  with pytest.raises(ValueError, match="cannot read memory size"):
    budget.parse_memory("lots")


def test_tile_grows_with_budget_and_fits():
  model, params = _tiny_plain()
  fn = _tile_fn(model, params)
  halo = 3
  small = budget.choose_tile(fn, halo, 300, 400, 20e6, True)
  large = budget.choose_tile(fn, halo, 300, 400, 120e6, True)
  assert small[0] < large[0]
  assert small[1] <= 20e6 * budget.HEADROOM and large[1] <= 120e6 * budget.HEADROOM
  assert small[0] % 8 == 0 or small[0] == budget.min_tile("masked", halo)


def test_budget_too_small_names_the_minimum():
  model, params = _tiny_plain()
  fn = _tile_fn(model, params)
  with pytest.raises(budget.BudgetTooSmall, match=r"pass --max_memory (\d+)MB or more") as e:
    budget.choose_tile(fn, 3, 300, 400, 1e6, True)
  minimum = int(e.value.args[0].split("--max_memory ")[1].split("MB")[0]) * 1e6
  tile, est = budget.choose_tile(fn, 3, 300, 400, minimum, True)  # the named minimum works
  assert tile >= budget.min_tile("masked", 3)


def test_random_params_match_init_shapes():
  model = registry.build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=1)
  p = memory.random_params(model, seed=1)
  ref = jax.eval_shape(lambda: registry.init_params(model, jax.random.key(0)))
  assert jax.tree_util.tree_structure(p) == jax.tree_util.tree_structure(ref)
  assert all(a.shape == b.shape for a, b in zip(jax.tree_util.tree_leaves(p),
                                                 jax.tree_util.tree_leaves(ref)))
  assert np.abs(p["head"]["bias"]).max() > 0  # non-zero biases, unlike the default init


def test_mult_adds_of_a_plain_net_match_the_formula():
  model, params = _tiny_plain()
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
  params = memory.random_params(model)
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
  params = memory.random_params(model)
  r = cost.plain_layerwise_peak(model, params, (1, 32, 32, 3))
  assert r["two_feature_maps_bytes"] == 2 * 32 * 32 * 16 * 4
  assert r["two_feature_maps_bytes"] <= r["layerwise_peak_bytes"] < 1.6 * r["two_feature_maps_bytes"]
