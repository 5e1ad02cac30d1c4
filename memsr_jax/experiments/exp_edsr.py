"""edsr_baseline_x2: EDSR-baseline ×2 on the 291 images, against VDSR trained on the same set."""
from memsr_jax.experiments import base
from memsr_jax.experiments import budgets

VDSR = {"set5": 37.53, "set14": 33.03}  # Kim et al. 2016, trained on the same 291 images
LABEL = "EDSR-baseline ×2 (291 images)"


def teacher_run(s: dict, data_dir: str, name: str = "edsr") -> base.Run:
  """EDSR-baseline ×2 by the EDSR recipe at the budget's steps (also compress_x2's teacher)."""
  c = base.config_file("edsr/baseline.py", "x2")
  base.train_data(c, s, data_dir)
  c.total_steps = s["steps"]
  # The recipe halves the LR at 20/40/60/80 % of its 1M steps; same fractions of ours.
  c.schedule.milestones = tuple(int(s["steps"] * f) for f in (0.2, 0.4, 0.6, 0.8))
  base.set_values(c.model.kwargs, s.get("model_kwargs", {}))
  return base.Run(name, c, s["steps"])


def edsr_baseline_x2(budget: str, data_dir: str, weights_dir: str) -> base.Experiment:
  del weights_dir
  s = budgets.settings("edsr_baseline_x2", budget)
  rows = [
      base.Row("bicubic", "", ("bicubic",)),
      base.Row(LABEL, "edsr", ("checkpoint", "."), s["steps"]),
      base.Row("VDSR, published (291 images)", "", ("published", VDSR),
               note="anchor: Kim et al. 2016"),
      base.Row("bicubic, published", "", ("published", {"set5": 33.68, "set14": 30.33}),
               note="anchor"),
  ]
  claim = base.psnr_gap_claim(
      "EDSR-baseline ×2 trained on the 291 images (T91 + BSD200) is at least as good as VDSR "
      "trained on the same images (37.53 / 33.03 dB on Set5 / Set14)",
      {"VDSR Set5 (dB)": 37.53, "VDSR Set14 (dB)": 33.03}, "margin = PSNR(EDSR-baseline) − "
      "PSNR(VDSR, published), mean of Set5 and Set14", ("edsr",), 2, LABEL,
      "VDSR, published (291 images)", 0.0)
  return base.Experiment("edsr_baseline_x2", 2, "EDSR-baseline ×2 trained on T91 + BSD200",
                         claim, [teacher_run(s, data_dir)], rows, settings=s)
