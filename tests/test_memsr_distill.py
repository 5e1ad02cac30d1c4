"""MemSR initialization-aware distillation: loss terms, weights, the task."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.methods.memsr import convert
from memsr_jax.methods.memsr import distill
from memsr_jax.methods.memsr import tasks as memsr_tasks
from memsr_jax.methods.memsr import winning_init as wi
from memsr_jax.models import registry

from test_memsr_convert import trained_like  # tests/ is on sys.path under pytest


@pytest.fixture(scope="module")
def teacher():
  model = registry.build_model("memsr_teacher_s", scale=2, n_feats=8, n_resblocks=2)
  params = trained_like(registry.init_params(model, jax.random.key(1)), seed=1)
  return model, params, convert.teacher_spec(model)


def test_mse_parts_equals_concatenated_mse(rng):
  parts = (jnp.asarray(rng.normal(size=(2, 3, 4, 5))), jnp.asarray(rng.normal(size=(2, 3, 4, 2))))
  pred = jnp.asarray(rng.normal(size=(2, 3, 4, 7)))
  want = jnp.mean(jnp.square(pred - jnp.concatenate(parts, -1)))
  np.testing.assert_allclose(distill._mse_parts(pred, parts), want, rtol=1e-6)


def test_distill_weight_schedule():
  np.testing.assert_allclose(distill.distill_weight(0, 100, 0.3, 1e-5), 0.3, rtol=1e-6)
  np.testing.assert_allclose(distill.distill_weight(50, 100, 0.3, 1e-5), 0.3 * 1e-5 ** 0.5,
                             rtol=1e-5)
  np.testing.assert_allclose(distill.distill_weight(100, 100, 0.3, 1e-5), 0.3e-5, rtol=1e-5)


def test_plain_teacher_as_student_has_zero_distill_loss(teacher):
  """The converted teacher with identity bridges (offset-free biases −C·mask) matches every
  teacher feature: the loss is 0 up to rounding, and positive once the student is perturbed."""
  model, params, spec = teacher
  with jax.enable_x64(True):
    p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    plain_model, plain_params = convert.convert(model, p64, dtype=np.float64)
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (2, 9, 10, 3)))
    sr_s, feats_s = plain_model.apply({"params": plain_params}, x, capture=True)
    sr_t, feats_t = convert.residual_plain_features(spec, p64, x)
    eye = [{"kernel": np.eye(w), "bias": np.zeros(w)} for w in convert.plain_widths(spec)[1:-1]]
    bridges = distill.offset_free_bridges(eye, spec, 1000.0)
    bridges = [jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), b) for b in bridges]
    loss = distill.distill_loss(feats_s, sr_s, feats_t, sr_t, bridges)
    assert float(loss) < 1e-8
    noisy = [f + 0.1 for f in feats_s]
    assert float(distill.distill_loss(noisy, sr_s, feats_t, sr_t, bridges)) > 1e-3


def test_offset_free_loss_equals_plain_form_loss(teacher, rng):
  """Bridges stored without +C give the loss of the plain form (+C materialized), float64."""
  model, params, spec = teacher
  with jax.enable_x64(True):
    p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    x = jnp.asarray(rng.uniform(0, 255, (1, 8, 9, 3)))
    sr_t, feats_t = convert.residual_plain_features(spec, p64, x)
    masks = convert.offset_masks(spec)
    widths = convert.plain_widths(spec)[1:]
    feats_s = [jnp.asarray(rng.normal(size=(1, 8, 9, 5))) for _ in widths[:-1]]
    feats_s.append(jnp.asarray(rng.normal(size=(1, 8, 9, widths[-1]))))
    sr_s = jnp.asarray(rng.normal(size=sr_t.shape))
    plain_bridges = [{"kernel": rng.normal(size=(c, 5)), "bias": rng.normal(size=c) + 1000 * m}
                     for c, m in zip(widths[:-1], masks)]
    free = [jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), b)
            for b in distill.offset_free_bridges(plain_bridges, spec, 1000.0)]
    got = distill.distill_loss(feats_s, sr_s, feats_t, sr_t, free)
    terms = []
    for f, b, t, m in zip(feats_s[:-1], plain_bridges, feats_t[:-1], masks):
      pred = jnp.einsum("bhwr,cr->bhwc", f, b["kernel"]) + b["bias"]
      terms.append(jnp.mean(jnp.square(pred - (jnp.concatenate(t, -1) + 1000 * m))))
    terms.append(jnp.mean(jnp.square(feats_s[-1] - feats_t[-1][0])))
    terms.append(jnp.mean(jnp.square(sr_s - sr_t)))
    np.testing.assert_allclose(float(got), float(sum(terms) / len(terms)), rtol=1e-9)


def _winning_task(teacher, total_steps=10, do_distill=True):
  model, params, spec = teacher
  lr = np.random.default_rng(2).uniform(0, 255, (4, 10, 10, 3))
  feats = wi.teacher_feature_samples(spec, params, lr, 1000.0, seed=0)
  kw, sp, bridges, _ = wi.winning_init(convert.convert_params(spec, params),
                                       convert.plain_relu(spec), feats, widths=6)
  kw["scale"] = spec.scale
  return memsr_tasks.MemSRDistillTask(
      kw, sp, spec=spec, teacher_params=params,
      bridges=distill.offset_free_bridges(bridges[:-1], spec, 1000.0), total_steps=total_steps,
      distill=do_distill)


def test_task_loss_gradients_and_export(teacher):
  task = _winning_task(teacher)
  params, extras = task.init(jax.random.key(0))
  assert set(params) == {"student", "bridges"} and set(extras) == {"teacher"}
  assert len(params["bridges"]) == 5  # L − 1 bridged layers (L = 6)
  rng = np.random.default_rng(3)
  lr = jnp.asarray(rng.uniform(0, 255, (2, 8, 8, 3)), jnp.float32)
  batch = {"lr": lr, "hr": jnp.asarray(rng.uniform(0, 255, (2, 16, 16, 3)), jnp.float32)}
  (loss, metrics), grads = jax.value_and_grad(task.loss_fn, has_aux=True)(
      params, extras, batch, jax.random.key(0), 0)
  np.testing.assert_allclose(loss, metrics["l1"] + 0.3 * metrics["distill"], rtol=1e-5)
  assert float(metrics["distill"]) > 0
  gnorm = lambda t: float(sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(t)))
  assert gnorm(grads["bridges"]) > 0 and gnorm(grads["student"]) > 0
  name, kwargs, export = task.export(params, extras)
  model = registry.build_model(name, **kwargs)
  sr = model.apply({"params": export}, lr)
  np.testing.assert_allclose(sr, task.predict(params, extras, lr), rtol=1e-6)
  assert kwargs["widths"][1] <= 6 and not kwargs["sub_mean"]


def test_task_without_distillation_has_no_teacher(teacher):
  task = _winning_task(teacher, do_distill=False)
  params, extras = task.init(jax.random.key(0))
  assert set(params) == {"student"} and extras == {}
  batch = {"lr": jnp.zeros((1, 8, 8, 3)), "hr": jnp.zeros((1, 16, 16, 3))}
  loss, metrics = task.loss_fn(params, extras, batch, jax.random.key(0), 0)
  assert set(metrics) == {"l1"}


def test_distillation_needs_teacher_and_bridges(teacher):
  _, _, spec = teacher
  with pytest.raises(ValueError, match="teacher params and bridges"):
    memsr_tasks.MemSRDistillTask({"widths": (3, 4, 8), "relu": (True, False), "bias_mode": "map",
                              "sub_mean": False}, {}, spec=spec, teacher_params=None,
                             bridges=None, total_steps=1)


def test_xavier_relu_init_statistics():
  from memsr_jax.models.plain import PlainNet
  model = PlainNet(scale=2, widths=(3, 64, 64), bias_mode="vector")
  params = distill.xavier_relu_init(jax.random.key(0),
                                    registry.init_params(model, jax.random.key(1)))
  k = np.asarray(params["conv_1"]["kernel"])
  np.testing.assert_allclose(k.std(), np.sqrt(2) * np.sqrt(2 / (9 * 128)), rtol=0.05)
  assert not np.any(np.asarray(params["conv_1"]["bias"]))
