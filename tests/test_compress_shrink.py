"""The density → compact configuration rule: on synthetic densities, on hand-pruned params and on
the densities of a real L1-proximal prune run."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memsr_jax.image import bicubic
from memsr_jax.methods.compress import prox
from memsr_jax.methods.compress import shrink
from memsr_jax.models import registry
from memsr_jax.train import losses
from memsr_jax.utils import pytrees


def _edsr_stats(n_blocks, width, block_density, other_density=1.0):
  size = 9 * width * width
  stats = {"head/kernel": (27 * width, 27 * width)}
  for b in range(n_blocks):
    for l in (1, 2):
      stats[f"body_{b}/conv{l}/kernel"] = (int(round(block_density[b] * size)), size)
  stats["body_conv/kernel"] = (int(other_density * size), size)
  return stats


def test_edsr_baseline_to_paper_mini_shape():
  # Half the blocks dead, the rest at 1/16 density: 64·sqrt(1/16) = 16 channels, 8 blocks.
  dens = [1 / 16] * 8 + [0.01] * 8
  res = shrink.shrink_rule(_edsr_stats(16, 64, dens), "EDSR", 64, channel_multiple=4)
  assert (res.n_channels, res.n_blocks, res.n_layers) == (16, 8, 2)
  assert res.model_kwargs == {"n_feats": 16, "n_resblocks": 8}
  assert res.kept_density == pytest.approx(1 / 16, rel=1e-3)
  assert registry.model_kwargs("edsr_mini")["n_feats"] == 16


def test_dense_model_is_left_alone_and_channels_round_up():
  res = shrink.shrink_rule(_edsr_stats(4, 64, [1.0] * 4), "EDSR", 64, 4)
  assert (res.n_channels, res.n_blocks) == (64, 4)
  res = shrink.shrink_rule(_edsr_stats(4, 64, [0.3] * 4), "EDSR", 64, 4)
  assert res.n_channels == 36  # 64·sqrt(0.3) = 35.05 → next multiple of 4
  res = shrink.shrink_rule(_edsr_stats(4, 64, [0.0] * 4), "EDSR", 64, 4)
  assert (res.n_channels, res.n_blocks) == (4, 1)  # all dead: minimum model, not an error


def _swin_stats(depths, dim, unit_density):
  stats = {"conv_first/kernel": (27 * dim, 27 * dim)}
  for b, depth in enumerate(depths):
    for l in range(depth):
      for leaf, size in (("attn/qkv/kernel", 3 * dim * dim), ("attn/proj/kernel", dim * dim),
                         ("mlp/fc1/kernel", 2 * dim * dim), ("mlp/fc2/kernel", 2 * dim * dim)):
        d = unit_density(b, l)
        stats[f"layers_{b}/blocks_{l}/{leaf}"] = (int(round(d * size)), size)
    stats[f"layers_{b}/conv/kernel"] = (9 * dim * dim, 9 * dim * dim)
  return stats


def test_swinir_s_to_paper_mini_shape():
  # Last RSTB dead, the last two Swin layers of the others dead, survivors at 0.16:
  # 60·sqrt(0.16) = 24 → SwinIRmini (24, [4, 4, 4]).
  dens = lambda b, l: 0.0 if b == 3 or l >= 4 else 0.16
  res = shrink.shrink_rule(_swin_stats([6] * 4, 60, dens), "SwinIR", 60, channel_multiple=6)
  assert (res.n_channels, res.n_layers, res.n_blocks) == (24, 4, 3)
  assert res.model_kwargs == {"embed_dim": 24, "depths": (4, 4, 4)}
  assert res.block_density[3] == 0.0 and res.unit_density["0/5"] == 0.0


def test_shrink_model_on_real_pruned_params():
  """End to end on real EDSR params: zero out blocks/weights and read the rule's answer."""
  model = registry.build_model("edsr_baseline", scale=2, n_feats=16, n_resblocks=4)
  params = registry.init_params(model, jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)

  def prune(path, x):
    name = pytrees.path_str(path)
    if not name.endswith("kernel") or "body_" not in name:
      return x
    if "body_3" in name:
      return x * 0
    keep = rng.uniform(size=x.shape) < 0.25
    return x * keep

  params = jax.tree_util.tree_map_with_path(prune, params)
  mask = prox.select_leaves(params)
  res = shrink.shrink_model("edsr_baseline", {"n_feats": 16, "n_resblocks": 4}, params, mask)
  assert res.n_blocks == 3
  assert res.n_channels == 8  # 16·sqrt(≈0.25) = 8
  student = registry.build_model("edsr_baseline", scale=2, **res.model_kwargs)
  assert pytrees.count_params(registry.init_params(student, jax.random.PRNGKey(1))) > 0


def test_rule_on_the_densities_of_a_real_prune_run(sample_image):
  """A real run of the prune stage's optimizer (Charbonnier + SGD with the L1 prox step) on a
  photo, with λ large enough to sparsify in 60 steps; the rule reads the densities it produced."""
  kw = {"n_feats": 16, "n_resblocks": 4}
  model = registry.build_model("edsr_baseline", scale=2, **kw)
  params = registry.init_params(model, jax.random.PRNGKey(0))
  mask = prox.select_leaves(params)
  tx = prox.sgd_l1_prox(5e-3, l1=0.2, prune_mask=mask)  # ≈ 30 % density after 60 steps
  hr = jnp.asarray(sample_image[:128, :128], jnp.float32)[None]
  lr = jnp.asarray(bicubic.imresize_np(sample_image[:128, :128], scale=0.5), jnp.float32)[None]

  @jax.jit
  def step(p, s):
    loss = lambda p: losses.charbonnier(model.apply({"params": p}, lr) / 255, hr / 255, 1e-6)
    updates, s = tx.update(jax.grad(loss)(p), s, p)
    return optax.apply_updates(p, updates), s

  state = tx.init(params)
  for _ in range(60):
    params, state = step(params, state)
  dens = prox.densities(params, mask)
  assert 0.0 < dens["total"] < 0.9  # the run really pruned, and not everything
  res = shrink.shrink_model("edsr_baseline", kw, params, mask)
  # The rule's answer follows from the measured densities (steps 3 and 5 of shrink_rule).
  assert res.total_density == pytest.approx(dens["total"], abs=1e-6)
  alive = [b for b, d in res.block_density.items() if d >= 0.05]
  assert res.n_blocks == max(len(alive), 1)
  assert res.n_channels == min(16, max(4, 4 * math.ceil(16 * math.sqrt(res.kept_density) / 4)))
  assert res.n_channels < 16  # a real run's densities shrink the model
  student = registry.build_model("edsr_baseline", scale=2, **res.model_kwargs)
  out = student.apply({"params": registry.init_params(student, jax.random.PRNGKey(1))}, lr)
  assert out.shape == hr.shape


def test_unknown_family_and_mismatched_pattern():
  with pytest.raises(ValueError, match="compress.mode='fixed'"):
    shrink.family_of("plain_s")
  with pytest.raises(ValueError, match="block pattern"):
    shrink.shrink_rule({"x/kernel": (1, 2)}, "EDSR", 64, 4)
