"""Budgets as data: what each experiment trains and evaluates at `gpu8`, `cpu` and `smoke`.

gpu8: one H100/H200 slot of 8 minutes, compilation and evaluation included. Not run yet; the
step counts come from throughputs quoted before any GPU run of this project:
EDSR-baseline ×2 (batch 16, LR 48) ≈ 180 steps/s, Plain-M ≈ 210 steps/s, fp32. Assumed
overheads per experiment: ≈ 25 s start-up (JAX init, decoding the 291 images), ≈ 20 s of XLA
compilation per training stage, ≈ 8 s per evaluated row (Set5 + Set14, one compile per image
shape). Each entry shows its arithmetic; the sums stay under 480 s with a margin, except
mssr_x2's (≈ 680 s: it needs a second slot, where it resumes).
cpu: short CPU-scale schedules (configs/mssr/cpu.py; for the others, set here) with 2 seeds of
each claim's deciding runs (SEEDS), sized so that all four fit in one working session on a 2-core
machine: about 2 hours of CPU in all (measured figures: docs/EXPERIMENTS.md), with
`compress_x2 --teacher` given edsr_baseline_x2's seed-0 run instead of training its own.
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
        # 500 steps ≈ 10 min per seed, Set5 + Set14 ≈ 3 min more.
        "cpu": {"steps": 500, "batch": 16, "lr_patch": 24, "ckpt_every": 250,
                "num_workers": 0},
        "smoke": {"steps": 20, "batch": 4, "lr_patch": 16, "ckpt_every": 10, "num_workers": 0,
                  "cache": False,
                  "model_kwargs": {"n_feats": 16, "n_resblocks": 2}},
    },
    "memsr_x4": {
        # gpu8: Teacher-M / Plain-M (the paper's model: 16 blocks, 34 + 1 convs). Assumed: 180
        # steps/s (teacher, as EDSR-baseline), 210 (Plain-M, L1 only), 130 (Plain-M with the
        # teacher's forward and the bridge losses). Teacher 12k / 180 = 67 s; 2 distilled students
        # 2 × 6k / 130 = 92 s; 2 L1-only students 2 × 6k / 210 = 57 s; 5 compiles 100 s; winning
        # init ≈ 20 s; 7 evaluated rows × 8 s; 4 memory compiles at 1920×1080 ≈ 20 s; start 25 s
        # → ≈ 437 s.
        "gpu8": {"size": "m", "teacher_steps": 12_000, "student_steps": 6_000, "batch": 16,
                 "lr_patch": 48, "ckpt_every": 2_000, "num_workers": 8, "teacher_lr": 2e-4,
                 "student_lr": 2e-4, "memory_hr": (1080, 1920)},
        # A third of docs/MEMSR.md's CPU check (Teacher-S 3000, one-cycle 6e-4; Plain-S students
        # 2000, 5e-4): Teacher-S 1000, students 600, LR patch 24, batch 8.
        "cpu": {"size": "s", "teacher_steps": 1_000, "student_steps": 600, "batch": 8,
                "lr_patch": 24, "ckpt_every": 500, "num_workers": 0, "teacher_lr": 6e-4,
                "student_lr": 5e-4, "memory_hr": (1080, 1920)},
        "smoke": {"size": "s", "teacher_steps": 10, "student_steps": 10, "batch": 4,
                  "lr_patch": 12, "ckpt_every": 10, "num_workers": 0, "cache": False,
                  "teacher_lr": 1e-3, "student_lr": 1e-3, "memory_hr": (240, 320),
                  "teacher_kwargs": {"n_feats": 16, "n_resblocks": 2},
                  "width": 8, "n_patches": 4},
    },
    "mssr_x2": {
        # EDSR-baseline, 4 rounds of p = 0.5 (50 / 75 / 87.5 / 93.75 % of the body convs) for the
        # paper's ≈ 94 % (13 rounds of 0.2: every stage compiles once, 13 + 14 stages would spend
        # the slot compiling). Scalable: dense 8k / 180 = 44 s; 4 rounds × 2k at ≈ 130 steps/s
        # (SSD runs a partial teacher forward) = 62 s; backward 5 × 500 / 180 = 14 s; 11 compiles
        # 220 s. Dense rival (≈ 24 ch, 18.5k steps at ≈ 400/s) 46 s + 20 s; ticket (8k dense + one
        # round of 10.5k at 180/s) 102 s + 60 s; 10 rows × 8 s; start + IMDN 35 s → ≈ 680 s:
        # more than one slot (a second invocation resumes and finishes it).
        "gpu8": {"model": "edsr_baseline", "model_kwargs": {}, "rounds": 4, "prune_fraction": 0.5,
                 "dense_steps": 8_000, "rewind_step": 1_000, "round_steps": 2_000,
                 "expand_steps": 500, "batch": 16, "lr_patch": 48, "lr": 2e-4,
                 "expand_lr": 1e-4, "ckpt_every": 2_000, "num_workers": 8},
        # configs/mssr/cpu.py (edsr_mini 16 ch × 8 blocks, 4 rounds of 0.5: 3350 steps), on T91 +
        # BSD200; the dense rival and the ticket train the same 3350 steps.
        "cpu": {"recipe": "cpu", "num_workers": 0},
        "smoke": {"model": "edsr_mini", "model_kwargs": {"n_feats": 8, "n_resblocks": 2},
                  "rounds": 2, "prune_fraction": 0.5, "dense_steps": 8, "rewind_step": 2,
                  "round_steps": 4, "expand_steps": 2, "batch": 4, "lr_patch": 16, "lr": 1e-3,
                  "expand_lr": 5e-4, "ckpt_every": 4, "num_workers": 0, "cache": False},
    },
    "compress_x2": {
        # Teacher EDSR-baseline ×2 (edsr_baseline_x2's recipe) → prune (release recipe) → EDSRmini
        # distilled three ways. The release distills at Adam 1e-4 for 800k steps; these short
        # schedules use distill_lr instead (same shape: halved at 25 % of the steps).
        # gpu8: teacher 20k / 180 = 111 s; prune 4k at ≈ 150 steps/s = 27 s; 2 distills with the
        # teacher's forward 2 × 15k / 350 = 86 s; no teacher 15k / 600 = 25 s; 5 compiles 100 s;
        # 7 rows × 8 s; start + IMDN import 35 s → ≈ 440 s.
        "gpu8": {"teacher_steps": 20_000, "prune_steps": 4_000, "distill_steps": 15_000,
                 "distill_lr": 5e-4, "batch": 16, "lr_patch": 48, "ckpt_every": 5_000,
                 "num_workers": 8},
        # Teacher as edsr_baseline_x2 at cpu (500 steps; or --teacher), prune 200 steps, three
        # distills of 400 (≈ 4 min each with the teacher), + 4 min per extra seed.
        "cpu": {"teacher_steps": 500, "prune_steps": 200, "distill_steps": 400,
                "distill_lr": 1e-3, "batch": 16, "lr_patch": 24, "ckpt_every": 250,
                "num_workers": 0},
        "smoke": {"teacher_steps": 10, "prune_steps": 4, "distill_steps": 6, "distill_lr": 1e-3,
                  "batch": 4, "lr_patch": 16, "ckpt_every": 5, "num_workers": 0, "cache": False,
                  "teacher_kwargs": {"n_feats": 16, "n_resblocks": 2},
                  "student_kwargs": {"n_feats": 8, "n_resblocks": 2}},
    },
}

# Seeds of the runs that decide each claim (--seeds overrides): the spread of two seeds is the
# noise band of the verdict (claims.py); one seed gives no band.
SEEDS = {"gpu8": 1, "cpu": 2, "smoke": 1}

# What smoke changes beyond steps/batch/patch, recorded in results.json.
SMOKE_SHRUNK = {
    "edsr_baseline_x2": ["EDSR-baseline shrunk to 16 ch × 2 blocks"],
    "memsr_x4": ["Teacher-S shrunk to 16 ch × 2 blocks; Plain student width 8",
                 "winning init from 4 patches", "activation memory at a 320×240 output"],
    "mssr_x2": ["edsr_mini 8 ch × 2 blocks, 2 rounds (75 % of the body, not ≈ 94 %)"],
    "compress_x2": ["EDSR-baseline teacher shrunk to 16 ch × 2 blocks; EDSRmini to 8 ch × 2 "
                    "blocks"],
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
