"""MemSR stages end to end on the quick config (teacher → convert → init → student)."""
import importlib.util
import json
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax import import_weights
from memsr_jax.methods.memsr import config as memsr_config
from memsr_jax.methods.memsr import stages

REPO = pathlib.Path(__file__).resolve().parents[1]


def _config(name: str, arg: str):
  spec = importlib.util.spec_from_file_location("cfg", REPO / "configs" / "memsr" / name)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


def test_paper_configs():
  c = _config("plain.py", "m,x4")
  assert (c.method, c.scale, c.data.lr_patch, c.data.batch_size) == ("memsr", 4, 48, 16)
  assert c.memsr.teacher.name == "memsr_teacher_m" and c.memsr.width == 64
  assert c.schedule.name == "one_cycle" and c.schedule.lr == 2e-4 and c.total_steps == 1_000_000
  x = _config("plain.py", "x0.05,x2,random,nodistill")
  assert x.memsr.theta == 0.05 and x.data.lr_patch == 96
  assert x.memsr.init == "random" and not x.memsr.distill
  assert _config("plain.py", "l,x3").memsr.width == 100
  with pytest.raises(ValueError, match="unknown MemSR config token"):
    memsr_config.parse_arg("m,x5")


def test_unsupported_teacher_fails_before_training(tmp_path):
  c = _config("quick.py", "")
  c.memsr.teacher.name = "edsr_baseline"
  with pytest.raises(ValueError, match="upsampler"):
    stages.run(c, tmp_path)


@pytest.mark.slow
def test_quick_stages_run_resume_and_export(tmp_path):
  c = _config("quick.py", "")
  c.data.dataset = "skimage_train+skimage_val"  # exercises combined datasets
  c.val.dataset = ""
  c.memsr.teacher.kwargs.n_feats = 16
  c.memsr.teacher.kwargs.n_resblocks = 2
  c.memsr.qat.steps = 3  # the quantization-aware stage writes workdir/qat
  c.memsr.teacher.total_steps = 20
  c.total_steps = 20
  c.ckpt_every = 20
  c.log_every = 10
  c.memsr.theta = 0.14  # Plain-X style adaptive widths
  out = stages.run(c, tmp_path)
  info = json.loads((tmp_path / "init" / "init.json").read_text())
  widths = info["student_kwargs"]["widths"]
  assert widths[0] == 3 and widths[-1] == 16 and len(widths) == 7
  assert all(layer["rel_error"] < 0.14 for layer in info["layers"][:-1])
  conv = json.loads((tmp_path / "convert" / "convert.json").read_text())
  assert conv["max_abs_diff_fp32_random_input"] < 2e-3
  model, params, meta = ckpt_lib.load_model_checkpoint(tmp_path)
  assert meta["method"]["widths"] == widths
  x = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (1, 10, 12, 3)), jnp.float32)
  np.testing.assert_allclose(model.apply({"params": params}, x),
                             model.apply({"params": out["params"]}, x), rtol=1e-5, atol=1e-4)
  # The initialized student is a model checkpoint too (evaluable before training).
  init_model, _, _ = ckpt_lib.load_model_checkpoint(tmp_path / "init" / "model")
  assert tuple(init_model.widths) == tuple(widths)
  qat_model, _, qat_meta = ckpt_lib.load_model_checkpoint(tmp_path / "qat")
  assert qat_model.bias_mode == "vector" and tuple(qat_model.widths) == tuple(widths)
  ranges = ckpt_lib.load_model_item(tmp_path / "qat", "qat_ranges")
  assert set(ranges) == {f"conv_{i}" for i in range(len(widths) - 1)} | {"tail_conv", "output"}
  assert qat_meta["qat"]["steps"] == 3
  # A rerun resumes: every stage is found finished and the result is the same.
  again = stages.run(c, tmp_path)
  np.testing.assert_allclose(model.apply({"params": again["params"]}, x),
                             model.apply({"params": params}, x), rtol=1e-6)


@pytest.mark.slow
def test_stages_start_from_an_official_lightning_teacher(tmp_path):
  """A user with the authors' teacher .ckpt: import it, then convert → init → student from it."""
  torch = pytest.importorskip("torch")
  from memsr_jax.interop import torch_models  # needs torch
  net = torch_models.randomize_(torch_models.MemSRTeacher(2, 16, 2), seed=0, std=0.05)
  ckpt = {"state_dict": torch_models.LightningWrapper(net).state_dict(),
          "hyper_parameters": {"backbone": {"n_feats": 16, "n_resblocks": 2,
                                            "simple_tail": True}, "scale": 2, "rgb_range": 255}}
  torch.save(ckpt, tmp_path / "teacher.ckpt")
  import_weights.main(["--weights", str(tmp_path / "teacher.ckpt"), "--model", "memsr_teacher_s",
                       "--scale", "2", "--set", "n_feats=16", "--set", "n_resblocks=2",
                       "--set", "body_bias=map", "--out", str(tmp_path / "teacher")])
  c = _config("quick.py", "")
  c.teacher_checkpoint = str(tmp_path / "teacher")
  c.val.dataset = ""
  c.memsr.width = 12
  c.total_steps = 4
  c.ckpt_every = 4
  c.log_every = 2
  c.memsr.n_patches = 2
  work = tmp_path / "run"
  stages.run(c, work)
  assert not (work / "teacher").exists()  # loaded, not trained
  conv = json.loads((work / "convert" / "convert.json").read_text())
  assert conv["max_abs_diff_fp32_random_input"] < 2e-3
  plain, plain_params, _ = ckpt_lib.load_model_checkpoint(work / "convert" / "model")
  x = np.random.default_rng(1).uniform(0, 255, (1, 9, 10, 3)).astype(np.float32)
  with torch.no_grad():
    ref = net(torch_models.nhwc_to_nchw(x))
  out = plain.apply({"params": plain_params}, jnp.asarray(x))
  assert np.abs(np.asarray(out) - torch_models.nchw_to_nhwc(ref)).max() < 5e-3
  _, _, meta = ckpt_lib.load_model_checkpoint(work)
  assert meta["method"]["widths"][0] == 3
