"""The compression method's config section, on top of the engine's base config.

configs/compress/*.py call `compress_config(...)` and change what they need. Every stage key is
explained in stages.py's docstring and docs/COMPRESS.md.
"""
import ml_collections

from memsr_jax.methods.compress import prox
from memsr_jax.train import config_lib


def compress_config(model: str = "edsr_baseline", student: str = "edsr_mini", scale: int = 2,
                    prune_steps: int = 20_000, distill_steps: int = 500_000,
                    lr_patch: int = 48, batch_size: int = 16) -> ml_collections.ConfigDict:
  """The paper's recipe (docs/COMPRESS.md) for `model` → `student`; step counts are ours
  ([open])."""
  c = config_lib.base_config()
  c.method = "compress"
  c.scale = scale
  c.model.name = model
  c.model.init = ml_collections.ConfigDict({"kind": "random", "path": ""})
  c.data.lr_patch = lr_patch
  c.data.batch_size = batch_size
  c.val.dataset = "set5"
  c.val.every_steps = 5000

  cc = c.compress = ml_collections.ConfigDict()
  cc.stages = "prune,compress,distill"

  # Prune: Charbonnier + L1 proximal SGD (lr 5e-3, λ 1e-4) on every kernel; EMA for the exported
  # pruned model (densities are always measured on the raw weights).
  p = cc.prune = ml_collections.ConfigDict()
  p.total_steps = prune_steps
  p.l1 = 1e-4
  p.include = prox.DEFAULT_INCLUDE
  p.exclude = prox.DEFAULT_EXCLUDE
  p.charbonnier_eps = 1e-3  # on the 0..1 scale
  p.optim = ml_collections.ConfigDict({"name": "sgd_l1_prox", "ema_decay": 0.999,
                                       "grad_clip_norm": 0.0})
  p.schedule = ml_collections.ConfigDict({"name": "constant", "lr": 5e-3})

  s = cc.shrink = ml_collections.ConfigDict()
  s.mode = "fixed"  # "fixed": the paper's mini model; "rule": shrink.py's density rule
  s.student = student
  s.student_kwargs = ml_collections.ConfigDict()
  s.tau_block = 0.05
  s.tau_layer = 0.05

  # Distill: student from scratch, Adam 1e-4, L = L_lap(S, T) + 0.1·L1(S, y).
  d = cc.distill = ml_collections.ConfigDict()
  d.total_steps = distill_steps
  d.alpha = 0.1
  d.levels = 4
  d.level_weight_base = 2.0  # level i (0 = finest band) weighted base**i
  d.pyramid = "laplacian"  # "laplacian" (band-pass, our reading) | "gaussian" (first reading)
  d.optim = ml_collections.ConfigDict({"name": "adam", "ema_decay": 0.0})
  d.schedule = ml_collections.ConfigDict({"name": "constant", "lr": 1e-4})
  d.teacher = ml_collections.ConfigDict()
  d.teacher.source = "original"  # original | pruned | checkpoint | torch | none
  d.teacher.model = ""  # for checkpoint/torch: the teacher's preset ("" = config.model.name)
  d.teacher.model_kwargs = ml_collections.ConfigDict()
  d.teacher.path = ""
  return c


def cpu_imdn_distill(c: ml_collections.ConfigDict,
                     weights: str = "imdn/IMDN_x2.pth"
                     ) -> ml_collections.ConfigDict:
  """The CPU-scale distill stage: the official IMDN ×2 (PyTorch release) as teacher, Adam 1e-3
  with cosine decay, and equal pyramid level weights.

  Equal weights at this budget: with 2^i the coarsest (low-pass) level, whose L1 gradient does not
  shrink as its error does, drowns the detail levels (docs/COMPRESS.md, CPU-scale results).
  """
  d = c.compress.distill
  d.schedule.name = "cosine"
  d.schedule.lr = 1e-3
  d.level_weight_base = 1.0
  d.teacher.source = "torch"
  d.teacher.model = "imdn"
  d.teacher.path = weights
  return c
