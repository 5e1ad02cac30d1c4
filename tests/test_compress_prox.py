"""L1-proximal SGD: the soft-threshold step, its selection of leaves, and density bookkeeping."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memsr_jax.methods.compress import prox


def _params(rng):
  return {"conv": {"kernel": jnp.asarray(rng.normal(0, 0.01, (3, 3, 2, 4)), jnp.float32),
                   "bias": jnp.asarray(rng.normal(0, 0.01, (4,)), jnp.float32)}}


def test_step_is_sgd_then_soft_threshold(rng):
  params = _params(rng)
  grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(0, 1, p.shape), jnp.float32), params)
  lr, lam = 5e-3, 0.5  # large λ so that many weights hit zero in one step
  tx = prox.sgd_l1_prox(lr, lam, prune_mask=prox.select_leaves(params))
  updates, _ = tx.update(grads, tx.init(params), params)
  new = optax.apply_updates(params, updates)
  for name in ("kernel", "bias"):
    w = np.asarray(params["conv"][name], np.float64)
    z = w - lr * np.asarray(grads["conv"][name], np.float64)
    want = np.sign(z) * np.maximum(np.abs(z) - lr * lam, 0) if name == "kernel" else z
    np.testing.assert_allclose(np.asarray(new["conv"][name]), want, atol=1e-7)
  k = np.asarray(new["conv"]["kernel"])
  assert 0 < np.count_nonzero(k) < k.size
  # Thresholded weights are exactly zero, not merely small.
  z = np.asarray(params["conv"]["kernel"]) - lr * np.asarray(grads["conv"]["kernel"])
  assert np.all(k[np.abs(z) <= lr * lam * 0.999] == 0.0)
  assert np.count_nonzero(np.asarray(new["conv"]["bias"])) == 4  # bias not selected


def test_schedule_and_traced_mask_under_jit(rng):
  params = _params(rng)
  grads = jax.tree.map(jnp.zeros_like, params)
  sched = optax.piecewise_constant_schedule(1.0, {1: 0.0})  # lr 1 then 0
  mask = jax.tree.map(lambda _: jnp.asarray(True), params)  # array leaves: the jnp.where path
  tx = prox.sgd_l1_prox(sched, l1=0.01, prune_mask=mask)

  @jax.jit
  def step(p, s):
    u, s = tx.update(grads, s, p)
    return optax.apply_updates(p, u), s

  state = tx.init(params)
  p1, state = step(params, state)
  np.testing.assert_allclose(np.asarray(p1["conv"]["bias"]),
                             np.asarray(prox.soft_threshold(params["conv"]["bias"], 0.01)),
                             atol=1e-7)
  p2, state = step(p1, state)  # lr 0: no change
  np.testing.assert_array_equal(np.asarray(p2["conv"]["kernel"]), np.asarray(p1["conv"]["kernel"]))
  assert int(state.count) == 2


def test_needs_params():
  tx = prox.sgd_l1_prox(0.1)
  with pytest.raises(ValueError, match="needs params"):
    tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))


def test_select_leaves_and_densities():
  params = {"a": {"kernel": jnp.array([0.0, 1.0, 0.0, 2.0]), "bias": jnp.zeros(2)},
            "attn": {"relative_position_bias_table": jnp.zeros((9, 2)),
                     "qkv": {"kernel": jnp.ones((2, 3))}}}
  mask = prox.select_leaves(params)
  assert mask["a"]["kernel"] and mask["attn"]["qkv"]["kernel"]
  assert not mask["a"]["bias"] and not mask["attn"]["relative_position_bias_table"]
  d = prox.densities(params, mask)
  assert d["a/kernel"] == 0.5 and d["attn/qkv/kernel"] == 1.0
  assert d["total"] == pytest.approx((2 + 6) / (4 + 6))
  assert "a/bias" not in d
  with pytest.raises(ValueError, match="matches no parameter"):
    prox.select_leaves(params, include="nothing_like_this")


def test_l1_prox_drives_small_weights_to_zero_on_a_regression(rng):
  """Proximal gradient on least squares + λ‖w‖₁ finds the sparse solution (irrelevant w = 0)."""
  x = jnp.asarray(rng.normal(size=(256, 6)), jnp.float32)
  w_true = jnp.array([2.0, -1.5, 0.0, 0.0, 0.0, 0.0])
  y = x @ w_true
  params = {"kernel": jnp.asarray(rng.normal(size=6), jnp.float32)}
  tx = prox.sgd_l1_prox(0.05, l1=0.05)
  state = tx.init(params)
  loss = lambda p: 0.5 * jnp.mean((x @ p["kernel"] - y) ** 2)
  for _ in range(300):
    g = jax.grad(loss)(params)
    u, state = tx.update(g, state, params)
    params = optax.apply_updates(params, u)
  k = np.asarray(params["kernel"])
  np.testing.assert_array_equal(k[2:], 0.0)
  np.testing.assert_allclose(k[:2], [2.0, -1.5], atol=0.1)
