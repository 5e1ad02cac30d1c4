"""eval.py with MSSR checkpoints: pick a level / sparsity through the loader, sweep every level of
one checkpoint."""
import importlib.util
import json
import pathlib

import jax
import numpy as np
from PIL import Image
import pytest

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.evaluation import checks
from memsr_jax.inference.source import load_source
from memsr_jax.methods.mssr import imp
from memsr_jax.methods.mssr import masks
from memsr_jax.methods.mssr import scalable
from memsr_jax.models.registry import build_model
from memsr_jax.models.registry import init_params
from memsr_jax.utils import cli

REPO = pathlib.Path(__file__).resolve().parents[1]
KW = dict(scale=2, n_feats=4, n_resblocks=2)


def load_module(name):
  spec = importlib.util.spec_from_file_location(f"_mssr_test_{name}", REPO / f"{name}.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def eval_config(**model):
  cfg = load_module("configs/eval").get_config()
  for k, v in model.items():
    setattr(cfg.model, k, v)
  return cfg


@pytest.fixture(scope="module")
def mssr_ckpt(tmp_path_factory):
  m = build_model("edsr_mini", **KW)
  p = jax.device_get(init_params(m, jax.random.PRNGKey(0), (1, 8, 8, 3)))
  lm = masks.init_level_map(p)
  lm = imp.prune_round(p, lm, 1, 0.5)
  lm = imp.prune_round(p, lm, 2, 0.75)
  path = scalable.save_scalable(tmp_path_factory.mktemp("mssr") / "model", "edsr_mini", KW, p, lm)
  return path, p, lm


def test_select_level_and_sparsity(mssr_ckpt):
  path, p, lm = mssr_ckpt
  src = load_source(path, level=2)
  for a, b in zip(jax.tree_util.tree_leaves(src.params),
                  jax.tree_util.tree_leaves(masks.params_at_level(p, lm, 2))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert src.meta["level"]["level"] == 2
  assert load_source(path, sparsity=0.45).meta["level"]["level"] == 1
  full = load_source(path, level=-1)
  assert "level" not in full.meta
  for a, b in zip(jax.tree_util.tree_leaves(full.params), jax.tree_util.tree_leaves(p)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  with pytest.raises(ValueError, match="levels 0..2"):
    load_source(path, level=5)
  with pytest.raises(ValueError, match="both"):
    load_source(path, level=1, sparsity=0.5)


def test_level_on_a_single_size_checkpoint_is_an_error(tmp_path, mssr_ckpt):
  _, p, _ = mssr_ckpt
  path = ckpt_lib.save_model_checkpoint(tmp_path / "plain", "edsr_mini", KW, p)
  with pytest.raises(ValueError, match="holds no level map"):
    load_source(path, level=1)


@pytest.mark.slow
def test_sweep_levels_prints_every_level(tmp_path, mssr_ckpt, sample_image, capsys):
  from PIL import Image
  path, _, lm = mssr_ckpt
  data = tmp_path / "tiny"
  data.mkdir()
  for i in range(2):
    Image.fromarray(sample_image[40 * i:40 * i + 32, 100:132]).save(data / f"img{i}.png")
  from memsr_jax.tools import eval as ev
  cfg = eval_config(checkpoint=str(path))
  cfg.datasets = str(data)
  cfg.sweep_levels = True
  cfg.output_dir = str(tmp_path / "out")
  rows = ev.run(cfg)
  assert [r["level"] for r in rows] == [0, 1, 2]
  stats = masks.level_stats(lm)
  assert [r["nonzero_params"] for r in rows] == [s["nonzero_params"] for s in stats]
  assert [r["network_sparsity"] for r in rows] == [s["network_sparsity"] for s in stats]
  saved = json.loads((tmp_path / "out" / "levels.json").read_text())
  assert len(saved) == 3 and all(np.isfinite(r["results"][str(data)]["x2"]["psnr"]) for r in saved)
  out = capsys.readouterr().out
  assert "MSSR levels" in out and "pruned-set" in out and "network" in out


@pytest.mark.parametrize("use_mssr,settings,fragment", [
    (False, dict(sweep_levels=True), "config.sweep_levels needs a scalable (MSSR) checkpoint"),
    (False, dict(level=3), "config.model.level=3 needs a scalable (MSSR) checkpoint"),
    (True, dict(level=99), "config.model.level: level 99 does not exist"),
    (True, dict(sparsity=1.5), "config.model.sparsity must be in [0, 1)"),
    (True, dict(level=1, sparsity=0.5), "are both set"),
    (False, dict(checkpoint=None, name="imdn", level=1), "set config.model.checkpoint"),
])
def test_eval_level_options_are_checked_up_front(tmp_path, mssr_ckpt, sample_image, use_mssr,
                                                 settings, fragment):
  path, p, _ = mssr_ckpt
  if not use_mssr:
    path = ckpt_lib.save_model_checkpoint(tmp_path / "plain", "edsr_mini", KW, p)
  data = tmp_path / "tiny"
  data.mkdir()
  Image.fromarray(sample_image[:32, :32]).save(data / "img.png")
  cfg = eval_config(checkpoint=str(path))
  cfg.datasets, cfg.scales, cfg.output_dir = str(data), "2", str(tmp_path / "out")
  for k, v in settings.items():
    if k == "sweep_levels":
      cfg.sweep_levels = v
    else:
      setattr(cfg.model, k, v)
  with pytest.raises(cli.UserError) as e:
    checks.check(cfg)
  assert fragment in str(e.value) and "\n" not in str(e.value)
