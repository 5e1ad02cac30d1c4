"""memsr_x4: residual teacher → exact plain conversion → plain students (MemSR, ICML 2022).

Teacher-M / Plain-M (the paper's model) at gpu8, Teacher-S / Plain-S at cpu and smoke. Memory at
a 1920×1080 output (XLA's buffer assignment of one forward pass) for the teacher, the student,
EDSR-baseline and IMDN (official ×4 weights), compared with the paper's figures as ratios.
"""
import pathlib

from memsr_jax.experiments import base
from memsr_jax.experiments import budgets
from memsr_jax.methods.memsr import config as memsr_config

PAPER_MB = {"Plain-M": 161, "EDSR-baseline": 1108, "IMDN": 476}  # ×4, 1920×1080 output
PAPER_PSNR = {"Plain-M": (32.10, 28.57), "EDSR-baseline": (32.09, 28.58)}  # ×4 Set5 / Set14
EDSR_LABEL = "EDSR-baseline ×4 (memory only, untrained)"
IMDN_LABEL = "IMDN ×4 (official weights)"


def _peak(rows: dict, label: str):
  return ((rows.get(label) or {}).get("memory") or {}).get("xla_peak_bytes")


def _memory_figures(teacher: str, student: str):
  def figures(rows):
    t, s = _peak(rows, teacher), _peak(rows, student)
    e, i = _peak(rows, EDSR_LABEL), _peak(rows, IMDN_LABEL)
    out = {}
    if s and t:
      out["memory student / teacher"] = s / t
    if s and e:
      out["memory student / EDSR-baseline (paper Plain-M 161/1108 = 0.145)"] = s / e
    if i and e:
      out["memory IMDN / EDSR-baseline (paper 476/1108 = 0.430)"] = i / e
    return out
  return figures


def memsr_x4(budget: str, data_dir: str, weights_dir: str, workdir: str = "W") -> base.Experiment:
  """The teacher (its own run), then four plain students from it at equal steps."""
  s = budgets.settings("memsr_x4", budget)
  size = s.get("size", "s")
  T, P = f"Teacher-{size.upper()}", f"Plain-{size.upper()}"
  teacher_kwargs = dict(s.get("teacher_kwargs", {}))
  t = memsr_config.teacher_config(memsr_config.SIZES[size][0], "x4")
  base.train_data(t, s, data_dir)
  t.total_steps = s["teacher_steps"]
  t.schedule.lr = s["teacher_lr"]
  base.set_values(t.model.kwargs, teacher_kwargs)
  runs = [base.Run("teacher", t, s["teacher_steps"])]
  teacher_dir = str(pathlib.Path(workdir).absolute() / "teacher")
  students = (("winning_distill", "winning", True), ("winning", "winning", False),
              ("random_distill", "random", True), ("random", "random", False))
  for name, init, distill in students:
    c = memsr_config.paper(size=size, scale=4, init=init, distill=distill)
    base.train_data(c, s, data_dir)
    c.total_steps = s["student_steps"]
    c.schedule.lr = s["student_lr"]
    c.teacher_checkpoint = teacher_dir
    c.memsr.teacher.total_steps = s["teacher_steps"]  # informational: the teacher is loaded
    c.memsr.teacher.lr = s["teacher_lr"]
    base.set_values(c.memsr.teacher.kwargs, teacher_kwargs)
    if "width" in s:
      c.memsr.width = s["width"]
    if "n_patches" in s:
      c.memsr.n_patches = s["n_patches"]
    runs.append(base.Run(name, c, s["student_steps"]))
  n = s["student_steps"]
  teacher, student = f"{T} (residual)", f"{P}, winning init + distillation"
  rows = [
      base.Row("bicubic", "", ("bicubic",)),
      base.Row(teacher, "teacher", ("checkpoint", "."), s["teacher_steps"]),
      base.Row(f"{P}, winning init, before training", "winning_distill",
               ("checkpoint", "init/model"), 0, measure=False),
      base.Row(student, "winning_distill", ("checkpoint", "model"), n),
      # Same widths as the row above: the same memory (not measured again).
      base.Row(f"{P}, winning init only (L1)", "winning", ("checkpoint", "model"), n,
               measure=False),
      base.Row(f"{P}, random init + distillation", "random_distill", ("checkpoint", "model"), n),
      base.Row(f"{P}, random init only (L1)", "random", ("checkpoint", "model"), n,
               measure=False),
      base.Row(EDSR_LABEL, "", ("arch", "edsr_baseline", {}), evaluate=False),
      base.imdn_row(weights_dir, 4, IMDN_LABEL),
  ]
  claim = base.psnr_gap_claim(
      f"the plain student ({P}, winning init + distillation) matches its residual teacher's "
      "PSNR (read as: at most 0.1 dB below it) at a fraction of the memory (paper ×4: Plain-M "
      "32.10 / 28.57 dB vs EDSR-baseline 32.09 / 28.58 dB; 161 vs 1108 MB at a 1920×1080 output)",
      {"Plain-M − EDSR-baseline, mean Set5/Set14 ×4 (dB)": 0.0,
       "memory Plain-M / EDSR-baseline": PAPER_MB["Plain-M"] / PAPER_MB["EDSR-baseline"],
       "memory IMDN / EDSR-baseline": PAPER_MB["IMDN"] / PAPER_MB["EDSR-baseline"]},
      "margin = 0.1 dB − (PSNR(teacher) − PSNR(student)), mean of Set5 and Set14 ×4; memory "
      "ratios (XLA peak bytes) are reported beside it", ("winning_distill",), 4, student, teacher,
      0.1, extra=_memory_figures(teacher, student))
  return base.Experiment(
      "memsr_x4", 4, f"MemSR ×4: {T} → exact plain conversion → {P} students", claim, runs, rows,
      columns=("memory",), settings=s, memory_hr=tuple(s["memory_hr"]))
