"""MemSR config: the `config.memsr` section, the paper's recipe for Plain-S/M/L/X at ×2/×3/×4 and
the teacher recipe (configs/memsr/*.py call these)."""
import ml_collections

from memsr_jax.train import config_lib

# student size → (teacher preset, fixed width or None, θ or None, student preset name)
SIZES = {
    "s": ("memsr_teacher_s", 64, None, "plain_s"),
    "m": ("memsr_teacher_m", 64, None, "plain_m"),
    "l": ("memsr_teacher_l", 100, None, "plain_l"),
    "x0.14": ("memsr_teacher_m", None, 0.14, "plain_x"),
    "x0.05": ("memsr_teacher_m", None, 0.05, "plain_x"),
}


def teacher_config(preset: str, arg: str) -> ml_collections.ConfigDict:
  """MemSR's teacher recipe (docs/MEMSR.md) for a residual teacher preset at x2/x3/x4: DIV2K,
  HR patch 192, batch 16, flips and transpose, Adam (0.9, 0.999), L1, 1e6 iterations,
  one-cycle LR with max 2e-4 (30 % warm-up, cosine)."""
  scale = {"x2": 2, "x3": 3, "x4": 4}.get(arg)
  if scale is None:
    raise ValueError(f"MemSR teacher configs take x2, x3 or x4, got {arg!r}")
  c = config_lib.base_config()
  c.scale = scale
  c.model.name = preset
  c.data.dataset = "div2k"
  c.data.lr_patch = 192 // scale  # HR patch 192 at every scale
  c.data.batch_size = 16
  c.val.dataset = "set5"
  c.val.every_steps = 10_000
  c.loss.name = "l1"
  c.optim.name = "adam"
  c.optim.b1, c.optim.b2 = 0.9, 0.999
  c.schedule.name = "one_cycle"
  c.schedule.lr = 2e-4
  c.schedule.warmup_frac = 0.3
  c.total_steps = 1_000_000
  c.log_every = 100
  c.ckpt_every = 10_000
  return c


def memsr_defaults(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Adds the MemSR keys to a base config (values as in the paper / official code)."""
  c.method = "memsr"
  c.teacher_checkpoint = ""  # a trained residual teacher (model checkpoint or workdir); "" = train
  m = c.memsr = ml_collections.ConfigDict()
  m.teacher = ml_collections.ConfigDict()
  m.teacher.name = "memsr_teacher_m"
  m.teacher.kwargs = ml_collections.ConfigDict()
  m.teacher.total_steps = c.total_steps
  m.teacher.lr = c.schedule.lr
  m.init = "winning"  # "winning" | "random"
  m.distill = True
  m.width = 64  # fixed student width (Plain-S/M/L) when theta is 0
  m.theta = 0.0  # > 0: adaptive widths (Plain-X), smallest r with relative residual < θ
  m.beta = 3.0  # mean shift strength
  m.shift_stat = "code"  # "code": mean of min(F_S, 0) over all entries | "paper": negatives only
  m.n_patches = 16  # training LR patches whose teacher features drive the SVDs
  m.max_samples = 32768  # random pixel columns per layer at most
  m.offset = 1000.0  # C of the +C skip copies in the plain teacher
  m.lam = 0.3  # distillation weight λ (× ε^α, α = step / total_steps)
  m.eps = 1e-5
  # Quantization-aware training of the final student for ONNX Runtime int8 (memsr_jax.train.qat):
  # steps 0 = off; else `workdir/qat` is written beside `workdir/model`.
  m.qat = ml_collections.ConfigDict()
  m.qat.steps = 0
  m.qat.lr = 1e-4
  m.qat.train_ranges = True  # False: ranges frozen at their calibration
  m.qat.calib_batches = 4
  return c


def paper(size: str = "m", scale: int = 4, init: str = "winning",
          distill: bool = True) -> ml_collections.ConfigDict:
  """The paper's recipe: DIV2K, HR patch 192, batch 16, Adam, L1, 1e6 steps, one-cycle 2e-4."""
  if size not in SIZES:
    raise ValueError(f"MemSR size must be one of {sorted(SIZES)}, got {size!r}")
  teacher, width, theta, student = SIZES[size]
  c = config_lib.base_config()
  c.scale = scale
  c.total_steps = 1_000_000
  c.data.dataset = "div2k"
  c.data.lr_patch = 192 // scale
  c.data.batch_size = 16
  c.val.dataset = "set5"
  c.val.every_steps = 50_000
  c.schedule.name = "one_cycle"
  c.schedule.lr = 2e-4
  c.schedule.warmup_frac = 0.3
  c.log_every = 1000
  c.ckpt_every = 20_000
  memsr_defaults(c)
  c.model.name = student  # documentation: the student's family (its widths come from the init)
  c.memsr.teacher.name = teacher
  c.memsr.teacher.total_steps = 1_000_000
  c.memsr.teacher.lr = 2e-4
  c.memsr.width = width or 64
  c.memsr.theta = theta or 0.0
  c.memsr.init = init
  c.memsr.distill = distill
  return c


def parse_arg(arg: str | None) -> dict:
  """"m,x4" / "x0.05,x2,random,nodistill" → paper() kwargs."""
  kw = {}
  for tok in [t.strip().lower() for t in (arg or "").split(",") if t.strip()]:
    if tok in SIZES:
      kw["size"] = tok
    elif tok in ("x2", "x3", "x4"):
      kw["scale"] = int(tok[1])
    elif tok in ("winning", "random"):
      kw["init"] = tok
    elif tok in ("distill", "nodistill"):
      kw["distill"] = tok == "distill"
    else:
      raise ValueError(f"unknown MemSR config token {tok!r}: use a size ({', '.join(SIZES)}), a "
                       "scale (x2, x3, x4), winning|random and distill|nodistill")
  return kw
