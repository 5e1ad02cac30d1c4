"""Checkpoints: extras (bool masks, rewind states) across device counts, corrupt-step fallback,
deployable model checkpoints and clear mismatch errors."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.models import registry
from memsr_jax.train import state as state_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
_PYTHONPATH = os.pathsep.join([str(REPO), str(REPO / "tests")])  # tests/tiny_configs.py

# A task with a bool mask per kernel and a rewind copy of the params as extras (like MSSR's IMP),
# and helpers to pass pytrees between processes as {"a/b/c": array} npz files.
_TASK = r"""
import jax, jax.numpy as jnp, numpy as np
from memsr_jax.models import registry
from memsr_jax.train.task import Task
import tiny_configs

def flat_paths(tree):
  return {jax.tree_util.keystr(p, simple=True, separator="/"): np.asarray(v)
          for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}

def nest(flat, fn=lambda v: v):
  tree = {}
  for k, v in flat.items():
    *dirs, last = k.split("/")
    node = tree
    for d in dirs:
      node = node.setdefault(d, {})
    node[last] = fn(v)
  return tree

class MaskedTask(Task):
  name = "masked"
  def __init__(self):
    self.model = registry.build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=1)
  def init(self, rng):
    params = registry.init_params(self.model, rng)
    r = np.random.default_rng(1)
    masks = jax.tree.map(lambda p: r.random(p.shape) < 0.5, params)
    rewind = jax.tree.map(lambda p: np.asarray(p) * 0.5, params)
    return params, {"masks": masks, "rewind": rewind}
  def loss_fn(self, params, extras, batch, rng, step):
    sr = self.model.apply({"params": params}, batch["lr"])
    return jnp.mean(jnp.abs(sr - batch["hr"])), {}
  def predict(self, params, extras, lr):
    return self.model.apply({"params": params}, lr)
  def update_mask(self, params, extras):
    return extras["masks"]
  def post_update(self, params, extras):
    return jax.tree.map(lambda p, m: p * m, params, extras["masks"])
  def export(self, params, extras):
    return "edsr_mini", {"scale": 2, "n_feats": 4, "n_resblocks": 1}, params
"""

_SCRIPT = _TASK + r"""
import json, sys
from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.train import config_lib, loop, sharding
out, saved_on_one = sys.argv[1], sys.argv[2]
repl = sharding.replicated(sharding.make_mesh())
# 1) Restore what the 1-device test process saved onto this 4-device mesh.
ref = {item: dict(np.load(f"{saved_on_one}/{item}.npz")) for item in ("masks", "rewind")}
abstract = {item: nest(f, lambda v: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=repl))
            for item, f in ref.items()}
ck = ckpt_lib.TrainCheckpointer(saved_on_one)
_, extras, _ = ck.restore_step(ck.latest_step(), None, abstract)
restored = {item: flat_paths(extras[item]) for item in ref}
n_dev = {len(x.sharding.device_set) for item in ref for x in jax.tree.leaves(extras[item])}
restored_ok = n_dev == {4} and all(
    restored[item][k].dtype == v.dtype and np.array_equal(restored[item][k], v)
    for item in ref for k, v in ref[item].items())
# 2) Train with masks on 4 devices and save; the test restores it on 1 device.
cfg = tiny_configs.tiny_config()
cfg.total_steps = 2
params, extras = loop.train(cfg, f"{out}/run", MaskedTask())
for item in ("masks", "rewind"):
  np.savez(f"{out}/saved_{item}.npz", **flat_paths(extras[item]))
np.savez(f"{out}/saved_params.npz", **flat_paths(params))
json.dump({"restored_ok": bool(restored_ok), "devices": jax.device_count()},
          open(f"{out}/result.json", "w"))
"""


@pytest.mark.slow
def test_masks_and_rewind_restore_exactly_across_device_counts(tmp_path):
  ns = {}
  exec(_TASK, ns)  # the task source the subprocesses run too
  task = ns["MaskedTask"]()
  params, extras = task.init(jax.random.key(0))
  st = state_lib.create_train_state(params, optax.adam(1e-3))
  one = tmp_path / "one"
  ck = ckpt_lib.TrainCheckpointer(one, async_save=False)
  ck.save(1, st, extras, {"note": "saved on 1 device"}, params)
  ck.close()
  for item in ("masks", "rewind"):
    np.savez(one / f"{item}.npz", **ns["flat_paths"](extras[item]))
  env = dict(os.environ, PYTHONPATH=_PYTHONPATH,
             XLA_FLAGS="--xla_force_host_platform_device_count=4")
  proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path), str(one)], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert json.loads((tmp_path / "result.json").read_text()) == {"restored_ok": True,
                                                                "devices": 4}

  # Saved on 4 devices → restored here on 1: bit-exact, bool masks still bool.
  saved = {item: dict(np.load(tmp_path / f"saved_{item}.npz")) for item in ("masks", "rewind")}
  abstract = {item: ns["nest"](f, lambda v: jax.ShapeDtypeStruct(v.shape, v.dtype))
              for item, f in saved.items()}
  ck = ckpt_lib.TrainCheckpointer(tmp_path / "run", read_only=True)
  assert ck.latest_step() == 2
  _, restored, meta = ck.restore_step(2, None, abstract)
  assert meta["extras_keys"] == ["masks", "rewind"]
  for item, flat in saved.items():
    got = ns["flat_paths"](restored[item])
    for k, v in flat.items():
      assert got[k].dtype == v.dtype, (item, k)
      np.testing.assert_array_equal(got[k], v, err_msg=f"{item}/{k}")
  assert all(v.dtype == np.bool_ for v in saved["masks"].values())
  # The masks froze the masked-out weights and post_update kept them at exactly zero.
  trained = dict(np.load(tmp_path / "saved_params.npz"))
  for k, v in trained.items():
    assert np.all(v[~saved["masks"][k]] == 0), k
    assert np.any(v[saved["masks"][k]] != 0), k


def _tiny_state():
  model = registry.build_model("edsr_mini", scale=2, n_feats=4, n_resblocks=1)
  params = registry.init_params(model, jax.random.key(0))
  return model, params, state_lib.create_train_state(params, optax.adam(1e-3))


def test_corrupt_latest_falls_back_to_previous(tmp_path, capsys):
  _, params, st = _tiny_state()
  ck = ckpt_lib.TrainCheckpointer(tmp_path, async_save=False)
  extras = {"masks": jax.tree.map(lambda p: np.ones(p.shape, bool), params)}
  ck.save(1, st, extras, {}, params)
  st2 = st.replace(step=jnp.int32(2), params=jax.tree.map(lambda p: p + 1, params))
  ck.save(2, st2, extras, {}, params)
  ck.close()
  # Damage step 2: truncate every data file of its state item.
  damaged = 0
  for f in (tmp_path / "checkpoints" / "2" / "state").rglob("*"):
    if f.is_file() and f.name not in ("commit_success.txt",):
      f.write_bytes(b"garbage")
      damaged += 1
  assert damaged
  ck = ckpt_lib.TrainCheckpointer(tmp_path, async_save=False)
  abstract_extras = {"masks": jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, bool), params)}
  restored_state, _, meta = ck.restore_latest(ckpt_lib.abstract_tree(st), abstract_extras)
  assert meta["step"] == 1 and int(restored_state.step) == 0
  jax.tree.map(np.testing.assert_array_equal, restored_state.params, params)
  err = capsys.readouterr().err  # status lines go to stderr
  assert "step 2" in err and "falling back to the previous one" in err
  assert ck.all_steps() == [1]
  assert list((tmp_path / ckpt_lib.CORRUPT_DIR).iterdir())


def test_mismatched_state_names_the_leaf(tmp_path):
  _, params, st = _tiny_state()
  ck = ckpt_lib.TrainCheckpointer(tmp_path, async_save=False)
  ck.save(1, st, {}, {}, params)
  ck.close()
  model = registry.build_model("edsr_mini", scale=2, n_feats=8, n_resblocks=1)
  other = state_lib.create_train_state(registry.init_params(model, jax.random.key(0)),
                                       optax.adam(1e-3))
  ck = ckpt_lib.TrainCheckpointer(tmp_path)
  with pytest.raises(ckpt_lib.CheckpointMismatchError, match=r"leaf state/params/\S+ has shape"):
    ck.restore_latest(ckpt_lib.abstract_tree(other), {})
  assert ck.all_steps() == [1]  # a mismatch is not corruption: nothing was set aside


def test_model_checkpoint_roundtrip_and_workdir_best(tmp_path):
  model, params, st = _tiny_state()
  path = ckpt_lib.save_model_checkpoint(tmp_path / "m", "edsr_mini",
                                        {"scale": 2, "n_feats": 4, "n_resblocks": 1}, params,
                                        {"method": "test"})
  m2, p2, meta = ckpt_lib.load_model_checkpoint(path)
  assert meta["model"] == "edsr_mini" and meta["scale"] == 2 and meta["method"] == "test"
  jax.tree.map(np.testing.assert_array_equal, p2, params)
  x = jnp.ones((1, 8, 8, 3)) * 100
  np.testing.assert_array_equal(m2.apply({"params": p2}, x), model.apply({"params": params}, x))
  # A workdir: the export of the best-PSNR step wins over the latest one.
  ck = ckpt_lib.TrainCheckpointer(tmp_path / "w", async_save=False, keep=1)
  kw = {"model": "edsr_mini", "model_kwargs": {"scale": 2, "n_feats": 4, "n_resblocks": 1}}
  best = jax.tree.map(lambda p: p + 1, params)
  ck.save(1, st, {}, kw, best, val_psnr=30.0)
  ck.save(2, st, {}, kw, params, val_psnr=20.0)
  ck.save(3, st, {}, kw, params)
  ck.close()
  assert ckpt_lib.TrainCheckpointer(tmp_path / "w").all_steps() == [1, 3]  # last 1 + best
  _, p3, meta3 = ckpt_lib.load_model_checkpoint(tmp_path / "w")
  assert meta3["step"] == 1
  jax.tree.map(np.testing.assert_array_equal, p3, best)
  # Wrong architecture in the metadata → an error naming the leaf.
  ckpt_lib.save_model_checkpoint(tmp_path / "bad", "edsr_mini",
                                 {"scale": 2, "n_feats": 8, "n_resblocks": 1}, params)
  with pytest.raises(ckpt_lib.CheckpointMismatchError, match=r"leaf params/.* has shape"):
    ckpt_lib.load_model_checkpoint(tmp_path / "bad")
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    ckpt_lib.load_model_checkpoint(tmp_path / "missing")


def test_model_checkpoint_extra_items(tmp_path):
  _, params, _ = _tiny_state()
  kw = {"scale": 2, "n_feats": 4, "n_resblocks": 1}
  extra = {"head": {"kernel": np.arange(6, dtype=np.int8).reshape(2, 3)}}
  path = ckpt_lib.save_model_checkpoint(tmp_path / "m", "edsr_mini", kw, params,
                                        extra_items={"level_map": extra})
  got = ckpt_lib.load_model_item(path, "level_map")
  assert got["head"]["kernel"].dtype == np.int8
  np.testing.assert_array_equal(got["head"]["kernel"], extra["head"]["kernel"])
  assert ckpt_lib.load_model_item(path, "nothing") is None
  _, p2, meta = ckpt_lib.load_model_checkpoint(path)  # the model itself reads as before
  assert meta["extra_items"] == ["level_map"]
  jax.tree.map(np.testing.assert_array_equal, p2, params)
  with pytest.raises(ValueError, match="reserved"):
    ckpt_lib.save_model_checkpoint(tmp_path / "m2", "edsr_mini", kw, params,
                                   extra_items={"params": extra})


def test_relative_workdir_saves_and_restores(tmp_path, monkeypatch):
  """`--workdir runs/x` as typed: Orbax needs absolute paths, the checkpointer resolves them."""
  _, params, st = _tiny_state()
  monkeypatch.chdir(tmp_path)
  ck = ckpt_lib.TrainCheckpointer("runs/rel")  # async, as in training
  ck.save(1, st, {}, {}, params)
  ck.wait()
  ck.close()
  assert (tmp_path / "runs" / "rel" / ckpt_lib.CKPT_DIR / "1").is_dir()
  ck = ckpt_lib.TrainCheckpointer("runs/rel", read_only=True)
  restored, _, _ = ck.restore_latest(ckpt_lib.abstract_tree(st), {})
  jax.tree.map(np.testing.assert_array_equal, restored.params, st.params)


def test_restore_train_state_reads_the_latest_raw_state(tmp_path):
  """The raw train state of a workdir (not the export), from its latest step unless told."""
  _, params, st = _tiny_state()
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    ckpt_lib.restore_train_state(tmp_path, jax.eval_shape(lambda: st))
  ck = ckpt_lib.TrainCheckpointer(tmp_path, async_save=False)
  later = st.replace(step=st.step + 1, params=jax.tree.map(lambda p: p * 0.0, st.params))
  ck.save(1, st, {}, {}, params)
  ck.save(2, later, {}, {}, params)
  ck.close()
  restored, meta = ckpt_lib.restore_train_state(tmp_path, jax.eval_shape(lambda: st))
  assert meta["step"] == 2 and int(restored.step) == int(later.step)
  jax.tree.map(np.testing.assert_array_equal, restored.params, later.params)
  first, _ = ckpt_lib.restore_train_state(tmp_path, jax.eval_shape(lambda: st), step=1)
  jax.tree.map(np.testing.assert_array_equal, first.params, st.params)


def test_eval_of_a_workdir_keeps_orbax_internals_off_stderr(tmp_path):
  """Orbax logs its handlers, throughput and the CheckpointManager's repr at INFO: dozens of long
  lines per restore. eval.py's stderr shows our lines only."""
  from PIL import Image
  _, params, st = _tiny_state()
  ck = ckpt_lib.TrainCheckpointer(tmp_path / "w", async_save=False)
  kw = {"model": "edsr_mini", "model_kwargs": {"scale": 2, "n_feats": 4, "n_resblocks": 1}}
  ck.save(1, st, {}, kw, params)
  ck.close()
  (tmp_path / "imgs").mkdir()
  Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / "imgs" / "a.png")
  p = subprocess.run([sys.executable, "eval.py", f"--config.model.checkpoint={tmp_path / 'w'}",
                      f"--config.datasets={tmp_path / 'imgs'}", "--config.scales=2",
                      f"--config.output_dir={tmp_path / 'out'}"], cwd=REPO, capture_output=True,
                     text=True, env=dict(os.environ, PYTHONPATH=_PYTHONPATH), timeout=300)
  assert p.returncode == 0, p.stderr[-3000:]
  assert "CheckpointManager" not in p.stderr and "orbax" not in p.stderr.lower(), p.stderr[:3000]
  assert max(len(line) for line in p.stderr.splitlines()) < 300
