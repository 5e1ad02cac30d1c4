"""edsr_baseline_x2: a calibration row, not a paper's claim: EDSR-baseline ×2 trained here on the
291 images, beside VDSR trained on the same images and the published bicubic figures."""
from memsr_jax.experiments import base
from memsr_jax.experiments import budgets
from memsr_jax.experiments import claims

VDSR = {"set5": 37.53, "set14": 33.03}  # Kim et al. 2016, trained on the same 291 images
BICUBIC = {"set5": 33.66, "set14": 30.24}  # ×2, the figures the SR papers print
EDSR_PAPER = {"set5": 37.99, "set14": 33.57}  # EDSR-baseline ×2 (DIV2K), the EDSR paper
LABEL = "EDSR-baseline ×2 (291 images)"
VDSR_LABEL = "VDSR, published (291 images)"


def paper_gain(paper: dict, sets=base.CLAIM_SETS) -> float:
  """The paper's mean PSNR over `sets` minus the published bicubic's."""
  return sum(paper[s] - BICUBIC[s] for s in sets) / len(sets)


def teacher_run(s: dict, data_dir: str, name: str = "edsr") -> base.TrainRun:
  """EDSR-baseline ×2 by the EDSR recipe at the budget's steps."""
  c = base.config_file("edsr/baseline.py", "x2")
  base.train_data(c, s, data_dir, s["steps"])
  c.total_steps = s["steps"]
  # The recipe halves the LR at 20/40/60/80 % of its 1M steps; same fractions of ours.
  c.schedule.milestones = tuple(max(1, int(s["steps"] * f)) for f in (0.2, 0.4, 0.6, 0.8))
  base.set_values(c.model.kwargs, s.get("model_kwargs", {}))
  return base.TrainRun(name, c, s["steps"])


def edsr_baseline_x2(budget: str, data_dir: str, weights_dir: str) -> base.Experiment:
  del weights_dir
  s = budgets.settings("edsr_baseline_x2", budget)
  n = s["steps"]
  edsr = base.Row(LABEL, "edsr", ("checkpoint", "."), n)
  rows = [
      base.Row("bicubic", "", ("bicubic",), note="our measurement (MATLAB bicubic, Y channel)"),
      base.Row("bicubic, published", "", ("published", BICUBIC),
               note="the figures the SR papers print"),
      edsr, base.at_step(edsr, ".", n, 0.75, claims.LATE_SUFFIX),
      base.Row(VDSR_LABEL, "", ("published", VDSR), note="Kim et al. 2016"),
  ]
  vs_vdsr = claims.Absolute(
      "edsr-vs-vdsr", "calibration, not a paper's claim: EDSR-baseline ×2 trained on the 291 "
      "images (T91 + BSD200) is at least as good as VDSR trained on the same images",
      {"VDSR Set5 (dB)": 37.53, "VDSR Set14 (dB)": 33.03},
      base.gap_margin(LABEL, VDSR_LABEL, 0.0, 2), [(LABEL, paper_gain(EDSR_PAPER))],
      source="ours")
  return base.Experiment("edsr_baseline_x2", 2, "EDSR-baseline ×2 trained on T91 + BSD200",
                         [vs_vdsr], [teacher_run(s, data_dir)], rows, settings=s)
