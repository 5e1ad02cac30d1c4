"""Train state and the train step, as pure functions of pytrees.

`TrainState` holds what changes every step (step counter, params, optimizer state, optional EMA of
the params). Extras (teacher params, masks, rewind states…) belong to the task and stay constant
during a `train()` call; they are passed to the step as a separate, non-donated argument.
"""
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax

from memsr_jax.train import optim
from memsr_jax.train.task import Task
from memsr_jax.utils import precision

PyTree = Any


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: number of optimizer steps taken
  params: PyTree
  opt_state: PyTree
  ema_params: PyTree | None = None

  def eval_params(self) -> PyTree:
    """The weights to evaluate and export: the EMA when it is kept, else the params."""
    return self.params if self.ema_params is None else self.ema_params


# The step's flag (not a logged metric): 1 when every float of the updated state is finite.
STATE_FINITE = "state_finite"


def all_finite(tree: PyTree) -> jax.Array:
  """True when every floating-point leaf of `tree` is finite (one reduction, inside jit)."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def create_train_state(params: PyTree, tx: optax.GradientTransformation,
                       ema: bool = False) -> TrainState:
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    ema_params=jax.tree.map(jnp.asarray, params) if ema else None)


def batch_to_float(batch: dict) -> dict:
  """uint8 batches travel to the device as uint8 (4× less transfer) and become float32 here."""
  return {k: v.astype(jnp.float32) for k, v in batch.items()}


def make_train_step(task: Task, tx: optax.GradientTransformation, schedule: optax.Schedule,
                    ema_decay: float = 0.0, compute_dtype=None,
                    ema_warmup: bool = optim.EMA_WARMUP) -> Callable:
  """Returns train_step(state, extras, batch, rng) -> (state, metrics); pure, ready for jit.

  The step's rng is `fold_in(rng, step)`, so a resumed run draws the same randomness as an
  uninterrupted one. metrics[STATE_FINITE] says whether the updated state (params, optimizer
  state, EMA) is all finite: a state that is not is never saved. Update masks (task.update_mask)
  freeze weights without optimizer-state drift; task.post_update (e.g. re-applying pruning masks)
  runs after the optimizer step.
  `compute_dtype` (config.dtype; e.g. bf16): the loss is computed in it, everything else stays
  float32 (memsr_jax.utils.precision.mixed_precision_loss), for every task alike.
  `ema_warmup`: the EMA decay ramps up with the step (optim.ema_decay_at).
  """
  task_loss = precision.mixed_precision_loss(task.loss_fn, compute_dtype)

  def train_step(state: TrainState, extras: dict, batch: dict, rng: jax.Array):
    step_rng = jax.random.fold_in(rng, state.step)
    batch = batch_to_float(batch)

    def loss_fn(params):
      return task_loss(params, extras, batch, step_rng, state.step)

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    mask = task.update_mask(state.params, extras)
    if mask is not None:  # frozen gradients must not count in clipping norms either
      grads = jax.tree.map(lambda m, g: jnp.where(m, g, jnp.zeros_like(g)), mask, grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    if mask is not None:
      updates, opt_state = optim.apply_update_mask(mask, state.params, updates, state.opt_state,
                                                   opt_state)
    params = optax.apply_updates(state.params, updates)
    params = task.post_update(params, extras)
    ema_params = state.ema_params
    if ema_params is not None:
      ema_params = optim.ema_update(ema_params, params,
                                    optim.ema_decay_at(ema_decay, state.step, ema_warmup))
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              ema_params=ema_params)
    metrics = dict(metrics)
    metrics["loss"] = loss
    metrics["grad_norm"] = optax.global_norm(grads)
    metrics["lr"] = jnp.asarray(schedule(state.step), jnp.float32)
    metrics[STATE_FINITE] = all_finite(new_state).astype(jnp.float32)
    return new_state, metrics

  return train_step
