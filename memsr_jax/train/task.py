"""The task base class: what a method hands the training engine.

The engine (memsr_jax.train.loop) owns optimizers, sharding, checkpoints, logging and resume; a task
owns the model(s), the loss and what gets saved besides params. Tasks subclass `Task`, implement
`init`, `loss_fn`, `predict` and `export`, and override the optional hooks only when they need
them (the defaults do nothing). Methods are pure in their array arguments, so the engine can jit
them.
"""
from typing import Any

from memsr_jax.train import optim

PyTree = Any


class Task:
  name: str = ""  # stage/task name in logs and checkpoint metadata ("" = the class name)
  # Extras saved and restored with every checkpoint but read by none of loss_fn, predict,
  # update_mask and post_update (e.g. MSSR's rewind state): they are no argument of the compiled
  # step nor of validation. export and metadata still get every extra.
  checkpoint_only_extras: frozenset[str] = frozenset()

  def init(self, rng) -> tuple[PyTree, dict[str, PyTree]]:
    """(trainable params, extras). Extras: non-trainable pytrees (teacher params, masks, rewind
    states…), each saved as its own checkpoint item. The calls below get `step_extras(extras)`,
    except export and metadata, which get them all."""
    raise NotImplementedError

  def step_extras(self, extras: dict[str, PyTree]) -> dict[str, PyTree]:
    """The extras the compiled step and validation read: all but `checkpoint_only_extras`."""
    return {k: v for k, v in extras.items() if k not in self.checkpoint_only_extras}

  def loss_fn(self, params: PyTree, extras: dict[str, PyTree], batch: dict, rng,
              step) -> tuple[Any, dict[str, Any]]:
    """Scalar loss and a dict of scalar metrics. batch: float32 0..255 {"lr", "hr"}."""
    raise NotImplementedError

  def predict(self, params: PyTree, extras: dict[str, PyTree], lr) -> Any:
    """SR output (float32, 0..255) for validation."""
    raise NotImplementedError

  def export(self, params: PyTree, extras: dict[str, PyTree]) -> tuple[str, dict, PyTree]:
    """(model preset name, model kwargs, params) of the deployable network, for eval/deploy."""
    raise NotImplementedError

  # Optional hooks: the defaults change nothing.

  def update_mask(self, params: PyTree, extras: dict[str, PyTree]) -> PyTree | None:
    """Pytree of bool like params (False = frozen: no update, no optimizer-state drift), or None
    (everything trains)."""
    del params, extras
    return None

  def post_update(self, params: PyTree, extras: dict[str, PyTree]) -> PyTree:
    """Params after the optimizer step, e.g. with pruning masks re-applied."""
    del extras
    return params

  def metadata(self, params: PyTree, extras: dict[str, PyTree]) -> dict:
    """Extra JSON metadata for checkpoints (e.g. widths). Like export, it gets the device-resident
    (possibly multi-process) arrays: bring to the host only what it reads, with
    `memsr_jax.train.sharding.to_host`."""
    del params, extras
    return {}

  def optimizers(self) -> dict[str, optim.OptimizerFactory]:
    """Optimizers this task brings, by name: `config.optim.name` may pick one of them besides the
    engine's own (e.g. the compression prune stage's L1-proximal SGD)."""
    return {}

  def display_name(self) -> str:
    return self.name or type(self).__name__
