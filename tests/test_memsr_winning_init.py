"""MemSR winning initialization (Algorithm 1): widths, errors, exactness at full width."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax.methods.memsr import convert
from memsr_jax.methods.memsr import winning_init as wi
from memsr_jax.models import registry
from memsr_jax.models.plain import PlainNet
from memsr_jax.utils import precision

from test_memsr_convert import trained_like  # tests/ is on sys.path under pytest


@pytest.fixture(scope="module")
def small_teacher():
  model = registry.build_model("memsr_teacher_s", scale=2, n_feats=12, n_resblocks=3)
  params = trained_like(registry.init_params(model, jax.random.key(0)), seed=0)
  spec = convert.teacher_spec(model)
  lr = np.random.default_rng(0).uniform(0, 255, (4, 12, 14, 3))
  lr = np.round(lr)
  feats = wi.teacher_feature_samples(spec, params, lr, 1000.0, max_samples=500, seed=0)
  return model, params, spec, lr, feats


def test_choose_width_matches_definition(rng):
  f = rng.normal(size=(20, 300)) * np.linspace(3, 0.01, 20)[:, None]
  fc = f - f.mean(1, keepdims=True)
  u, s, vt = np.linalg.svd(fc, full_matrices=False)
  for theta in (0.5, 0.14, 0.05, 0.01):
    r, err = wi.choose_width(s, theta)
    rel = lambda k: np.linalg.norm(fc - (u[:, :k] * s[:k]) @ vt[:k]) / np.linalg.norm(fc)
    assert rel(r) < theta and np.isclose(rel(r), err)
    assert r == 1 or rel(r - 1) >= theta  # the smallest such r


def test_mean_shift_statistics():
  fs = np.array([[-2.0, 0.0, 4.0, -4.0], [1.0, 2.0, 3.0, 4.0]])
  np.testing.assert_allclose(wi.mean_shift(fs, 3.0, "code"), [3.0 * 6 / 4, 0.0])
  np.testing.assert_allclose(wi.mean_shift(fs, 3.0, "paper"), [3.0 * 3, 0.0])
  with pytest.raises(ValueError, match="shift statistic"):
    wi.mean_shift(fs, 3.0, "median")


def test_plain_x_widths_monotone_and_errors_below_theta(small_teacher):
  _, params, spec, _, feats = small_teacher
  tparams = convert.convert_params(spec, params)
  widths = {}
  for theta in (0.3, 0.14, 0.05, 0.01):
    kw, _, bridges, infos = wi.winning_init(tparams, convert.plain_relu(spec), feats, theta=theta)
    widths[theta] = np.array(kw["widths"])
    for i, info in enumerate(infos[:-1]):
      assert info.rel_error < theta
      # Recompute the residual from the features and the bridge (before the mean shift).
      f = feats[i]
      fc = f - f.mean(1, keepdims=True)
      u = bridges[i]["kernel"]
      assert np.linalg.norm(fc - u @ (u.T @ fc)) / np.linalg.norm(fc) < theta
    assert widths[theta][-1] == spec.n_feats  # last body layer: identity bridge
  ths = sorted(widths, reverse=True)
  for a, b in zip(ths, ths[1:]):
    assert np.all(widths[b] >= widths[a])  # smaller θ → every layer at least as wide
  assert widths[0.01].sum() > widths[0.3].sum()


def test_bridges_reconstruct_teacher_features(small_teacher):
  _, params, spec, _, feats = small_teacher
  tparams = convert.convert_params(spec, params)
  _, _, bridges, infos = wi.winning_init(tparams, convert.plain_relu(spec), feats, widths=8)
  for i, f in enumerate(feats):
    u, b = bridges[i]["kernel"], bridges[i]["bias"]
    assert u.shape == (f.shape[0], min(8, f.shape[0]))
    np.testing.assert_allclose(u.T @ u, np.eye(u.shape[1]), atol=1e-10)  # orthonormal at init
    fs = u.T @ (f - b[:, None])  # shifted student features
    rel = np.linalg.norm(u @ fs + b[:, None] - f) / np.linalg.norm(f - f.mean(1, keepdims=True))
    assert np.isclose(rel, infos[i].rel_error, atol=1e-9)
    if infos[i].shift_mean > 0:
      assert fs.mean() > 0  # the mean shift moves student features up


def test_full_width_linear_teacher_is_reproduced_exactly(rng):
  """With identity activations and r = teacher width, the student equals the teacher (float64)."""
  teacher = PlainNet(scale=3, widths=(3, 8, 12, 10, 6), relu=(False,) * 4, bias_mode="map",
                     sub_mean=False)
  with jax.enable_x64(True):
    shapes = jax.eval_shape(lambda: teacher.init(jax.random.key(0),
                                                 jnp.zeros((1, 8, 8, 3), jnp.float64))["params"])
    p = jax.tree_util.tree_map(lambda a: rng.normal(0, 0.3, a.shape), shapes)
    x = jnp.asarray(rng.uniform(0, 255, (3, 9, 11, 3)))
    t_apply = jax.jit(lambda q, xx: teacher.apply({"params": q}, xx, capture=True))
    y, f = t_apply(p, x)
    feats = [wi.sample_columns(np.asarray(a), 10 ** 6, rng) for a in f[:-1]]
    kw, sp, bridges, _ = wi.winning_init(p, teacher.relu, feats, widths=[8, 12, 10], beta=3.0)
    assert kw["widths"] == (3, 8, 12, 10, 6)
    student = PlainNet(scale=3, **kw)
    s_apply = jax.jit(lambda q, xx: student.apply({"params": q}, xx, capture=True))
    x2 = jnp.asarray(rng.uniform(0, 255, (1, 7, 13, 3)))  # other images and sizes too
    for xx in (x, x2):
      yt, ft = t_apply(p, xx)
      ys, fs = s_apply(sp, xx)
      assert float(jnp.max(jnp.abs(ys - yt))) < 1e-8
      for i, (a, s_) in enumerate(zip(ft, fs)):
        rec = jnp.einsum("bhwr,cr->bhwc", s_, bridges[i]["kernel"]) + bridges[i]["bias"]
        assert float(jnp.max(jnp.abs(rec - a))) < 1e-8


def test_relu_teacher_first_layer_exact_and_mean_shift_helps(small_teacher):
  """Layer 0 (identity activation, full width) is exact. ReLU layers are approximations by
  design (ReLU does not commute with the SVD rotation); the β = 3 mean shift, which moves student
  features away from the ReLU's cut, must bring the student closer to the teacher than β = 0."""
  model, params, spec, lr, feats = small_teacher
  tparams = convert.convert_params(spec, params)
  x = jnp.asarray(lr[:2], jnp.float32)
  with precision.exact():  # "exact" at 1e-3 on features of ~100: TF32 alone would exceed it
    yt = model.apply({"params": params}, x)
    _, ft = convert.residual_plain_features(spec, params, x)
    errs = {}
    for beta in (0.0, 3.0):
      kw, sp, bridges, _ = wi.winning_init(tparams, convert.plain_relu(spec), feats, theta=1e-6,
                                           beta=beta)
      ys, fs = PlainNet(**kw, scale=2).apply({"params": sp}, x, capture=True)
      rec0 = jnp.einsum("bhwr,cr->bhwc", fs[0], bridges[0]["kernel"]) + bridges[0]["bias"]
      assert float(jnp.max(jnp.abs(rec0 - ft[0][0]))) < 1e-3
      errs[beta] = float(jnp.mean(jnp.abs(ys - yt)))
  assert errs[3.0] < 0.7 * errs[0.0]


def test_input_validation(small_teacher):
  _, params, spec, _, feats = small_teacher
  tparams = convert.convert_params(spec, params)
  relu = convert.plain_relu(spec)
  with pytest.raises(ValueError, match="exactly one"):
    wi.decompose(feats[0], width=4, theta=0.1)
  with pytest.raises(ValueError, match="widths"):
    wi.winning_init(tparams, relu, feats, widths=[4, 4])
  with pytest.raises(ValueError, match="features"):
    wi.winning_init(tparams, relu, feats[:2], widths=4)
