"""compress_x2: EDSRmini ×2 distilled from a fixed teacher (Jiang et al., PCS 2024).

The release distills EDSRmini (16 ch, 8 blocks, res_scale 2) from a converged EDSR-baseline ×2.
Here the fixed teacher is the official IMDN ×2 weights (38.0 dB on Set5): a stand-in for that
converged EDSR-baseline, so that what is distilled is a strong model at every budget; `--teacher
CHECKPOINT` gives another fixed teacher instead. Arms, trained alike per seed (random student
init, same steps and data): the release's loss (5-level average-pooling Laplacian pyramid, levels
weighted 2^i, + 0.1·L1), plain L1 KD, and no teacher (L1 to the HR image). Adam halved at 25 % of
the steps, EMA 0.999 (configs/compress/edsr_x2.py), at the budget's steps and learning rate.
The prune stage (which picks the student's size) is not run: EDSRmini is the release's fixed
student.
"""
import pathlib

import ml_collections

from memsr_jax.checkpoints import layout
from memsr_jax.experiments import base
from memsr_jax.experiments import budgets
from memsr_jax.experiments import claims
from memsr_jax.experiments import exp_edsr
from memsr_jax.utils import cli

KD = "EDSRmini + KD (release loss)"
L1_KD = "EDSRmini + plain L1 KD"
NO_TEACHER = "EDSRmini, same steps, no teacher (L1)"
EDSR_ARCH = "EDSR-baseline ×2 (cost only, untrained)"
MINI_ARCH = "EDSRmini ×2 (cost only, untrained)"
PAPER = {"EDSR-baseline, mean Set5/Set14 ×2 (dB)": 35.78, "EDSRmini + KD (dB)": 35.44,
         "gap (dB)": 0.34}
PAPER_RATIO = 49_603 / 1_369_859  # EDSRmini / EDSR-baseline parameters (≈ 3.6 %)
PAPER_KD_GAIN = 35.44 - sum(exp_edsr.BICUBIC.values()) / 2  # over the published bicubic


def _recipe(s: dict, data_dir: str, teacher: tuple) -> ml_collections.ConfigDict:
  """configs/compress/edsr_x2.py (the release's recipe), distill stage alone, at the budget's
  scale; teacher = (source, model, path)."""
  c = base.config_file("compress/edsr_x2.py")
  n = s["distill_steps"]
  base.train_data(c, s, data_dir, n)
  c.compress.stages = "distill"
  c.model.init.kind = "random"
  d = c.compress.distill
  d.total_steps = n
  d.schedule.lr = s["distill_lr"]
  d.schedule.milestones = (max(1, n // 4),)  # release: 200k of 800k
  c.compress.shrink.student_kwargs = ml_collections.ConfigDict(dict(s.get("student_kwargs", {})))
  d.teacher.source, d.teacher.model, d.teacher.path = teacher
  c.total_steps = n
  return c


def check_teacher(teacher: str) -> None:
  """`--teacher` must be a ×2 model checkpoint or training workdir (metadata read without Orbax):
  checked before anything is created (UsageError otherwise)."""
  scale = layout.declared_scale(teacher)
  if scale is None:
    raise cli.UsageError(f"--teacher {teacher} holds no checkpoint metadata: give a ×2 model "
                         "checkpoint or training workdir")
  if scale != 2:
    raise cli.UsageError(f"--teacher {teacher} is a ×{scale} model; compress_x2 distills at ×2: "
                         "give a ×2 checkpoint, or drop --teacher to use the IMDN ×2 weights")


def _ratio(key: str):
  def measure(rows, extra):
    del extra
    e, m = (rows.get(EDSR_ARCH) or {}).get(key), (rows.get(MINI_ARCH) or {}).get(key)
    if not e or not m:
      return None
    return {"value": m / e, "target": PAPER_RATIO, "sense": "within",
            f"EDSRmini {key}": m, f"EDSR-baseline {key}": e}
  return measure


def compress_x2(budget: str, data_dir: str, weights_dir: str, workdir: str = "W",
                teacher: str = "") -> base.Experiment:
  del workdir
  s = budgets.settings("compress_x2", budget)
  n = s["distill_steps"]
  imdn = base.imdn_row(weights_dir, 2, "IMDN ×2 (official weights), the fixed teacher")
  if teacher:
    path = str(pathlib.Path(teacher).absolute())
    t_src, t_row, skip = ("checkpoint", "", path), base.Row(
        "the fixed teacher (--teacher)", "", ("checkpoint", path), note=path), ""
  else:
    t_src, t_row, skip = ("torch", "imdn", imdn.source[2]), imdn, imdn.note
  runs, rows = [], [base.Row("bicubic", "", ("bicubic",)), t_row]
  for name, loss, label in (("kd", "release", KD), ("kd_l1", "l1", L1_KD),
                            ("no_teacher", "none", NO_TEACHER)):
    c = _recipe(s, data_dir, ("none", "", "") if loss == "none" else t_src)
    if loss != "none":
      c.compress.distill.pyramid = loss
    runs.append(base.TrainRun(name, c, n, "" if loss == "none" else skip))
    row = base.Row(label, name, ("checkpoint", "distill"), n, measure=False)
    rows += [row, base.at_step(row, "distill", n, 0.5, claims.HALF_SUFFIX)]
    if name == "kd":
      rows.append(base.at_step(row, "distill", n, 0.75, claims.LATE_SUFFIX))
  rows += [base.Row(EDSR_ARCH, "", ("arch", "edsr_baseline", {}), evaluate=False),
           base.Row(MINI_ARCH, "", ("arch", "edsr_mini", {}), evaluate=False)]
  stand_in = ("the fixed teacher stands in for the converged EDSR-baseline the release distilled "
              "from")
  cl = [
      claims.Cost("params", "EDSRmini has ≈ 3.6 % of EDSR-baseline's parameters",
                  {"EDSRmini / EDSR-baseline params": PAPER_RATIO}, _ratio("params")),
      claims.Cost("macs", "EDSRmini needs ≈ 3.6 % of EDSR-baseline's MACs (1280×720 output)",
                  {"EDSRmini / EDSR-baseline MACs": PAPER_RATIO}, _ratio("macs")),
      claims.Relative("kd-vs-no-teacher", "distillation with the release's loss beats training "
                      f"without a teacher at equal steps ({stand_in})", PAPER, KD, NO_TEACHER),
      claims.Relative("pyramid-vs-l1-kd", "the release's 2^i-weighted Laplacian pyramid beats "
                      f"plain L1 KD at equal steps ({stand_in})", PAPER, KD, L1_KD),
      claims.Absolute("within-0.34", "EDSRmini + KD comes within 0.34 dB of EDSR-baseline "
                      f"(mean of Set5 and Set14 ×2; here of the fixed teacher: {stand_in})",
                      PAPER, base.gap_margin(KD, t_row.label, 0.34, 2),
                      [(KD, PAPER_KD_GAIN)]),
  ]
  return base.Experiment("compress_x2", 2, "Compression ×2: EDSRmini distilled from a fixed "
                         "teacher", cl, runs, rows, columns=("macs",), settings=s,
                         seeded=("kd", "kd_l1", "no_teacher"))
