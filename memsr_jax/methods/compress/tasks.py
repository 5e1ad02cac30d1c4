"""Engine tasks of the compression method: prune (Charbonnier + L1 prox) and distill.

Losses are computed on the 0..1 scale (the engine's batches are 0..255): the paper's optimizer
settings (SGD lr 5e-3, λ = 1e-4; Adam 1e-4) were tuned for BasicSR, which trains on 0..1 images,
and the L1 penalty's strength relative to the data term depends on that scale.
"""
from typing import Any

import jax
import jax.numpy as jnp

from memsr_jax.methods.compress import lap_loss
from memsr_jax.methods.compress import prox
from memsr_jax.models import registry
from memsr_jax.train import losses
from memsr_jax.train.supervised import ModelTask
from memsr_jax.utils import pytrees

PyTree = Any


class PruneTask(ModelTask):
  """Fine-tunes a (pretrained) model with Charbonnier loss; sparsity comes from the optimizer
  (`sgd_l1_prox`). Logs the density of every pruned tensor and the total at each log step."""
  name = "compress_prune"

  def __init__(self, model_name: str, model_kwargs: dict, init_params: PyTree | None,
               include: str, exclude: str, charbonnier_eps: float = 1e-3,
               init_shape=(1, 16, 16, 3)):
    self.model_name, self.model_kwargs = model_name, dict(model_kwargs)
    self.model = registry.build_model(model_name, **self.model_kwargs)
    self.init_params = init_params
    self.include, self.exclude = include, exclude
    self.eps = charbonnier_eps
    self.init_shape = init_shape

  def init(self, rng):
    if self.init_params is not None:
      params = jax.tree.map(jnp.asarray, self.init_params)
    else:
      params = registry.init_params(self.model, rng, self.init_shape)
    return params, {}

  def optimizers(self):
    return {prox.PRUNE_OPTIMIZER: prox.optimizer_factory}

  def prune_mask(self, params) -> PyTree:
    return prox.select_leaves(params, self.include, self.exclude)

  def loss_fn(self, params, extras, batch, rng, step):
    del extras, rng, step
    sr = self.model.apply({"params": params}, batch["lr"])
    loss = losses.charbonnier(sr / 255.0, batch["hr"] / 255.0, self.eps)
    return loss, self.density_metrics(params)

  def density_metrics(self, params) -> dict:
    """density/<path> per pruned tensor and density/total (on the raw, non-EMA weights)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(params)
    mask = jax.tree_util.tree_leaves(self.prune_mask(params))
    out, nnz, size = {}, 0, 0
    for (path, w), m in zip(flat, mask):
      if m:
        k = jnp.count_nonzero(w)
        out[f"density/{pytrees.path_str(path)}"] = k / w.size
        nnz, size = nnz + k, size + w.size
    out["density/total"] = nnz / size
    return out


class DistillTask(ModelTask):
  """Trains a student from scratch: L = L_dis(S(x), T(x)) + α·L1(S(x), y) with a frozen teacher.

  With no teacher (`teacher_model=None`) the loss is plain L1(S(x), y): the baseline "same student,
  same steps, no distillation". The teacher runs deterministically (models are built with their
  deterministic defaults and called without rngs) and gets no gradient (its params are extras).
  """
  name = "compress_distill"

  def __init__(self, student_name: str, student_kwargs: dict, teacher_model=None,
               teacher_params: PyTree | None = None, alpha: float = 0.1, levels: int = 4,
               pyramid: str = "laplacian", level_weight_base: float = 2.0,
               init_shape=(1, 16, 16, 3)):
    if pyramid not in lap_loss.LOSSES:
      raise ValueError(f"distill pyramid {pyramid!r}; expected one of {sorted(lap_loss.LOSSES)}")
    self.dis_loss = lap_loss.LOSSES[pyramid]
    if (teacher_model is None) != (teacher_params is None):
      raise ValueError("give both teacher_model and teacher_params, or neither")
    self.model_name, self.model_kwargs = student_name, dict(student_kwargs)
    self.model = registry.build_model(student_name, **self.model_kwargs)
    self.teacher = teacher_model
    self.teacher_params = teacher_params
    self.alpha, self.levels, self.level_weight_base = alpha, levels, float(level_weight_base)
    self.init_shape = init_shape

  def init(self, rng):
    params = registry.init_params(self.model, rng, self.init_shape)
    extras = {}
    if self.teacher is not None:
      extras["teacher"] = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), self.teacher_params)
    return params, extras

  def loss_fn(self, params, extras, batch, rng, step):
    del rng, step
    sr = self.model.apply({"params": params}, batch["lr"]).astype(jnp.float32) / 255.0
    hr = batch["hr"] / 255.0
    l1 = jnp.mean(jnp.abs(sr - hr))
    if self.teacher is None:
      return l1, {"l1": l1}
    t = jax.lax.stop_gradient(self.teacher.apply({"params": extras["teacher"]}, batch["lr"]))
    t = t.astype(jnp.float32) / 255.0  # bf16 teachers too: the loss is float32
    dis = self.dis_loss(sr, t, self.levels, self.level_weight_base)
    return dis + self.alpha * l1, {"l1": l1, "lap": dis,
                                   "teacher_l1": jnp.mean(jnp.abs(t - hr))}

  def metadata(self, params, extras):
    return {**super().metadata(params, extras), "distilled": self.teacher is not None}
