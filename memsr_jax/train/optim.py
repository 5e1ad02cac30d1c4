"""Optimizers and learning-rate schedules from the config, plus update masking.

Optimizers are built by name from a table: `factory(optim_config, schedule)` returns an
`optax.GradientTransformation`. A task brings its own (e.g. the compression paper's SGD + L1
proximal step) through `Task.optimizers()`, which the engine passes to `make_optimizer`; a user may
also add one for every run with `register_optimizer("prox_sgd", factory)`. Either way
`config.optim.name = "prox_sgd"` picks it.
"""
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import optax

from memsr_jax.utils import cli

OptimizerFactory = Callable[[ml_collections.ConfigDict, optax.Schedule],
                            optax.GradientTransformation]
_OPTIMIZERS: dict[str, OptimizerFactory] = {}


def register_optimizer(name: str, factory: OptimizerFactory) -> None:
  """Makes `config.optim.name = name` build `factory(config.optim, schedule)`."""
  _OPTIMIZERS[name] = factory


register_optimizer("adam", lambda c, s: optax.adam(s, b1=c.b1, b2=c.b2, eps=c.eps))
register_optimizer("adamw", lambda c, s: optax.adamw(s, b1=c.b1, b2=c.b2, eps=c.eps,
                                                     weight_decay=c.weight_decay))
register_optimizer("sgd", lambda c, s: optax.sgd(s, momentum=c.momentum or None))


def make_schedule(sc: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """config.schedule → step → learning rate."""
  if sc.name == "constant":
    return optax.constant_schedule(sc.lr)
  if sc.name == "one_cycle":
    # PyTorch OneCycleLR (cosine warm-up to the peak over warmup_frac, cosine decay after), the
    # schedule MemSR's recipe names.
    return optax.cosine_onecycle_schedule(total_steps, sc.lr, pct_start=sc.warmup_frac,
                                          div_factor=sc.div_factor,
                                          final_div_factor=sc.final_div_factor)
  if sc.name == "multistep":
    bounds = {int(m): float(sc.gamma) for m in sc.milestones}
    return optax.piecewise_constant_schedule(sc.lr, bounds)
  if sc.name == "cosine":
    return optax.cosine_decay_schedule(sc.lr, total_steps)
  raise cli.UsageError(f"unknown schedule {sc.name!r}; expected constant, one_cycle, multistep or "
                       "cosine")


def make_optimizer(config: ml_collections.ConfigDict,
                   factories: Mapping[str, OptimizerFactory] | None = None
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """(optimizer with optional gradient clipping, schedule) from config.optim / config.schedule.

  `factories`: more optimizers by name besides the registered ones (a task's `optimizers()`).
  """
  schedule = make_schedule(config.schedule, config.total_steps)
  name = config.optim.name
  table = {**_OPTIMIZERS, **(factories or {})}
  if name not in table:
    raise cli.UsageError(f"unknown optimizer {name!r}; known: {sorted(table)} (a task brings its "
                         "own with Task.optimizers(), or add one with "
                         "memsr_jax.train.optim.register_optimizer)")
  tx = table[name](config.optim, schedule)
  if config.optim.grad_clip_norm and config.optim.grad_clip_norm > 0:
    tx = optax.chain(optax.clip_by_global_norm(config.optim.grad_clip_norm), tx)
  return tx, schedule


def _is_params_like(treedef):
  return lambda x: jax.tree_util.tree_structure(x) == treedef


def apply_update_mask(mask: Any, params: Any, updates: Any, old_opt_state: Any,
                      new_opt_state: Any) -> tuple[Any, Any]:
  """Zeroes masked-out updates and keeps the optimizer state of frozen entries unchanged.

  `mask` is a params-shaped pytree of bools (per leaf or per element; False = frozen). Zeroing the
  gradient alone is not enough: Adam's moments would still decay and move a frozen weight, so every
  params-shaped subtree of the optimizer state (mu, nu, momentum…) keeps its old value where frozen.
  """
  where = lambda m, new, old: jnp.where(m, new, old)
  updates = jax.tree.map(lambda m, u: jnp.where(m, u, jnp.zeros_like(u)), mask, updates)
  treedef = jax.tree_util.tree_structure(params)
  is_params = _is_params_like(treedef)

  def keep_frozen(new, old):
    if is_params(new):
      return jax.tree.map(where, mask, new, old)
    return new

  new_opt_state = jax.tree.map(keep_frozen, new_opt_state, old_opt_state, is_leaf=is_params)
  return updates, new_opt_state


# Whether the EMA decay ramps up with the step (`ema_decay_at`): the one default, which
# config.optim.ema_warmup (config_lib.base_config) and `state.make_train_step` take.
EMA_WARMUP = True


def ema_decay_at(decay: float, step, warmup: bool = EMA_WARMUP):
  """The EMA decay used at `step` (updates done before this one). With `warmup` it is
  min(decay, (1 + step) / (10 + step)), as TensorFlow's ExponentialMovingAverage with
  num_updates: the average forgets the initial weights within the first hundreds of steps
  instead of holding e.g. 0.999^400 = 67 % of them after 400 steps; beyond ~10k steps it equals
  `decay` (0.999)."""
  if not warmup:
    return decay
  t = jnp.asarray(step, jnp.float32)
  return jnp.minimum(jnp.float32(decay), (1.0 + t) / (10.0 + t))


def ema_update(ema: Any, params: Any, decay) -> Any:
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)
