"""Pure pieces of the engine: the step, update masks, optimizers, schedules, EMA, losses, config."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from memsr_jax import methods
from memsr_jax.train import config_lib
from memsr_jax.train import losses
from memsr_jax.train import optim
from memsr_jax.train import state as state_lib
from memsr_jax.train.task import Task
from memsr_jax.utils import cli


class QuadraticTask(Task):
  """loss = mean((w - target)²) per leaf; optional update mask from extras["mask"]."""
  name = "quadratic"

  def __init__(self, use_mask: bool):
    self.use_mask = use_mask

  def loss_fn(self, params, extras, batch, rng, step):
    del rng, step
    loss = sum(jnp.mean((p - batch["hr"].mean()) ** 2) for p in jax.tree.leaves(params))
    return loss, {"extra_metric": loss * 2}

  def update_mask(self, params, extras):
    return extras["mask"] if self.use_mask else None


def _params():
  r = np.random.default_rng(0)
  return {"a": jnp.asarray(r.normal(size=(4, 3)), jnp.float32),
          "b": jnp.asarray(r.normal(size=(5,)), jnp.float32)}


def _batch():
  return {"lr": np.full((2, 2, 2, 3), 10, np.uint8), "hr": np.full((2, 4, 4, 3), 3, np.uint8)}


def test_masked_entries_and_their_adam_state_do_not_move():
  params = _params()
  tx = optax.adam(0.1)
  sched = optax.constant_schedule(0.1)
  free = jax.jit(state_lib.make_train_step(QuadraticTask(False), tx, sched))
  masked = jax.jit(state_lib.make_train_step(QuadraticTask(True), tx, sched))
  mask = {"a": np.arange(12).reshape(4, 3) % 2 == 0, "b": np.zeros(5, bool)}
  extras = {"mask": mask}
  rng = jax.random.key(0)
  st = state_lib.create_train_state(params, tx)
  for _ in range(2):  # train everything first: Adam moments become non-zero
    st, _ = free(st, extras, _batch(), rng)
  before = jax.tree.map(np.asarray, st)
  for _ in range(3):  # then freeze: frozen weights and their moments must stay exactly put
    st, metrics = masked(st, extras, _batch(), rng)
  mu, nu = st.opt_state[0].mu, st.opt_state[0].nu
  mu0, nu0 = before.opt_state[0].mu, before.opt_state[0].nu
  for k in params:
    frozen = ~mask[k]
    np.testing.assert_array_equal(np.asarray(st.params[k])[frozen], before.params[k][frozen])
    np.testing.assert_array_equal(np.asarray(mu[k])[frozen], mu0[k][frozen])
    np.testing.assert_array_equal(np.asarray(nu[k])[frozen], nu0[k][frozen])
    trainable = mask[k]
    if trainable.any():
      assert np.all(np.asarray(st.params[k])[trainable] != before.params[k][trainable])
  assert int(st.step) == 5
  assert set(metrics) >= {"loss", "grad_norm", "lr", "extra_metric"}


def test_ema_and_post_update():
  class PostTask(QuadraticTask):
    def post_update(self, params, extras):
      return jax.tree.map(lambda p: jnp.clip(p, -0.5, 0.5), params)

  params = _params()
  tx = optax.sgd(0.1)
  for warmup in (False, True):
    step = jax.jit(state_lib.make_train_step(PostTask(False), tx, optax.constant_schedule(0.1),
                                             ema_decay=0.9, ema_warmup=warmup))
    st = state_lib.create_train_state(params, tx, ema=True)
    ema = jax.tree.map(np.asarray, params)
    for t in range(12):
      st, _ = step(st, {}, _batch(), jax.random.key(0))
      d = min(0.9, (1 + t) / (10 + t)) if warmup else 0.9
      ema = jax.tree.map(lambda e, p, d=d: d * e + (1 - d) * np.asarray(p), ema, st.params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), st.ema_params, ema)
  assert all(float(jnp.abs(p).max()) <= 0.5 for p in jax.tree.leaves(st.params))
  assert st.eval_params() is st.ema_params


def test_ema_warmup_forgets_the_init():
  """decay 0.999: after 400 steps the warmed-up EMA holds ~0 of the initial weights (plain EMA:
  0.999^400 = 67 %); from ~10k steps on both use 0.999."""
  def init_share(warmup):
    share = 1.0
    for t in range(400):
      share *= float(optim.ema_decay_at(0.999, t, warmup))
    return share
  assert init_share(False) == pytest.approx(0.999 ** 400, rel=1e-4)
  assert init_share(True) < 1e-6
  assert float(optim.ema_decay_at(0.999, 20_000)) == pytest.approx(0.999)


def _config(**schedule):
  c = config_lib.base_config()
  c.total_steps = 100
  for k, v in schedule.items():
    c.schedule[k] = v
  return c


def test_schedules():
  one_cycle = optim.make_schedule(_config(name="one_cycle", lr=2e-4).schedule, 100)
  lrs = np.array([float(one_cycle(i)) for i in range(101)])
  assert int(np.argmax(lrs)) == 30 and np.isclose(lrs.max(), 2e-4)
  assert np.isclose(lrs[0], 2e-4 / 25) and lrs[-1] < 1e-7
  assert np.all(np.diff(lrs[:31]) > 0) and np.all(np.diff(lrs[30:]) <= 0)
  ms = optim.make_schedule(_config(name="multistep", lr=1e-4, milestones=(10, 20)).schedule, 100)
  np.testing.assert_allclose([float(ms(i)) for i in (0, 9, 10, 19, 20, 99)],
                             [1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5, 2.5e-5], rtol=1e-6)


def test_registered_optimizer_and_clipping():
  """A method plugs in a proximal SGD by name; clipping wraps whatever optimizer is chosen."""
  def prox_sgd(c, schedule):
    lam = c.extra.l1

    def update(grads, state, params):
      lr = schedule(state)
      def one(g, w):
        z = w - lr * g
        return jnp.sign(z) * jnp.maximum(jnp.abs(z) - lr * lam, 0.0) - w
      return jax.tree.map(one, grads, params), state + 1
    return optax.GradientTransformation(lambda p: jnp.zeros((), jnp.int32), update)

  optim.register_optimizer("prox_sgd_test", prox_sgd)
  c = _config(name="constant", lr=0.5)
  c.optim.name = "prox_sgd_test"
  c.optim.extra = ml_collections.ConfigDict({"l1": 1.0})
  tx, _ = optim.make_optimizer(c)
  w = {"w": jnp.array([0.2, -2.0, 3.0])}
  g = {"w": jnp.array([0.0, 0.0, 1.0])}
  upd, _ = tx.update(g, tx.init(w), w)
  np.testing.assert_allclose(optax.apply_updates(w, upd)["w"], [0.0, -1.5, 2.0], atol=1e-6)

  c.optim.grad_clip_norm = 0.1
  c.optim.name = "sgd"
  tx, _ = optim.make_optimizer(c)
  upd, _ = tx.update({"w": jnp.array([30.0, 40.0, 0.0])}, tx.init(w), w)
  np.testing.assert_allclose(upd["w"], [-0.5 * 0.06, -0.5 * 0.08, 0.0], rtol=1e-5)

  c.optim.name = "nope"
  with pytest.raises(ValueError, match="unknown optimizer 'nope'"):
    optim.make_optimizer(c)


def test_pixel_losses():
  p, t = jnp.array([0.0, 3.0]), jnp.array([1.0, 1.0])
  assert float(losses.get_pixel_loss("l1")(p, t)) == pytest.approx(1.5)
  assert float(losses.get_pixel_loss("mse")(p, t)) == pytest.approx(2.5)
  ch = losses.get_pixel_loss("charbonnier", 1e-3)(p, t)
  assert float(ch) == pytest.approx(np.mean(np.sqrt(np.array([1.0, 4.0]) + 1e-6)), rel=1e-6)
  with pytest.raises(ValueError, match="unknown loss"):
    losses.get_pixel_loss("l3")


def test_config_validation():
  config_lib.validate(config_lib.base_config())
  c = config_lib.base_config()
  c.optim.lrr = 1.0
  with pytest.raises(ValueError, match=r"config.optim.\['lrr'\]"):
    config_lib.validate(c)
  c = config_lib.base_config()
  c.loss.name = "l3"
  with pytest.raises(ValueError, match="config.loss.name='l3'"):
    config_lib.validate(c)
  c = config_lib.base_config()
  c.mesh.model = 2  # no model parallelism: a user error saying what to set
  with pytest.raises(cli.UsageError, match=r"config.mesh.model=2: .* set config.mesh.model=1"):
    config_lib.validate(c)
  c = config_lib.base_config()
  c.method = "magic"
  config_lib.validate(c)  # the engine knows no method names
  with pytest.raises(ValueError, match="config.method='magic'"):
    methods.validate(c)


def test_task_defaults_and_task_optimizers():
  """The base Task's optional hooks change nothing; a task's own optimizer is found by name."""
  task = Task()
  params = {"w": jnp.ones(3)}
  assert task.update_mask(params, {}) is None
  assert task.post_update(params, {}) is params
  assert task.metadata(params, {}) == {} and task.optimizers() == {}
  assert task.display_name() == "Task"
  extras = {"mask": params, "rewind": params}
  assert task.step_extras(extras) == extras  # by default the step reads every extra
  task.checkpoint_only_extras = frozenset({"rewind"})
  assert task.step_extras(extras) == {"mask": params}
  c = _config(name="constant", lr=0.5)
  c.optim.name = "task_sgd"
  with pytest.raises(ValueError, match="unknown optimizer 'task_sgd'"):
    optim.make_optimizer(c)
  tx, _ = optim.make_optimizer(c, {"task_sgd": lambda oc, s: optax.sgd(s)})
  upd, _ = tx.update({"w": jnp.ones(3)}, tx.init(params), params)
  np.testing.assert_allclose(upd["w"], -0.5 * np.ones(3))
