"""MSSR pure functions: level maps, nested masks, exact magnitude pruning, SSD, ScalableSR."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.methods.mssr import expand
from memsr_jax.methods.mssr import imp
from memsr_jax.methods.mssr import masks
from memsr_jax.methods.mssr import scalable
from memsr_jax.methods.mssr import ssd
from memsr_jax.models.registry import build_model
from memsr_jax.models.registry import init_params
from memsr_jax.utils import numerics
from memsr_jax.utils import precision
from memsr_jax.utils import pytrees


def tiny_model(scale=2):
  return build_model("edsr_mini", scale=scale, n_feats=4, n_resblocks=3)


@pytest.fixture(scope="module")
def model_params():
  m = tiny_model()
  return m, init_params(m, jax.random.PRNGKey(0), (1, 8, 8, 3))


def prune_all(params_per_level, schedule):
  """IMP bookkeeping only: level k pruned from params_per_level[k-1]; returns level maps."""
  lm = masks.init_level_map(params_per_level[0])
  maps = [lm]
  for k, s in enumerate(schedule, 1):
    lm = imp.prune_round(params_per_level[k - 1], lm, k, s)
    maps.append(lm)
  return maps


def random_like(params, seed):
  rng = np.random.default_rng(seed)  # NumPy: no per-leaf device dispatch in this hot helper
  return jax.tree_util.tree_map(
      lambda l: rng.standard_normal(l.shape).astype(np.float32), params)


def test_default_selection_is_body_kernels(model_params):
  _, p = model_params
  flags = masks.prunable_tree(p)
  flat = {pytrees.path_str(k): v for k, v in jax.tree_util.tree_flatten_with_path(flags)[0]}
  assert {k for k, v in flat.items() if v} == {
      "body_0/conv1/kernel", "body_0/conv2/kernel", "body_1/conv1/kernel", "body_1/conv2/kernel",
      "body_2/conv1/kernel", "body_2/conv2/kernel", "body_conv/kernel"}
  with pytest.raises(ValueError, match="matches no parameter"):
    masks.prunable_tree(p, r"^nothing$")


def test_masks_nested_and_counts_exact(model_params):
  _, p = model_params
  schedule = masks.sparsity_schedule(0.2, 13)
  assert schedule[-1] == pytest.approx(1 - 0.8 ** 13)
  # Different (retrained) weights every round, as in IMP.
  per_level = [random_like(p, s) for s in range(len(schedule) + 1)]
  maps = prune_all(per_level, schedule)
  final = maps[-1]
  n = masks.count_prunable(final)
  stats = masks.level_stats(final)
  assert len(stats) == 14
  for k, s in enumerate([0.0] + schedule):
    assert stats[k]["kept"] == masks.keep_count(n, s)
    assert abs(stats[k]["kept"] - n * (1 - s)) <= 1.0  # sparsity exact to ±1 weight
  prev = None
  for k in range(14):
    m = masks.mask_at_level(final, k)
    if prev is not None:  # M_{k-1} ⊇ M_k on every leaf
      for a, b in zip(jax.tree_util.tree_leaves(prev), jax.tree_util.tree_leaves(m)):
        assert not np.any(np.asarray(b) & ~np.asarray(a))
    prev = m
    # The final level map reproduces the mask saved when level k was created.
    for a, b in zip(jax.tree_util.tree_leaves(masks.mask_at_level(maps[k], k)),
                    jax.tree_util.tree_leaves(m)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # Dense leaves are in every mask.
  assert np.all(np.asarray(masks.mask_at_level(final, 13)["head"]["kernel"]))
  assert np.all(np.asarray(masks.mask_at_level(final, 13)["body_0"]["conv1"]["bias"]))


def test_pruning_keeps_largest_and_breaks_ties_by_position(model_params):
  _, p = model_params
  lm = masks.init_level_map(p)
  n = masks.count_prunable(lm)
  ones = jax.tree_util.tree_map(jnp.ones_like, p)  # every magnitude tied
  lm1 = masks.prune_to_level(ones, lm, 1, n // 2)
  kept = np.concatenate([np.asarray(l).ravel() >= 1 for l in jax.tree_util.tree_leaves(lm1)
                         if masks.is_prunable_leaf(l)])
  assert kept.sum() == n // 2 and kept[:n // 2].all()  # the first positions win the tie
  assert masks.level_stats(masks.prune_to_level(ones, lm, 1, n // 2)) == masks.level_stats(lm1)
  # Magnitude order: surviving |w| all >= pruned |w|.
  r = random_like(p, 3)
  lm1 = masks.prune_to_level(r, lm, 1, n // 3)
  kept_mag, pruned_mag = [], []
  for w, l in zip(jax.tree_util.tree_leaves(r), jax.tree_util.tree_leaves(lm1)):
    if masks.is_prunable_leaf(l):
      kept_mag.append(np.abs(np.asarray(w))[np.asarray(l) >= 1])
      pruned_mag.append(np.abs(np.asarray(w))[np.asarray(l) < 1])
  assert np.concatenate(kept_mag).min() >= np.concatenate(pruned_mag).max()


def test_pruning_errors(model_params):
  _, p = model_params
  lm = masks.init_level_map(p)
  with pytest.raises(ValueError, match="can only prune to level 1"):
    masks.prune_to_level(p, lm, 2, 10)
  with pytest.raises(ValueError, match="cannot keep"):
    masks.prune_to_level(p, lm, 1, masks.count_prunable(lm) + 1)
  with pytest.raises(ValueError, match="increase strictly"):
    masks.sparsity_schedule(sparsities=[0.5, 0.4])


def test_rewind_masks_and_level_lookup(model_params):
  _, p = model_params
  maps = prune_all([random_like(p, s) for s in range(3)], [0.5, 0.75])
  rewind_state = random_like(p, 9)
  r = imp.rewind(rewind_state, maps[-1], 2)
  for w, l, w0 in zip(jax.tree_util.tree_leaves(r), jax.tree_util.tree_leaves(maps[-1]),
                      jax.tree_util.tree_leaves(rewind_state)):
    w, l, w0 = map(np.asarray, (w, l, w0))
    assert np.all(w[l < 2] == 0) and np.array_equal(w[l >= 2], w0[l >= 2])
  assert masks.level_for_sparsity(maps[-1], 0.7) == 2
  assert masks.level_for_sparsity(maps[-1], 0.0) == 0
  with pytest.raises(ValueError, match="levels 0..2"):
    masks.check_level(maps[-1], 3)


def test_ssd_hybrid_matches_encode_blocks_decode(model_params):
  m, p = model_params
  teacher = random_like(p, 1)
  teacher = jax.tree_util.tree_map(lambda x: 0.3 * x, teacher)
  x = jax.random.uniform(jax.random.PRNGKey(2), (1, 8, 8, 3)) * 255
  for d in range(4):
    hyb = m.apply({"params": ssd.hybrid_params(p, teacher, jnp.int32(d))}, x)
    h0 = m.apply({"params": p}, x, method=m.encode)
    h = m.apply({"params": p}, h0, 0, d, method=m.run_blocks)
    h = m.apply({"params": teacher}, h, d, 3, method=m.run_blocks)
    ref = m.apply({"params": teacher}, h, h0, method=m.decode)
    np.testing.assert_allclose(hyb, ref, rtol=1e-5, atol=1e-3)
  # Gradients reach only student blocks below the depth (and the student head).
  def loss(s):
    return jnp.mean(m.apply({"params": ssd.hybrid_params(s, teacher, jnp.int32(1))}, x))
  g = jax.grad(loss)(p)
  assert float(jnp.abs(g["body_0"]["conv1"]["kernel"]).sum()) > 0
  assert float(jnp.abs(g["head"]["kernel"]).sum()) > 0
  for k in ("body_1", "body_2", "body_conv", "tail_conv"):
    assert all(float(jnp.abs(l).sum()) == 0 for l in jax.tree_util.tree_leaves(g[k]))
  assert ssd.depth_choices(3) == (1, 2)
  with pytest.raises(ValueError, match="SSD depths"):
    ssd.depth_choices(3, [5])
  loss_val, depth = ssd.ssd_loss(m, p, teacher, x, x, jax.random.PRNGKey(0), (1, 2), "teacher")
  assert int(depth) in (1, 2) and np.isfinite(float(loss_val))


def test_expand_start_and_frozen_check(model_params):
  _, p = model_params
  maps = prune_all([random_like(p, s) for s in range(3)], [0.5, 0.75])
  lm = maps[-1]
  small = masks.params_at_level(random_like(p, 5), lm, 2)
  level1 = random_like(p, 6)
  merged = expand.start_expand(small, level1, lm, 1)
  trainable = expand.restored_mask(lm, 1)
  for a, b, c, l in zip(*(jax.tree_util.tree_leaves(t) for t in (merged, small, level1, lm))):
    a, b, c, l = map(np.asarray, (a, b, c, l))
    np.testing.assert_array_equal(a[l == 1], c[l == 1])
    np.testing.assert_array_equal(a[l != 1], b[l != 1])
  assert expand.frozen_changes(merged, merged, trainable) == {}
  bumped = jax.tree_util.tree_map(lambda w, t: jnp.where(t, w + 1, w), merged, trainable)
  assert expand.frozen_changes(merged, bumped, trainable) == {}
  bumped = dict(bumped, head={"kernel": bumped["head"]["kernel"] * 1.0000001,
                              "bias": bumped["head"]["bias"]})
  assert "head/kernel" in expand.frozen_changes(merged, bumped, trainable)


def test_scalable_switches_levels_in_memory(model_params):
  m, p = model_params
  maps = prune_all([random_like(p, s) for s in range(3)], [0.5, 0.75])
  sr = scalable.ScalableSR(m, p, maps[-1])
  x = jax.random.uniform(jax.random.PRNGKey(2), (1, 8, 8, 3)) * 255
  assert sr.num_levels == 2
  for k in range(3):
    pk = masks.params_at_level(p, maps[-1], k)
    with precision.exact():  # the policy ScalableSR runs under (else TF32 on GPUs, ~1e-3 rel.)
      want = m.apply({"params": pk}, x)
    # Jitted (level traced) vs eager: fp32 sums in different orders, within the rounding bound.
    numerics.assert_within_bound(sr.at_level(k)(x), want, numerics.rounding_tolerance(m, pk, x),
                                 f"level {k}")
  assert sr.at_sparsity(0.74).level == 2
  assert not np.allclose(sr.at_level(0)(x), sr.at_level(2)(x))
  assert sr.at_level(2).stats()["sparsity"] == pytest.approx(0.75, abs=1e-3)
