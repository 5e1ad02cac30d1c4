"""Default training config: every key the engine reads, so method configs start from it.

A config file does `config = config_lib.base_config()` and then changes what it needs. Keys the
engine reads are listed here and validated by `validate()`; config_flags already rejects unknown
keys given on the command line (`--config.typo=1`).
"""
import json

import ml_collections

from memsr_jax.models import registry
from memsr_jax.train import optim
from memsr_jax.utils import cli

LOSSES = ("l1", "charbonnier", "mse")
SCHEDULES = ("constant", "one_cycle", "multistep", "cosine")


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.method = "supervised"  # what trains: memsr_jax.methods.METHODS
  c.seed = 0
  c.scale = 2
  c.total_steps = 1000
  # Compute dtype of the training step: "float32", or "bfloat16" for mixed precision (params,
  # optimizer state, EMA, loss, metrics and checkpoints stay float32; see utils.precision).
  c.dtype = "float32"

  # The network (a registry preset; `kwargs` overrides its hyperparameters).
  c.model = ml_collections.ConfigDict()
  c.model.name = "edsr_baseline"
  c.model.kwargs = ml_collections.ConfigDict()

  # Training data: memsr_jax.data.pipeline.make_train_loader, or "synthetic" (random patches, for
  # tests and benchmarks only).
  c.data = ml_collections.ConfigDict()
  c.data.dataset = "div2k"
  c.data.root = ""  # folder of HR images; "" = the dataset's default location
  c.data.lr_patch = 48  # LR patch side; HR patch = lr_patch * scale
  c.data.batch_size = 16  # global batch (all devices, all processes)
  c.data.num_workers = 0  # loader worker processes (0 = in-process threads)
  c.data.cache = True  # decode every training image once and keep it in memory
  # Images smaller than the HR patch (T91 has some at ×4): False fails naming them, True leaves
  # them out with a warning.
  c.data.skip_small = False

  # Validation on a benchmark set, by the evaluation protocol (Y-PSNR, border crop = scale).
  c.val = ml_collections.ConfigDict()
  c.val.dataset = "set5"  # "" disables validation
  c.val.root = ""
  c.val.every_steps = 5000  # 0: only at the end
  c.val.max_images = 0  # 0 = all

  # Loss for tasks that use the engine's pixel loss (the supervised task does).
  c.loss = ml_collections.ConfigDict()
  c.loss.name = "l1"
  c.loss.charbonnier_eps = 1e-3

  # Optimizer: "adam", "adamw", "sgd", or any name registered with optim.register_optimizer.
  c.optim = ml_collections.ConfigDict()
  c.optim.name = "adam"
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8
  c.optim.weight_decay = 0.0
  c.optim.momentum = 0.0  # sgd only
  c.optim.grad_clip_norm = 0.0  # 0 = off; else clip by global norm
  c.optim.ema_decay = 0.0  # 0 = off; else keep an EMA of the weights (used for eval/export)
  # The EMA decay ramps up as min(ema_decay, (1 + step) / (10 + step)) (train/optim.py), so
  # short runs do not evaluate weights that are still mostly the initialization.
  c.optim.ema_warmup = optim.EMA_WARMUP
  c.optim.extra = ml_collections.ConfigDict()  # free-form options for registered optimizers

  # Learning-rate schedule.
  c.schedule = ml_collections.ConfigDict()
  c.schedule.name = "one_cycle"
  c.schedule.lr = 2e-4  # peak (one_cycle) or base learning rate
  c.schedule.warmup_frac = 0.3  # one_cycle: fraction of steps spent warming up
  c.schedule.div_factor = 25.0  # one_cycle: initial lr = lr / div_factor
  c.schedule.final_div_factor = 1e4  # one_cycle: final lr = initial lr / final_div_factor
  c.schedule.milestones = (200_000, 400_000, 600_000, 800_000)  # multistep
  c.schedule.gamma = 0.5  # multistep: lr *= gamma at each milestone

  # Devices: mesh axes ("data", "model"); data = -1 takes every device. "model" must be 1.
  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1
  c.mesh.model = 1

  # Logging and checkpoints.
  c.log_every = 100
  c.ckpt_every = 5000
  c.keep_ckpts = 3  # keep the last N ...
  c.keep_best = True  # ... and the best by validation PSNR
  c.async_ckpt = True
  c.progress = True  # tqdm progress bar
  c.tensorboard = True
  c.nan_check_every = 0  # 0 = check at every log step (and always before saving)
  return c


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks the values the engine reads; raises `cli.UsageError` (a ValueError) saying what is
  wrong. (Which methods
  exist is for memsr_jax.methods.validate to say.)"""
  missing = [k for k in ("method", "seed", "scale", "total_steps", "model", "data", "optim",
                         "schedule", "loss", "mesh", "val") if k not in config]
  if missing:
    raise cli.UsageError(f"config is missing key(s) {missing}; start configs from "
                         "memsr_jax.train.config_lib.base_config()")
  ref = base_config()
  for group in ("data", "val", "loss", "optim", "schedule", "mesh", "model"):
    unknown = sorted(set(config[group].keys()) - set(ref[group].keys()))
    if unknown and group != "model":
      raise cli.UsageError(f"unknown config key(s) config.{group}.{unknown}; valid keys: "
                           f"{sorted(ref[group].keys())}")
  if config.loss.name not in LOSSES:
    raise cli.UsageError(f"config.loss.name={config.loss.name!r}; expected one of {LOSSES}")
  if config.schedule.name not in SCHEDULES:
    raise cli.UsageError(f"config.schedule.name={config.schedule.name!r}; expected one of "
                         f"{SCHEDULES}")
  if config.total_steps <= 0:
    raise cli.UsageError(f"config.total_steps must be positive, got {config.total_steps}")
  if config.data.batch_size <= 0:
    raise cli.UsageError(f"config.data.batch_size must be positive, got {config.data.batch_size}")
  if not 0.0 <= config.optim.ema_decay < 1.0:
    raise cli.UsageError(f"config.optim.ema_decay must be in [0, 1), got {config.optim.ema_decay}")
  if config.get("dtype", "float32") not in ("float32", "bfloat16"):
    raise cli.UsageError(f"config.dtype={config.dtype!r}; expected 'float32' or 'bfloat16'")
  if config.mesh.model != 1:
    raise cli.UsageError(
        f"config.mesh.model={config.mesh.model}: model parallelism is not implemented (params "
        "are replicated, so devices on the model axis would only repeat the same work); set "
        "config.mesh.model=1 and config.mesh.data=-1 to split the batch over every device")
  if config.scale not in (2, 3, 4, 8):
    raise cli.UsageError(f"config.scale must be 2, 3, 4 or 8, got {config.scale}")
  for key in ("log_every", "ckpt_every", "keep_ckpts"):  # periods: 0 would divide by zero
    if key in config and config[key] < 1:
      raise cli.UsageError(f"config.{key} must be at least 1, got {config[key]}")
  if config.get("nan_check_every") is not None and config.nan_check_every < 0:
    raise cli.UsageError(f"config.nan_check_every must be >= 0 (0: every log step), got "
                         f"{config.nan_check_every}")
  if config.model.get("name") in registry.MODEL_PRESETS:  # the kwargs' names and values
    kwargs = dict(as_dict(config.model.get("kwargs")))
    kwargs.setdefault("scale", config.scale)
    try:
      registry.model_kwargs(config.model.name, **kwargs)
    except ValueError as e:
      raise cli.UsageError(f"config.model.kwargs: {e}") from None


def as_dict(section) -> dict:
  """A config section (ConfigDict, mapping or None) as a plain dict, e.g. model kwargs."""
  if section is None:
    return {}
  return dict(section.to_dict()) if hasattr(section, "to_dict") else dict(section)


def to_json_dict(config: ml_collections.ConfigDict) -> dict:
  """The whole config as JSON types (what checkpoint metadata records)."""
  return json.loads(config.to_json_best_effort())
