"""The task protocol: what a method hands the training engine.

The engine (memsr_jax.train.loop) owns optimizers, sharding, checkpoints, logging and resume; a task
owns the model(s), the loss and what gets saved besides params. Tasks are plain Python objects whose
methods are pure in their array arguments, so the engine can jit them.
"""
from typing import Any, Protocol

PyTree = Any


class Task(Protocol):
  name: str

  def init(self, rng) -> tuple[PyTree, dict[str, PyTree]]:
    """(trainable params, extras). Extras: non-trainable pytrees (teacher params, masks, rewind
    states…), saved as their own checkpoint item and passed back to every call below."""

  def loss_fn(self, params: PyTree, extras: dict[str, PyTree], batch: dict, rng,
              step) -> tuple[Any, dict[str, Any]]:
    """Scalar loss and a dict of scalar metrics. batch: float32 0..255 {"lr", "hr"}."""

  def predict(self, params: PyTree, extras: dict[str, PyTree], lr) -> Any:
    """SR output (float32, 0..255) for validation."""

  def export(self, params: PyTree, extras: dict[str, PyTree]) -> tuple[str, dict, PyTree]:
    """(model preset name, model kwargs, params) of the deployable network, for eval/deploy."""


# Optional task methods the engine uses when present:
#   update_mask(params, extras) -> pytree of bool like params (False = frozen: no update, no
#                                   optimizer-state drift), or None.
#   post_update(params, extras) -> params      e.g. re-apply pruning masks after the optimizer step.
#   metadata(params, extras) -> dict           extra JSON metadata for checkpoints (e.g. widths).
