"""Budgets as data: what each experiment trains and evaluates at `gpu8`, `cpu` and `smoke`.

gpu8: one H100/H200 slot of 8 minutes, compilation and evaluation included. Not run yet (no GPU
in the session that wrote it); the step counts come from throughputs quoted in issue 15:
EDSR-baseline ×2 (batch 16, LR 48) ≈ 180 steps/s, Plain-M ≈ 210 steps/s, fp32. Assumed
overheads per experiment: ≈ 25 s start-up (JAX init, decoding the 291 images), ≈ 20 s of XLA
compilation per training stage, ≈ 8 s per evaluated row (Set5 + Set14, one compile per image
shape). Each entry shows its arithmetic; the sum stays under 480 s with a margin.
cpu: the project's existing CPU-scale settings (configs/mssr/cpu.py, configs/compress/
cpu_edsr_imdn_x2.py, docs/MEMSR.md's CPU check); EDSR-baseline has none, so one is set here.
smoke: every stage in about a minute on 2 CPU cores: a few steps, tiny models, images decoded
when drawn (no cache of all 291), Set5's first image. Only a proof that the pipeline runs;
`shrunk` says what differs from the real thing.
"""

BUDGETS = ("gpu8", "cpu", "smoke")

# Which benchmark sets are evaluated: Set5 and Set14 always (Set14 when present), plus any of
# `extra` found under the data root; max_images = 0 means all images. The gpu8 arithmetic counts
# Set5 + Set14 only: B100 has 2 image sizes, but Urban100 / Manga109 have ~100 (one compilation
# each per row), so with those present give --sets set5,set14,b100 to stay in the slot.
EVAL = {
    "gpu8": {"sets": ("set5", "set14"), "extra": ("b100", "urban100", "manga109"),
             "max_images": 0},
    "cpu": {"sets": ("set5", "set14"), "extra": ("b100", "urban100", "manga109"),
            "max_images": 0},
    "smoke": {"sets": ("set5",), "extra": (), "max_images": 1},
}

SETTINGS = {
    "edsr_baseline_x2": {
        # EDSR recipe (Adam 1e-4, halved at 20/40/60/80 % of the steps, batch 16, LR patch 48).
        # gpu8: 50k steps / 180 steps/s = 278 s + 25 s start + 20 s compile + 2 rows × 8 s
        # ≈ 340 s (60k steps would be 333 s of training: 450 s in all, too close to 480).
        "gpu8": {"steps": 50_000, "batch": 16, "lr_patch": 48, "ckpt_every": 5_000,
                 "num_workers": 8},
        # EDSR-baseline at 0.21 steps/s (b16, p48) on 2 cores; LR patch 24 is ≈ 4× cheaper:
        # 1000 steps ≈ 20 min, Set5 + Set14 ≈ 3 min more.
        "cpu": {"steps": 1_000, "batch": 16, "lr_patch": 24, "ckpt_every": 250,
                "num_workers": 0},
        "smoke": {"steps": 20, "batch": 4, "lr_patch": 16, "ckpt_every": 10, "num_workers": 0,
                  "cache": False,
                  "model_kwargs": {"n_feats": 16, "n_resblocks": 2}},
    },
    "memsr_x4": {
        # Teacher-S (8 blocks) and Plain-S (18 convs) are about half of EDSR-baseline / Plain-M;
        # the assumed rates are conservative: 180 steps/s (teacher), 210 (student L1 only), 150
        # (student with the teacher's forward and the bridge losses). gpu8: teacher 12k / 180 =
        # 67 s; 2 distilled students 2 × 8k / 150 = 107 s; 2 L1-only students 2 × 8k / 210 = 76 s;
        # 5 compiles 100 s; winning init ≈ 10 s; 6 rows × 8 s; start 25 s → ≈ 433 s.
        "gpu8": {"teacher_steps": 12_000, "student_steps": 8_000, "batch": 16, "lr_patch": 48,
                 "ckpt_every": 2_000, "num_workers": 8, "teacher_lr": 2e-4, "student_lr": 2e-4,
                 "memory_hr": (720, 1280)},
        # docs/MEMSR.md's CPU check: teacher 3000 (one-cycle 6e-4), students 2000 (5e-4),
        # LR patch 24, batch 8 (its wall time is in docs/EXPERIMENTS.md).
        "cpu": {"teacher_steps": 3_000, "student_steps": 2_000, "batch": 8, "lr_patch": 24,
                "ckpt_every": 500, "num_workers": 0, "teacher_lr": 6e-4, "student_lr": 5e-4,
                "memory_hr": (720, 1280)},
        "smoke": {"teacher_steps": 10, "student_steps": 10, "batch": 4, "lr_patch": 12,
                  "ckpt_every": 10, "num_workers": 0, "cache": False, "teacher_lr": 1e-3,
                  "student_lr": 1e-3,
                  "memory_hr": (240, 320),
                  "teacher_kwargs": {"n_feats": 16, "n_resblocks": 2},
                  "width": 8, "n_patches": 4},
    },
    "mssr_x2": {
        # EDSR-baseline, 3 rounds of p = 0.5 (50 / 75 / 87.5 %) instead of the paper's 13 of 0.2:
        # every stage compiles once, and 13 + 14 stages would spend the slot compiling.
        # gpu8: dense 12k / 180 = 67 s; 3 rounds × 4k at ≈ 130 steps/s (SSD runs a partial
        # teacher forward) = 92 s; backward 4 × 1k / 180 = 22 s; 9 compiles 180 s; 4 levels ×
        # 8 s; start 25 s → ≈ 418 s. No dense model of matching size fits as well.
        "gpu8": {"model": "edsr_baseline", "model_kwargs": {}, "rounds": 3, "prune_fraction": 0.5,
                 "dense_steps": 12_000, "rewind_step": 1_000, "round_steps": 4_000,
                 "expand_steps": 1_000, "batch": 16, "lr_patch": 48, "lr": 2e-4,
                 "expand_lr": 1e-4, "ckpt_every": 2_000, "num_workers": 8, "match_levels": ()},
        # configs/mssr/cpu.py (edsr_mini 16 ch × 8 blocks, 4 rounds of 0.5), on T91 + BSD200,
        # plus a dense edsr_mini as large as the sparsest level, trained for dense_steps.
        "cpu": {"recipe": "cpu", "match_levels": (-1,), "num_workers": 0},
        "smoke": {"model": "edsr_mini", "model_kwargs": {"n_feats": 8, "n_resblocks": 2},
                  "rounds": 2, "prune_fraction": 0.5, "dense_steps": 8, "rewind_step": 2,
                  "round_steps": 4, "expand_steps": 2, "batch": 4, "lr_patch": 16, "lr": 1e-3,
                  "expand_lr": 5e-4, "ckpt_every": 4, "num_workers": 0, "cache": False,
                  "match_levels": (-1,)},
    },
    "compress_x2": {
        # EDSRmini (49.6k params) distilled from IMDN ×2 (694k): the student's step is tiny, the
        # teacher's forward dominates; assumed 300 steps/s with the teacher, 600 without.
        # gpu8: 2 × 25k / 300 = 167 s + 25k / 600 = 42 s; 3 compiles 60 s; 5 rows × 8 s;
        # start + IMDN import 35 s → ≈ 344 s.
        "gpu8": {"steps": 25_000, "batch": 16, "lr_patch": 48, "ckpt_every": 5_000,
                 "num_workers": 8},
        # configs/compress/cpu_edsr_imdn_x2.py: 1000 steps, batch 16, LR patch 32 (≈ 9 min with
        # IMDN, 4 without).
        "cpu": {"steps": 1_000, "batch": 16, "lr_patch": 32, "ckpt_every": 500, "num_workers": 0},
        "smoke": {"steps": 10, "batch": 4, "lr_patch": 16, "ckpt_every": 5, "num_workers": 0,
                  "cache": False},
    },
}

# What smoke changes beyond steps/batch/patch, recorded in results.json.
SMOKE_SHRUNK = {
    "edsr_baseline_x2": ["EDSR-baseline shrunk to 16 ch × 2 blocks"],
    "memsr_x4": ["Teacher-S shrunk to 16 ch × 2 blocks; Plain student width 8",
                 "winning init from 4 patches", "activation memory at a 320×240 output"],
    "mssr_x2": ["edsr_mini 8 ch × 2 blocks, 2 rounds"],
    "compress_x2": [],
}
SMOKE_COMMON = ["a few training steps (the models are not trained)",
                "evaluated on the first image of Set5 only"]


def settings(experiment: str, budget: str) -> dict:
  if budget not in BUDGETS:
    raise ValueError(f"unknown budget {budget!r}; use one of {BUDGETS}")
  if experiment not in SETTINGS:
    raise ValueError(f"unknown experiment {experiment!r}; use one of {sorted(SETTINGS)}")
  return dict(SETTINGS[experiment][budget])


def shrunk(experiment: str, budget: str) -> list[str]:
  return SMOKE_COMMON + SMOKE_SHRUNK[experiment] if budget == "smoke" else []
