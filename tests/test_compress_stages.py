"""The compression stages end to end on a tiny model (prune → compress → distill), and its tasks."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.methods.compress import config as compress_config
from memsr_jax.methods.compress import lap_loss
from memsr_jax.methods.compress import stages
from memsr_jax.methods.compress import tasks
from memsr_jax.models import registry
from memsr_jax.utils import pytrees


def _tiny_config(stages="prune,compress,distill"):
  c = compress_config.compress_config("edsr_baseline", "edsr_mini", scale=2, prune_steps=3,
                                      distill_steps=3, lr_patch=12, batch_size=2)
  c.model.kwargs = {"n_feats": 8, "n_resblocks": 2}
  c.data.dataset = "synthetic"
  c.val.dataset = ""
  c.log_every = 1
  c.ckpt_every = 100
  c.progress = False
  c.tensorboard = False
  c.async_ckpt = False
  c.compress.stages = stages
  c.compress.prune.l1 = 5.0  # huge λ (threshold 0.025 a step) so that 3 steps visibly prune
  c.compress.shrink.mode = "rule"
  c.compress.distill.teacher.source = "pruned"
  return c


@pytest.mark.slow
def test_tiny_stages_end_to_end_and_resume(tmp_path, capsys):
  c = _tiny_config()
  summary = stages.run(c, tmp_path)
  dens = json.loads((tmp_path / "prune" / "densities.json").read_text())
  assert 0.0 < dens["density"]["total"] < 1.0
  assert "body_0/conv1/kernel" in dens["density"]
  rows = [json.loads(l) for l in (tmp_path / "prune" / "metrics.jsonl").read_text().splitlines()]
  logged = [r for r in rows if "train/density/total" in r]
  assert len(logged) == 3 and logged[-1]["train/density/total"] < 1.0
  result = json.loads((tmp_path / "compress" / "result.json").read_text())
  assert result["mode"] == "rule" and result["student"] == "edsr_baseline"
  kw = result["student_kwargs"]
  assert kw["n_feats"] <= 8 and kw["n_resblocks"] <= 2
  assert summary["student_params"] == result["student_params"]
  # The distilled student is a loadable deployable model of the chosen size.
  from memsr_jax import checkpoints as ckpt_lib
  model, params, meta = ckpt_lib.load_model_checkpoint(tmp_path / "distill")
  assert meta["model"] == "edsr_baseline" and pytrees.count_params(params) == result[
      "student_params"]
  drows = [json.loads(l) for l in (tmp_path / "distill" / "metrics.jsonl").read_text().splitlines()]
  assert all("train/lap" in r for r in drows if "train/loss" in r)
  # Rerunning resumes: every stage is found finished.
  capsys.readouterr()
  stages.run(c, tmp_path)
  out = "".join(capsys.readouterr())
  assert out.count("already finished") == 2 and "reusing" in out


def test_distill_loss_uses_frozen_teacher(rng):
  teacher = registry.build_model("edsr_baseline", scale=2, n_feats=4, n_resblocks=1)
  tparams = registry.init_params(teacher, jax.random.PRNGKey(1))
  kw = {"scale": 2, "n_feats": 4, "n_resblocks": 1}
  task = tasks.DistillTask("edsr_mini", kw, teacher, tparams, alpha=0.1)
  flat = tasks.DistillTask("edsr_mini", kw, teacher, tparams, alpha=0.1, level_weight_base=1.0)
  base = tasks.DistillTask("edsr_mini", kw)  # no teacher: plain L1
  params, extras = task.init(jax.random.PRNGKey(0))
  batch = {"lr": jnp.asarray(rng.uniform(0, 255, (2, 12, 12, 3)), jnp.float32),
           "hr": jnp.asarray(rng.uniform(0, 255, (2, 24, 24, 3)), jnp.float32)}
  # jit: eager dispatch of every small op costs more than one compile.
  loss_of = jax.jit(lambda tk, p, e: tk.loss_fn(p, e, batch, None, 0)[0], static_argnums=0)
  dis = jax.jit(lap_loss.distill_loss, static_argnums=(2, 3))
  s = task.model.apply({"params": params}, batch["lr"]) / 255
  t = teacher.apply({"params": tparams}, batch["lr"]) / 255
  l1 = jnp.mean(jnp.abs(s - batch["hr"] / 255))
  np.testing.assert_allclose(float(loss_of(task, params, extras)),
                             float(dis(s, t, 4, 2.0) + 0.1 * l1), rtol=1e-5)
  # Level weights 1, 1, 1, 1 instead of 2^i (compress.distill.level_weight_base).
  np.testing.assert_allclose(float(loss_of(flat, params, extras)),
                             float(dis(s, t, 4, 1.0) + 0.1 * l1), rtol=1e-5)
  # Gradients flow to the student only (the teacher is an extra, not differentiated).
  g = jax.jit(jax.grad(lambda p: task.loss_fn(p, extras, batch, None, 0)[0]))(params)
  assert float(sum(jnp.abs(x).sum() for x in jax.tree.leaves(g))) > 0
  bparams, bextras = base.init(jax.random.PRNGKey(0))
  assert bextras == {}
  np.testing.assert_allclose(float(loss_of(base, bparams, bextras)), float(l1), rtol=1e-5)


def test_config_errors(tmp_path):
  with pytest.raises(ValueError, match="out of order"):
    stages.parse_stages("distill,prune")
  with pytest.raises(ValueError, match="unknown or no stage"):
    stages.parse_stages("prune,squash")
  c = _tiny_config("distill")
  c.compress.shrink.mode = "fixed"
  c.compress.distill.teacher.source = "original"
  with pytest.raises(ValueError, match="no teacher"):
    stages.run(c, tmp_path / "a")
  c = _tiny_config("compress")
  with pytest.raises(ValueError, match="run 'prune' first"):
    stages.run(c, tmp_path / "b")
  c = _tiny_config()
  c.compress.prune.optim.name = "adam"
  with pytest.raises(ValueError, match="sgd_l1_prox"):
    stages.run(c, tmp_path / "c")
