"""MemSR's training task: the plain student with L1 and, optionally, bridged distillation from the
residual teacher (loss pieces and inits in distill.py)."""
from typing import Any

import jax
import jax.numpy as jnp

from memsr_jax.methods.memsr import convert
from memsr_jax.methods.memsr.distill import distill_loss
from memsr_jax.methods.memsr.distill import distill_weight
from memsr_jax.models import registry
from memsr_jax.models.plain import param_counts
from memsr_jax.train.task import Task

PyTree = Any


class MemSRDistillTask(Task):
  """Trains a plain student (winning or random init) with L1 + optional bridged distillation.

  Params: {"student": PlainNet params, "bridges": {"b00": …}} (bridges only when distilling).
  Extras: {"teacher": residual teacher params} (frozen; only when distilling).
  """
  name = "memsr_distill"

  def __init__(self, student_kwargs: dict, student_params: PyTree, *, spec: convert.TeacherSpec,
               teacher_params: PyTree | None, bridges: list | None, total_steps: int,
               lam: float = 0.3, eps: float = 1e-5, distill: bool = True,
               metadata: dict | None = None):
    if distill and (teacher_params is None or bridges is None):
      raise ValueError("MemSRDistillTask: distillation needs teacher params and bridges")
    self.student_kwargs = dict(student_kwargs)
    self.student = registry.build_model("plain", **self.student_kwargs)
    self.spec = spec
    self._student_params = student_params
    self._teacher_params = teacher_params
    self._bridges = bridges
    self.total_steps = int(total_steps)
    self.lam, self.eps, self.distill = float(lam), float(eps), bool(distill)
    self._metadata = dict(metadata or {})

  def init(self, rng):
    del rng  # the student's initialization is given (winning or random, made by the stages)
    to32 = lambda t: jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), t)
    params = {"student": to32(self._student_params)}
    extras = {}
    if self.distill:
      params["bridges"] = {f"b{i:02d}": to32(b) for i, b in enumerate(self._bridges)}
      extras["teacher"] = to32(self._teacher_params)
    return params, extras

  def _bridge_list(self, params):
    return [params["bridges"][k] for k in sorted(params["bridges"])]

  def loss_fn(self, params, extras, batch, rng, step):
    del rng
    lr, hr = batch["lr"], batch["hr"]
    sr, feats = self.student.apply({"params": params["student"]}, lr, capture=True)
    l1 = jnp.mean(jnp.abs(sr - hr))
    if not self.distill:
      return l1, {"l1": l1}
    sr_t, feats_t = convert.residual_plain_features(self.spec, extras["teacher"], lr,
                                                    precision=None)
    sr_t, feats_t = jax.lax.stop_gradient((sr_t, feats_t))
    dist = distill_loss(feats, sr, feats_t, sr_t, self._bridge_list(params))
    w = distill_weight(step, self.total_steps, self.lam, self.eps)
    return l1 + w * dist, {"l1": l1, "distill": dist, "distill_weight": w}

  def predict(self, params, extras, lr):
    del extras
    return self.student.apply({"params": params["student"]}, lr)

  def export(self, params, extras):
    del extras
    return "plain", dict(self.student_kwargs), params["student"]

  def metadata(self, params, extras):
    del extras
    return dict(self._metadata, **param_counts(params["student"]),
                widths=list(self.student_kwargs["widths"]))
