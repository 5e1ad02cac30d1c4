"""MSSR with the training engine: masked Adam, frozen backward stage, checkpoints, resume."""
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tiny_configs

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.methods.mssr import config as mssr_config
from memsr_jax.methods.mssr import expand
from memsr_jax.methods.mssr import imp
from memsr_jax.methods.mssr import masks
from memsr_jax.methods.mssr import scalable
from memsr_jax.methods.mssr import stages
from memsr_jax.methods.mssr import tasks
from memsr_jax.models.registry import build_model
from memsr_jax.models.registry import init_params
from memsr_jax.train import loop
from memsr_jax.train import state as state_lib

KW = dict(scale=2, n_feats=4, n_resblocks=2)


def tiny_setup():
  m = build_model("edsr_mini", **KW)
  p = jax.device_get(init_params(m, jax.random.PRNGKey(0), (1, 8, 8, 3)))
  lm = masks.init_level_map(p)
  lm = imp.prune_round(p, lm, 1, 0.5)
  lm = imp.prune_round(p, lm, 2, 0.75)
  return m, p, lm


def batches(n, seed=0):
  rng = np.random.default_rng(seed)
  for _ in range(n):
    hr = rng.integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    yield {"lr": hr[:, ::2, ::2], "hr": hr}


def run_steps(task, n, lr=1e-2):
  tx = optax.adam(lr)
  params, extras = task.init(None)
  state = state_lib.create_train_state(params, tx)
  step = jax.jit(state_lib.make_train_step(task, tx, optax.constant_schedule(lr)))
  for b in batches(n):
    state, _ = step(state, extras, b, jax.random.PRNGKey(1))
  return state


def test_pruned_weights_stay_zero_through_masked_adam():
  m, p, lm = tiny_setup()
  rewind_state = jax.tree_util.tree_map(lambda x: x + 0.01, p)  # no exact zeros anywhere
  teacher = jax.device_get(imp.teacher(p, lm, 1))
  task = tasks.LevelTask("round_02", m, "edsr_mini", KW, 2, jax.device_get(imp.rewind(
      rewind_state, lm, 2)), {"level_map": lm, "rewind": rewind_state, "teacher": teacher},
      ssd_weight=1.0)
  state = run_steps(task, 5)
  mask = masks.mask_at_level(lm, 2)
  moved = 0
  for w, w0, mk in zip(jax.tree_util.tree_leaves(state.params),
                       jax.tree_util.tree_leaves(task.init(None)[0]),
                       jax.tree_util.tree_leaves(mask)):
    w, w0, mk = np.asarray(w), np.asarray(w0), np.asarray(mk)
    assert np.all(w[~mk] == 0.0)
    moved += int((w[mk] != w0[mk]).sum())
  assert moved > 0
  adam = state.opt_state[0]  # ScaleByAdamState: moments of pruned weights never drift
  for mu, nu, mk in zip(jax.tree_util.tree_leaves(adam.mu), jax.tree_util.tree_leaves(adam.nu),
                        jax.tree_util.tree_leaves(mask)):
    assert np.all(np.asarray(mu)[~np.asarray(mk)] == 0)
    assert np.all(np.asarray(nu)[~np.asarray(mk)] == 0)


def test_backward_stage_freezes_bit_for_bit():
  m, p, lm = tiny_setup()
  small = jax.device_get(masks.params_at_level(p, lm, 2))
  start = jax.device_get(expand.start_expand(small, jax.tree_util.tree_map(lambda x: -x, p), lm, 1))
  task = tasks.ExpandTask("expand_01", m, "edsr_mini", KW, 1, start, lm)
  state = run_steps(task, 4)
  trainable = expand.restored_mask(lm, 1)
  assert expand.frozen_changes(start, state.params, trainable) == {}
  changed = sum(int((np.asarray(a) != np.asarray(b))[np.asarray(t)].sum()) for a, b, t in zip(
      *(jax.tree_util.tree_leaves(x) for x in (start, state.params, trainable))))
  assert changed > 0
  # The level-2 sub-network of the result is exactly the small network.
  for a, b in zip(jax.tree_util.tree_leaves(masks.params_at_level(state.params, lm, 2)),
                  jax.tree_util.tree_leaves(small)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_checkpoint_round_trip_of_level_map_masks_rewind(tmp_path):
  m, p, lm = tiny_setup()
  rewind_state = jax.tree_util.tree_map(lambda x: x * 0.5, p)
  extras = {"level_map": lm, "mask": masks.mask_at_level(lm, 2), "rewind": rewind_state}
  tx = optax.adam(1e-3)
  state = state_lib.create_train_state(p, tx)
  ck = ckpt_lib.TrainCheckpointer(tmp_path, async_save=False)
  ck.save(3, state, extras, {"model": "edsr_mini", "model_kwargs": KW}, p)
  ck.wait()
  ck.close()
  ck = ckpt_lib.TrainCheckpointer(tmp_path, read_only=True)
  _, got, _ = ck.restore_step(3, None, jax.tree_util.tree_map(jnp.asarray, extras))
  ck.close()
  for k in extras:
    for a, b in zip(jax.tree_util.tree_leaves(extras[k]), jax.tree_util.tree_leaves(got[k])):
      assert np.asarray(a).dtype == np.asarray(b).dtype
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The scalable model checkpoint: one folder, every level.
  path = scalable.save_scalable(tmp_path / "model", "edsr_mini", KW, p, lm)
  sr, meta = scalable.load_scalable(path)
  assert meta["mssr"]["num_levels"] == 2
  for k in range(3):
    for a, b in zip(jax.tree_util.tree_leaves(masks.mask_at_level(lm, k)),
                    jax.tree_util.tree_leaves(masks.mask_at_level(sr.level_map, k))):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  x = jnp.full((1, 8, 8, 3), 100.0)
  np.testing.assert_array_equal(sr.at_level(2)(x), scalable.ScalableSR(m, p, lm, 2)(x))
  model, params, _ = ckpt_lib.load_model_checkpoint(path)  # eval.py's loader sees the dense model
  assert model.n_feats == 4


def test_rewind_state_is_saved_but_no_argument_of_the_step(tmp_path, monkeypatch):
  """The engine passes the step (and validation) only the extras they read; the checkpoint keeps
  every extra, the rewind state bit for bit."""
  m, p, lm = tiny_setup()
  rewind_state = jax.tree_util.tree_map(lambda x: x + 0.25, p)
  task = tasks.LevelTask("round_01", m, "edsr_mini", KW, 1, jax.device_get(imp.rewind(
      rewind_state, lm, 1)), {"level_map": lm, "rewind": rewind_state})
  passed, make = [], loop.make_step_fn

  def spying_make_step_fn(*args):
    step_fn, rng = make(*args)
    def step(state, extras, batch, key_data):
      passed.append(sorted(extras))
      lowered = step_fn.lower(state, extras, batch, key_data)
      passed.append(sorted(lowered.args_info[0][1]))  # the compiled step's extras argument
      return step_fn(state, extras, batch, key_data)
    return step, rng

  monkeypatch.setattr(loop, "make_step_fn", spying_make_step_fn)
  cfg = tiny_configs.tiny_config()
  cfg.model.kwargs.n_resblocks = 2
  cfg.total_steps = cfg.ckpt_every = 2
  loop.train(cfg, tmp_path, task)
  assert passed == [["level_map"]] * 4
  ck = ckpt_lib.TrainCheckpointer(tmp_path, read_only=True)
  _, got, meta = ck.restore_step(2, None, jax.tree_util.tree_map(jnp.asarray, task.init(None)[1]))
  ck.close()
  assert meta["extras_keys"] == ["level_map", "rewind"]
  for a, b in zip(*(jax.tree_util.tree_leaves(t) for t in (rewind_state, got["rewind"]))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def tiny_config():
  c = mssr_config.edsr_cpu(2)
  c.model.kwargs.n_feats = 4
  c.model.kwargs.n_resblocks = 2
  c.data.dataset = "synthetic"
  c.data.lr_patch = 8
  c.data.batch_size = 2
  c.val.dataset = ""
  c.mssr.eval_sets = ()
  c.mssr.rounds = 2
  c.mssr.dense_steps = 4
  c.mssr.rewind_step = 2
  c.mssr.round_steps = 4
  c.mssr.expand_steps = 2
  c.log_every = 2
  c.ckpt_every = 2
  c.keep_ckpts = 5
  c.async_ckpt = False
  return c


@pytest.mark.slow
def test_stages_nested_result_and_mid_round_resume(tmp_path):
  c = tiny_config()
  stages.run(c, tmp_path / "a")
  sr, _ = scalable.load_scalable(tmp_path / "a")
  lm = sr.level_map
  assert masks.num_levels(lm) == 2
  st = masks.level_stats(lm)
  assert [s["kept"] for s in st] == [masks.keep_count(st[0]["prunable"], s)
                                     for s in (0.0, 0.5, 0.75)]
  # Every round's saved level map agrees with the final one up to its level.
  for k in (1, 2):
    ck = ckpt_lib.TrainCheckpointer(tmp_path / "a" / f"round_{k:02d}", read_only=True)
    _, ex, _ = ck.restore_step(4, None, {"level_map": jax.tree_util.tree_map(jnp.asarray, lm),
                                         "rewind": jax.tree_util.tree_map(jnp.asarray, sr.params),
                                         "teacher": jax.tree_util.tree_map(jnp.asarray,
                                                                           sr.params)})
    ck.close()
    for a, b in zip(jax.tree_util.tree_leaves(masks.mask_at_level(ex["level_map"], k)),
                    jax.tree_util.tree_leaves(masks.mask_at_level(lm, k))):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # Interrupt mid-round: drop round_02's last checkpoint and everything after it, rerun.
  b = tmp_path / "b"
  shutil.copytree(tmp_path / "a", b)
  shutil.rmtree(b / "round_02" / "checkpoints" / "4")
  for d in ("expand_01", "expand_00", "model"):
    shutil.rmtree(b / d)
  stages.run(c, b)
  sr_b, _ = scalable.load_scalable(b)
  for x, y in zip(jax.tree_util.tree_leaves(sr.params), jax.tree_util.tree_leaves(sr_b.params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_config_errors():
  c = tiny_config()
  with c.unlocked():
    c.mssr.rewind_to = "start"
  with pytest.raises(ValueError, match="rewind_to"):
    stages.run(c, "/nonexistent/never_written")
