"""compress_x2: EDSR-baseline ×2 → prune → shrink to EDSRmini → distill (Jiang et al., PCS 2024).

The teacher is EDSR-baseline ×2, trained here by edsr_baseline_x2's recipe (run `teacher`) or
given with `--teacher CHECKPOINT`. Prune: the release's recipe (configs/compress/edsr_x2.py:
L1-prox SGD 5e-3, λ 1e-4, Charbonnier ε 1e-6, EMA 0.999, LR halved at 20 % of the steps) at the
budget's steps. Shrink: the released EDSRmini (16 ch, 8 blocks, res_scale 2). Distill: the
release's loss (5-level average-pooling Laplacian pyramid, levels weighted 2^i, + 0.1·L1), Adam
halved at 25 % of the steps, EMA 0.999, at the budget's steps and learning rate.
"""
import pathlib

import ml_collections

from memsr_jax import cli
from memsr_jax.checkpoints import layout
from memsr_jax.experiments import base
from memsr_jax.experiments import budgets
from memsr_jax.experiments import exp_edsr
from memsr_jax.models import registry

TEACHER = "EDSR-baseline ×2 teacher"
KD = "EDSRmini + KD (release loss)"
PAPER = {"EDSR-baseline, mean Set5/Set14 ×2 (dB)": 35.78, "EDSRmini + KD (dB)": 35.44,
         "gap (dB)": 0.34, "EDSRmini params / EDSR-baseline": 49_603 / 1_369_859}


def _recipe(s: dict, data_dir: str, stages: str, teacher_dir: str) -> ml_collections.ConfigDict:
  """configs/compress/edsr_x2.py (the release's recipe) at the budget's scale."""
  c = base.config_file("compress/edsr_x2.py")
  base.train_data(c, s, data_dir)
  c.compress.stages = stages
  c.model.kwargs = ml_collections.ConfigDict(dict(s.get("teacher_kwargs", {})))
  c.model.init.kind = "checkpoint"
  c.model.init.path = teacher_dir
  p, d = c.compress.prune, c.compress.distill
  p.total_steps = s["prune_steps"]
  p.schedule.milestones = (max(1, int(0.2 * s["prune_steps"])),)  # release: 20k of 100k
  d.total_steps = s["distill_steps"]
  d.schedule.lr = s["distill_lr"]
  d.schedule.milestones = (max(1, int(0.25 * s["distill_steps"])),)  # release: 200k of 800k
  c.compress.shrink.student_kwargs = ml_collections.ConfigDict(dict(s.get("student_kwargs", {})))
  d.teacher.source = "checkpoint"
  d.teacher.path = teacher_dir
  c.total_steps = s["prune_steps"] if stages.startswith("prune") else s["distill_steps"]
  c.ckpt_every = min(s["ckpt_every"], c.total_steps)
  return c


def check_teacher(teacher: str, budget: str) -> None:
  """`--teacher` must hold the EDSR-baseline ×2 this budget prunes (model and hyperparameters from
  its metadata, read without Orbax): checked before anything is created (UsageError otherwise)."""
  path = pathlib.Path(teacher)
  meta = None
  for folder in [layout.model_folder(path), path, *reversed(layout.step_folders(path))]:
    try:
      meta = layout.read_meta(folder)
      break
    except (OSError, ValueError):
      continue
  if not isinstance(meta, dict) or "model" not in meta:
    raise cli.UsageError(f"--teacher {teacher} holds no checkpoint metadata: give an EDSR-baseline "
                         "×2 model checkpoint or training workdir")
  kwargs = dict(budgets.settings("compress_x2", budget).get("teacher_kwargs", {}))
  want = registry.build_model("edsr_baseline", scale=2, **kwargs)
  try:
    got = registry.build_model(meta["model"], **dict(meta.get("model_kwargs") or {}))
  except (TypeError, ValueError):
    got = None
  if got != want:
    raise cli.UsageError(
        f"--teacher {teacher} holds {meta['model']} {meta.get('model_kwargs')}; "
        f"compress_x2 at budget {budget} prunes edsr_baseline ×2 {kwargs or ''}".rstrip() +
        ": give that checkpoint, or drop --teacher to train one")


def _cost_ratio(rows, key):
  t, k = (rows.get(TEACHER) or {}).get(key), (rows.get(KD) or {}).get(key)
  return {f"EDSRmini / EDSR-baseline {key}": k / t} if t and k else {}


def compress_x2(budget: str, data_dir: str, weights_dir: str, workdir: str = "W",
                teacher: str = "") -> base.Experiment:
  s = budgets.settings("compress_x2", budget)
  runs = []
  if teacher:
    teacher_dir = str(pathlib.Path(teacher).absolute())
    teacher_row = ("checkpoint", teacher_dir)
  else:
    t = exp_edsr.teacher_run({**s, "steps": s["teacher_steps"],
                              "model_kwargs": s.get("teacher_kwargs", {})}, data_dir, "teacher")
    runs.append(t)
    teacher_dir, teacher_row = str(pathlib.Path(workdir).absolute() / "teacher"), (
        "checkpoint", ".")
  runs.append(base.Run("prune", _recipe(s, data_dir, "prune,compress", teacher_dir),
                       s["prune_steps"]))
  variants = (("kd", "release", KD), ("kd_l1", "l1", "EDSRmini + plain L1 KD"),
              ("no_teacher", "none", "EDSRmini, same steps, no teacher (L1)"))
  d_steps = s["distill_steps"]
  rows = [base.Row("bicubic", "", ("bicubic",)),
          base.Row(TEACHER, "" if teacher else "teacher", teacher_row,
                   None if teacher else s["teacher_steps"],
                   note=f"--teacher {teacher}" if teacher else ""),
          base.Row("pruned teacher (prune stage, EMA weights)", "prune", ("checkpoint", "prune"),
                   s["prune_steps"], note="densities: W/prune/prune/densities.json")]
  for name, loss, label in variants:
    c = _recipe(s, data_dir, "distill", teacher_dir)
    if loss == "none":
      c.compress.distill.teacher.source = "none"
    else:
      c.compress.distill.pyramid = loss
    runs.append(base.Run(name, c, d_steps))
    rows.append(base.Row(label, name, ("checkpoint", "distill"), d_steps))
  rows.append(base.imdn_row(weights_dir, 2, "IMDN ×2 (official weights), reference"))
  claim = base.psnr_gap_claim(
      "EDSRmini distilled from EDSR-baseline (release loss) comes within 0.34 dB of EDSR-baseline "
      "(mean of Set5 and Set14 ×2) at ≈ 4 % of its parameters and FLOPs", PAPER,
      "margin = 0.34 dB − (PSNR(teacher) − PSNR(EDSRmini + KD)), mean of Set5 and Set14 ×2; "
      "params and MACs ratios (1280×720 output) are reported beside it", ("kd",), 2, KD, TEACHER,
      0.34, extra=lambda rows: {**_cost_ratio(rows, "params"), **_cost_ratio(rows, "macs")})
  return base.Experiment("compress_x2", 2, "Compression ×2: EDSR-baseline → prune → EDSRmini + KD",
                         claim, runs, rows, columns=("macs",), settings=s)
