"""Stochastic self-distillation does what MSSR needs, not only something finite: the depth is drawn
uniformly from the configured choices, the loss is that depth's hybrid against a frozen
level-(k−1) target, and the gradient reaches only level-k weights (never the teacher, never a
pruned weight, never a block the sampled hybrid takes from the teacher)."""
import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.methods.mssr import imp
from memsr_jax.methods.mssr import masks
from memsr_jax.methods.mssr import ssd
from memsr_jax.methods.mssr import tasks
from memsr_jax.models.registry import build_model
from memsr_jax.models.registry import init_params

N_BLOCKS = 3


@pytest.fixture(scope="module")
def setup():
  model = build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=N_BLOCKS, res_scale=1.0)
  dense = init_params(model, jax.random.PRNGKey(0), (1, 8, 8, 3))
  rng = np.random.default_rng(1)
  dense = jax.tree_util.tree_map(lambda a: a + 0.05 * rng.standard_normal(a.shape), dense)
  lm = imp.prune_round(dense, masks.init_level_map(dense), 1, 0.5)  # level 1: half the body
  teacher = jax.device_get(imp.teacher(dense, lm, 0))  # level-0 (dense) network, frozen
  x = jax.random.uniform(jax.random.PRNGKey(2), (2, 8, 8, 3)) * 255
  hr = jax.random.uniform(jax.random.PRNGKey(3), (2, 16, 16, 3)) * 255
  return model, dense, lm, teacher, x, hr


def test_depth_is_uniform_over_the_choices():
  choices = (1, 2)
  draws = jax.vmap(lambda k: ssd.sample_depth(k, choices))(
      jax.random.split(jax.random.PRNGKey(0), 4000))
  counts = collections.Counter(np.asarray(draws).tolist())
  assert set(counts) == set(choices)
  for d in choices:  # 4000 fair draws: each within 5 σ (σ ≈ 32) of 2000
    assert abs(counts[d] - 2000) < 160, counts
  assert ssd.depth_choices(N_BLOCKS) == (1, 2)  # both networks contribute to every hybrid


@pytest.mark.parametrize("target", ["hr", "teacher"])
def test_loss_is_the_sampled_hybrid_against_the_frozen_target(setup, target):
  model, dense, lm, teacher, x, hr = setup
  student = masks.params_at_level(dense, lm, 1)
  for seed in range(4):
    loss, depth = ssd.ssd_loss(model, student, teacher, x, hr, jax.random.PRNGKey(seed), (1, 2),
                               target)
    d = int(depth)
    # Recompute by hand: student head + blocks < d, teacher blocks ≥ d, teacher body conv + tail.
    h0 = model.apply({"params": student}, x, method=model.encode)
    h = model.apply({"params": student}, h0, 0, d, method=model.run_blocks)
    h = model.apply({"params": teacher}, h, d, N_BLOCKS, method=model.run_blocks)
    out = model.apply({"params": teacher}, h, h0, method=model.decode)
    ref = hr if target == "hr" else model.apply({"params": teacher}, x)
    np.testing.assert_allclose(float(loss), float(jnp.mean(jnp.abs(out - ref))), rtol=1e-5)


def test_gradients_reach_only_level_k_weights_of_the_used_blocks(setup):
  model, dense, lm, teacher, x, hr = setup
  student = masks.params_at_level(dense, lm, 1)
  choices = (1,)  # depth 1: the hybrid uses the student's head and body_0 only

  def loss(s, t):
    return ssd.ssd_loss(model, s, t, x, hr, jax.random.PRNGKey(0), choices, "teacher")[0]

  g_student, g_teacher = jax.grad(loss, argnums=(0, 1))(student, teacher)
  assert all(float(jnp.abs(a).sum()) == 0 for a in jax.tree_util.tree_leaves(g_teacher))
  used = ("head", "body_0")
  for key, sub in g_student.items():
    total = sum(float(jnp.abs(a).sum()) for a in jax.tree_util.tree_leaves(sub))
    assert (total > 0) == (key in used), key


def test_level_task_never_moves_pruned_weights(setup):
  """Through the engine's task: pixel + SSD loss at level 1; pruned entries get zero gradient and
  the update mask freezes them, the rest of level 1 learns."""
  model, dense, lm, teacher, x, hr = setup
  task = tasks.LevelTask("round_01", model, "edsr_mini", {"scale": 2, "n_feats": 4,
                                                          "n_resblocks": N_BLOCKS},
                         level=1, params=jax.device_get(masks.params_at_level(dense, lm, 1)),
                         extras={"level_map": lm, "teacher": teacher}, ssd_weight=1.0)
  params, extras = task.init(jax.random.PRNGKey(0))
  batch = {"lr": x, "hr": hr}
  grads, metrics = jax.grad(lambda p: task.loss_fn(p, extras, batch, jax.random.PRNGKey(5), 0),
                            has_aux=True)(params)
  assert int(metrics["ssd_depth"]) in (1, 2) and float(metrics["ssd_loss"]) > 0
  live = masks.mask_at_level(lm, 1)
  update = task.update_mask(params, extras)
  n_live_with_grad = 0
  for g, m, u in zip(*(jax.tree_util.tree_leaves(t) for t in (grads, live, update))):
    g, m, u = np.asarray(g), np.broadcast_to(np.asarray(m), np.shape(g)), np.asarray(u)
    assert np.all(g[~m] == 0)  # pruned: no gradient
    assert np.array_equal(np.broadcast_to(u, np.shape(g)), m)  # and frozen by the engine
    n_live_with_grad += int(np.count_nonzero(g[m]))
  assert n_live_with_grad > 0


def test_pruned_sets_and_both_sparsities():
  """config.mssr.prunable by name: body convs, every kernel, every weight; level_stats reports the
  pruned-set and the whole-network sparsity, which differ unless everything is prunable."""
  model = build_model("edsr_baseline", scale=2)
  shapes = jax.eval_shape(lambda: init_params(model, jax.random.PRNGKey(0)))
  params = jax.tree_util.tree_map(lambda s: np.ones(s.shape, np.float32), shapes)
  total = sum(int(np.prod(s.shape)) for s in jax.tree_util.tree_leaves(shapes))
  sizes = {}
  for name in ("body", "kernels", "all"):
    lm = masks.init_level_map(params, name)
    sizes[name] = masks.count_prunable(lm)
    lm1 = imp.prune_round(params, lm, 1, 0.945)
    st = masks.level_stats(lm1)[1]
    assert st["total_params"] == total
    assert abs(st["sparsity"] - 0.945) < 1e-5
    assert st["network_sparsity"] == pytest.approx(1 - st["nonzero_params"] / total)
    if name == "all":
      assert st["network_sparsity"] == pytest.approx(st["sparsity"])
    else:
      assert st["network_sparsity"] < st["sparsity"]
    if name == "body":  # EDSR-baseline ×2 at the paper's 94.5 %: 83.9 % of the whole network
      assert round(st["network_sparsity"], 3) == 0.839, st
  assert sizes["body"] < sizes["kernels"] < sizes["all"] == total
  assert 0.88 < sizes["body"] / total < 0.89  # the body convs hold 88.8 % of the parameters
  assert masks.prunable_pattern("^head/kernel$") == "^head/kernel$"  # a regex passes through
