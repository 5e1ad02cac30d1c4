"""memsr_x4: residual teacher → exact plain conversion → plain students (MemSR, ICML 2022).

Teacher-M / Plain-M (the paper's model) at gpu8, Teacher-S / Plain-S at cpu and smoke. Memory at
a 1920×1080 output (XLA's buffer assignment of one forward pass) for the teacher, the student,
EDSR-baseline and IMDN (official ×4 weights), compared with the paper's figures as ratios.
"""
import pathlib

from memsr_jax.experiments import base
from memsr_jax.experiments import budgets
from memsr_jax.experiments import claims
from memsr_jax.methods.memsr import config as memsr_config

PAPER_MB = {"Plain-M": 161, "EDSR-baseline": 1108, "IMDN": 476}  # ×4, 1920×1080 output
PAPER_PSNR = {"Plain-M": (32.10, 28.57), "EDSR-baseline": (32.09, 28.58)}  # ×4 Set5 / Set14
BICUBIC_X4 = (28.42, 26.00)  # ×4 Set5 / Set14, the figures the SR papers print
EDSR_LABEL = "EDSR-baseline ×4 (memory only, untrained)"
PLAIN_M_LABEL = "Plain-M ×4 (memory only, untrained)"
IMDN_LABEL = "IMDN ×4 (official weights)"
CONVERSION_LIMIT = 1e-3  # max |plain − residual| on 0..255


def _peak(rows: dict, label: str):
  return ((rows.get(label) or {}).get("memory") or {}).get("xla_peak_bytes")


def _memory_ratio(label: str, paper_label: str):
  def measure(rows, extra):
    del extra
    m, e = _peak(rows, label), _peak(rows, EDSR_LABEL)
    if not m or not e:
      return None
    return {"value": m / e, "target": PAPER_MB[paper_label] / PAPER_MB["EDSR-baseline"],
            "sense": "within", f"{label} peak (MB)": m / 2**20,
            "EDSR-baseline ×4 peak (MB)": e / 2**20}
  return measure


def _conversion(rows, extra):
  del rows
  conv = (extra or {}).get("conversion")
  if not conv:
    return None
  return {"value": conv["max_abs_diff_fp32_random_input"], "target": CONVERSION_LIMIT,
          "sense": "at most"}


def _gain(paper: tuple) -> float:
  return (paper[0] - BICUBIC_X4[0] + paper[1] - BICUBIC_X4[1]) / 2


def _claims(P: str, teacher: str, labels: dict) -> list:
  student, w, rd, r = (labels[k] for k in ("winning_distill", "winning", "random_distill",
                                            "random"))
  paper_memory = {"Plain-M (MB)": 161, "IMDN (MB)": 476, "EDSR-baseline (MB)": 1108}
  cl = [
      claims.Cost("conversion-exact", "the residual teacher converts exactly to a plain network "
                  f"(max |plain − residual| ≤ {CONVERSION_LIMIT:g} on 0..255)",
                  {"exact": "yes"}, _conversion),
      claims.Cost("memory-plain-m", "Plain-M needs 161 / 1108 of EDSR-baseline's memory at a "
                  "1920×1080 output (×4)", paper_memory, _memory_ratio(PLAIN_M_LABEL, "Plain-M")),
      claims.Cost("memory-imdn", "IMDN needs 476 / 1108 of EDSR-baseline's memory at a "
                  "1920×1080 output (×4)", paper_memory, _memory_ratio(IMDN_LABEL, "IMDN")),
      claims.Relative("winning-vs-random-kd", "the winning initialization beats random "
                      "initialization at equal steps, with distillation",
                      {"Urban100 ×4 (dB)": "random 25.30 → winning 25.97 (ablation)"},
                      student, rd),
      claims.Relative("winning-vs-random-l1", "the winning initialization beats random "
                      "initialization at equal steps, without distillation (L1 only)",
                      {"Urban100 ×4 (dB)": "random 25.30 → winning 25.97 (ablation)"}, w, r),
      claims.Relative("distill-noninferior", "from the winning init, distillation is "
                      "non-inferior to L1 alone (mean(d) − t·SE > −0.05 dB)",
                      {"Urban100 ×4 (dB)": "winning 25.97 → + distillation 25.99"}, student, w,
                      test="noninferior"),
      claims.Absolute("student-within-teacher", f"the plain student ({P}, winning init + "
                      "distillation) is at most 0.1 dB below its residual teacher (paper ×4: "
                      "Plain-M 32.10 / 28.57 vs EDSR-baseline 32.09 / 28.58 dB)",
                      {"Plain-M − EDSR-baseline, mean Set5/Set14 ×4 (dB)": 0.005},
                      base.gap_margin(student, teacher, 0.1, 4),
                      [(teacher, _gain(PAPER_PSNR["EDSR-baseline"])),
                       (student, _gain(PAPER_PSNR["Plain-M"]))]),
  ]
  return cl


def memsr_x4(budget: str, data_dir: str, weights_dir: str, workdir: str = "W") -> base.Experiment:
  """The teacher, then four plain students from it at equal steps; every run per seed."""
  s = budgets.settings("memsr_x4", budget)
  size = s.get("size", "s")
  T, P = f"Teacher-{size.upper()}", f"Plain-{size.upper()}"
  teacher_kwargs = dict(s.get("teacher_kwargs", {}))
  nt, n = s["teacher_steps"], s["student_steps"]
  t = memsr_config.teacher_config(memsr_config.SIZES[size][0], "x4")
  base.train_data(t, s, data_dir, nt)
  t.total_steps = nt
  t.schedule.lr = s["teacher_lr"]
  base.set_values(t.model.kwargs, teacher_kwargs)
  runs = [base.TrainRun("teacher", t, nt)]
  students = (("winning_distill", "winning", True), ("winning", "winning", False),
              ("random_distill", "random", True), ("random", "random", False))
  for name, init, distill in students:
    c = memsr_config.paper(size=size, scale=4, init=init, distill=distill)
    base.train_data(c, s, data_dir, n)
    c.total_steps = n
    c.schedule.lr = s["student_lr"]
    c.teacher_checkpoint = str(pathlib.Path(workdir).absolute() / "teacher")
    c.memsr.teacher.total_steps = nt  # informational: the teacher is loaded
    c.memsr.teacher.lr = s["teacher_lr"]
    base.set_values(c.memsr.teacher.kwargs, teacher_kwargs)
    if "width" in s:
      c.memsr.width = s["width"]
    if "n_patches" in s:
      c.memsr.n_patches = s["n_patches"]
    runs.append(base.TrainRun(name, c, n))
  teacher = base.Row(f"{T} (residual)", "teacher", ("checkpoint", "."), nt)
  labels = {"winning_distill": f"{P}, winning init + distillation",
            "winning": f"{P}, winning init only (L1)",
            "random_distill": f"{P}, random init + distillation",
            "random": f"{P}, random init only (L1)"}
  rows = [base.Row("bicubic", "", ("bicubic",)), teacher,
          base.at_step(teacher, ".", nt, 0.75, claims.LATE_SUFFIX),
          base.Row(f"{P}, winning init, before training", "winning_distill",
                   ("checkpoint", "init/model"), 0, measure=False)]
  for name, label in labels.items():
    # Same widths for every student: memory is measured once (the distilled winning one).
    row = base.Row(label, name, ("checkpoint", "model"), n, measure=name == "winning_distill")
    rows += [row, base.at_step(row, "student", n, 0.5, claims.HALF_SUFFIX)]
    if name == "winning_distill":
      rows.append(base.at_step(row, "student", n, 0.75, claims.LATE_SUFFIX))
  rows += [base.Row(PLAIN_M_LABEL, "", ("arch", "plain_m", {}), evaluate=False),
           base.Row(EDSR_LABEL, "", ("arch", "edsr_baseline", {}), evaluate=False),
           base.imdn_row(weights_dir, 4, IMDN_LABEL)]
  cl = _claims(P, teacher.label, labels)
  return base.Experiment(
      "memsr_x4", 4, f"MemSR ×4: {T} → exact plain conversion → {P} students", cl, runs, rows,
      columns=("memory",), settings=s, memory_hr=tuple(s["memory_hr"]),
      seeded=("teacher", *labels))
