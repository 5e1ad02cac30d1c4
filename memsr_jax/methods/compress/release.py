"""The authors' released training recipe (Pikapi22/SRModelCompression, a BasicSR fork), as data.

Values were read from the release's options files and code, not copied:
  EDSR    options/train/EDSR/prune_EDSR_Mx2.yml, options/train/EDSR/distill_EDSR_Minix2_KD.yml
  SwinIR  options/train/SwinIR/prune_SwinIRlight_SRx2.yml,
          options/train/SwinIR/distill_SwinIRmini_SRx2_scratch_kd.yml
  losses  basicsr/losses/basic_loss.py (CharbonnierLoss eps, LaplacianPyramid, MultiLapLoss);
          basicsr/prune.py (how the pruning optimizer's phase lengths are set at run time).

`apply(config, model)` writes these values into a compression config (configs/compress/
{edsr,swinir}_x2.py use it). This table is typed by hand; `python -m memsr_jax.release_check`
(release_check.py) reads the option files themselves and compares them with the built configs, so
a transcription error here shows up there.
"""
from typing import Any

from memsr_jax.methods.compress.release_deviations import DEVIATIONS
from memsr_jax.methods.compress.release_deviations import EQUIVALENT
from memsr_jax.models import registry

RELEASE_FILES = {
    "edsr_baseline": ("BasicSR/options/train/EDSR/prune_EDSR_Mx2.yml",
                      "BasicSR/options/train/EDSR/distill_EDSR_Minix2_KD.yml"),
    "swinir_s": ("BasicSR/options/train/SwinIR/prune_SwinIRlight_SRx2.yml",
                 "BasicSR/options/train/SwinIR/distill_SwinIRmini_SRx2_scratch_kd.yml"),
}

# Keys are dotted config paths; "student.res_scale" is read off the built student's kwargs.
_COMMON = {
    "data.batch_size": 16,
    "compress.prune.l1": 1e-4,  # lambda_
    # BasicSR's Charbonnier is √(d² + 1e-12) on 0..1 images; ours is √(d² + ε²): ε = 1e-6.
    "compress.prune.charbonnier_eps": 1e-6,
    "compress.prune.optim.name": "OBProxSG",
    "compress.prune.optim.ema_decay": 0.999,
    "compress.prune.schedule.lr": 5e-3,
    "compress.distill.optim.name": "adam",
    "compress.distill.optim.ema_decay": 0.999,
    "compress.distill.total_steps": 800_000,
    "compress.distill.schedule.name": "multistep",
    "compress.distill.schedule.gamma": 0.5,
    "compress.distill.alpha": 0.1,  # stu_opt L1Loss loss_weight
    "compress.distill.levels": 5,  # LaplacianPyramid(max_level=5)
    "compress.distill.pyramid": "release",  # blur + 2×2 average pooling
    "compress.distill.level_weight_base": 2.0,  # Σ 2**i · L1 per level
}

RELEASE: dict[str, dict[str, Any]] = {
    "edsr_baseline": {
        **_COMMON,
        "seed": 10,  # manual_seed
        "data.lr_patch": 48,  # gt_size 96 at ×2
        "compress.prune.total_steps": 100_000,
        "compress.prune.schedule.name": "multistep",
        "compress.prune.schedule.milestones": (20_000,),
        "compress.prune.schedule.gamma": 0.5,
        "compress.shrink.student": "edsr_mini",
        "student.res_scale": 2.0,
        "compress.distill.schedule.lr": 1e-7,
        "compress.distill.schedule.milestones": (200_000,),
    },
    "swinir_s": {
        **_COMMON,
        "seed": 0,
        "data.lr_patch": 64,  # gt_size 128 at ×2
        "compress.prune.total_steps": 500_000,
        "compress.prune.schedule.name": "constant",  # MultiStepLR with milestones ~ (none)
        "compress.shrink.student": "swinir_mini",
        "compress.distill.schedule.lr": 1e-4,
        "compress.distill.schedule.milestones": (250_000, 400_000, 450_000),
    },
}

# Our side of the documented differences (release_deviations.py), by config key.
_OURS = {
    ("edsr_baseline", "compress.distill.schedule.lr"): DEVIATIONS["distill.lr@edsr_baseline"][1],
    ("edsr_baseline", "compress.prune.optim.name"): EQUIVALENT["prune.optimizer"][1],
    ("swinir_s", "compress.prune.optim.name"): EQUIVALENT["prune.optimizer"][1],
}


def our_value(model: str, key: str) -> Any:
  """The value the paper config carries: the release's, unless a documented difference says."""
  return _OURS.get((model, key), RELEASE[model][key])


def _student_kwargs(config) -> dict:
  s = config.compress.shrink
  kw = s.student_kwargs.to_dict() if hasattr(s.student_kwargs, "to_dict") else dict(
      s.student_kwargs)
  return registry.model_kwargs(s.student, scale=config.scale, **kw)


def _get(config, key: str) -> Any:
  if key == "student.res_scale":
    return _student_kwargs(config).get("res_scale")
  node = config
  for part in key.split("."):
    if part not in node:
      return None
    node = node[part]
  return node


def _set(config, key: str, value) -> None:
  if key == "student.res_scale":
    config.compress.shrink.student_kwargs.res_scale = value
    return
  *head, last = key.split(".")
  node = config
  for part in head:
    node = node[part]
  node[last] = value


def _check_model(model: str) -> None:
  if model not in RELEASE:
    raise ValueError(f"no released recipe for {model!r}; known: {sorted(RELEASE)}")


def apply(config, model: str):
  """Writes the release's recipe (with our documented deviations) into a compression config."""
  _check_model(model)
  with config.unlocked():
    for key in RELEASE[model]:
      if key == "student.res_scale" and _get(config, key) == our_value(model, key):
        continue  # the preset already matches: keep student_kwargs empty
      _set(config, key, our_value(model, key))
  return config
