"""The precision policy's guard (memsr_jax/utils/precision.py), runnable on CPU: each exactness path
is run with JAX dumping every module it lowers, and every convolution and dot in them must carry
Precision.HIGHEST. On CPU HIGHEST and DEFAULT compute the same, so only this check keeps the
policy from silently regressing before a GPU/TPU sees it. A negative control (the training step,
and eval at --precision default) shows the check can fail."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_configs

from memsr_jax.deploy import tiling
from memsr_jax.inference import predictor
from memsr_jax.models import registry
from memsr_jax.utils import precision


@pytest.fixture
def lowered(tmp_path):
  """Call to get [(op, precision)] of every conv/dot lowered since the fixture started."""
  old = jax.config.values.get("jax_dump_ir_to", "")
  jax.config.update("jax_dump_ir_to", str(tmp_path))

  def ops():
    return [op for f in sorted(tmp_path.glob("*.mlir"))
            for op in precision.lowered_precisions(f.read_text())]
  yield ops
  jax.config.update("jax_dump_ir_to", old)


def _assert_highest(ops, what):
  assert any(op == "convolution" for op, _ in ops), f"{what}: no convolution lowered (cached?)"
  bad = [(op, p) for op, p in ops if p != "HIGHEST"]
  assert not bad, f"{what}: {len(bad)} of {len(ops)} convs/dots not at HIGHEST: {bad[:3]}"


def _edsr(scale=2, **kw):
  model = registry.build_model("edsr_mini", scale=scale, n_feats=4, n_resblocks=1, **kw)
  return model, registry.random_params(model, 0)


def _x(h, w, seed=0):
  return np.random.default_rng(seed).uniform(0, 255, (1, h, w, 3)).astype(np.float32)


def test_model_predictor(lowered):
  model, params = _edsr()
  predictor.model_predictor(model, params, "highest")(_x(7, 9))
  _assert_highest(lowered(), "predictor (eval.py) --precision highest")
  predictor.model_predictor(model, params, "default")(_x(7, 10))  # negative control
  assert ("convolution", "DEFAULT") in lowered()


def test_params_predictor(lowered):
  model, params = _edsr()
  predictor.params_predictor(lambda p, v: model.apply({"params": p}, v))(params, _x(6, 9))
  _assert_highest(lowered(), "params predictor (validation, level sweeps)")


@pytest.mark.parametrize("name", ["plain", "edsr"])
def test_exact_tiling_and_upscaler(lowered, tmp_path, name):
  from memsr_jax.deploy import upscaler
  from memsr_jax.image import io as image_io
  if name == "plain":
    model = registry.build_model("plain", scale=2, widths=(3, 4, 4), bias_mode="map")
    params = registry.random_params(model, 1)
  else:
    model, params = _edsr(tail="conv1x1")
  img = (_x(11, 13)[0]).astype(np.uint8)
  tiling.upscale_array(model, params, img, tile=9)
  image_io.write_png(tmp_path / "in.png", img)
  upscaler.Upscaler(model, params, tile=10).upscale_file(tmp_path / "in.png", tmp_path / "o.png")
  _assert_highest(lowered(), f"{name} exact tiling / upscale")


def test_plain_conversion_and_winning_init_features(lowered):
  from memsr_jax.methods.memsr import convert
  from memsr_jax.methods.memsr import winning_init
  model, params = _edsr(tail="conv1x1", res_scale=0.5)
  spec = convert.teacher_spec(model)
  plain, pparams = convert.convert(model, params)
  x = jnp.asarray(_x(6, 7))
  jax.jit(plain.apply)({"params": pparams}, x)  # no context: the converted model carries HIGHEST
  folded = convert.fold_offsets(spec, convert.convert_params(spec, params))
  jax.jit(lambda q, v: convert.apply_folded(spec, q, v))(folded, x)
  jax.jit(lambda q, v: convert.residual_plain_features(spec, q, v))(params, x)
  winning_init.teacher_feature_samples(spec, params, _x(5, 6), convert.DEFAULT_OFFSET,
                                       max_samples=8)
  _assert_highest(lowered(), "plain conversion / winning-init features")


def test_mssr_levels_and_validation(lowered):
  from memsr_jax.evaluation import validation
  from memsr_jax.methods.mssr import evaluate
  from memsr_jax.methods.mssr import masks
  from memsr_jax.methods.mssr import scalable
  model, params = _edsr()
  level_map = jax.tree_util.tree_map(lambda p: np.ones(np.shape(p), np.int8), params)
  sr = scalable.ScalableSR(model, params, level_map)
  sr.at_level(1)(jnp.asarray(_x(6, 5)))
  lr = _x(5, 7)[0].astype(np.uint8)
  hr = np.zeros((10, 14, 3), np.uint8)
  evaluate.sweep_levels(model, params, level_map, {"s": [("a", lr, hr)]}, 2)
  validation.Validator(lambda p, e, v: model.apply({"params": p}, v), [("a", lr, hr)], 2)(
      masks.params_at_level(params, level_map, 1), {})
  _assert_highest(lowered(), "MSSR level switching / sweeps / validation")


def test_training_step_uses_the_fast_default():
  """Negative control: training is not an exactness path and lowers at the backend default."""
  from memsr_jax.train import optim
  from memsr_jax.train import state
  from memsr_jax.train.supervised import SupervisedTask
  cfg = tiny_configs.tiny_config()
  task = SupervisedTask(cfg)
  tx, sched = optim.make_optimizer(cfg)
  params, _ = task.init(jax.random.key(0))
  st = state.create_train_state(params, tx)
  batch = {"lr": jnp.zeros((2, 5, 5, 3)), "hr": jnp.zeros((2, 10, 10, 3))}
  text = jax.jit(state.make_train_step(task, tx, sched)).lower(st, {}, batch,
                                                              jax.random.key(1)).as_text()
  ops = precision.lowered_precisions(text)
  assert ops and all(p == "DEFAULT" for _, p in ops)
  with pytest.raises(AssertionError, match="not at HIGHEST"):
    _assert_highest(ops, "training step")


def test_eval_records_the_policy_and_rejects_unknown(tmp_path):
  from configs import eval as eval_config
  from memsr_jax.image import io as image_io
  from memsr_jax.tools import eval as eval_module
  for i in range(2):
    image_io.write_png(tmp_path / "imgs" / f"{i}.png", (_x(16, 20, i)[0]).astype(np.uint8))
  c = eval_config.get_config()
  c.datasets, c.scales, c.output_dir = str(tmp_path / "imgs"), "2", str(tmp_path / "out")
  c.precision = "default"
  eval_module.run(c)
  saved = json.loads((tmp_path / "out" / "results.json").read_text())
  assert saved[c.datasets]["x2"]["precision"] == "default"
  c.precision = "tf32"
  with pytest.raises(ValueError, match="highest|default|bfloat16"):
    eval_module.run(c)
