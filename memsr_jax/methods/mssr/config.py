"""MSSR config: the `config.mssr` section and the recipes configs/mssr/*.py start from."""
import ml_collections

from memsr_jax.methods.mssr import masks
from memsr_jax.train import config_lib


def default_mssr_config() -> ml_collections.ConfigDict:
  """config.mssr defaults (documented in docs/MSSR.md)."""
  m = ml_collections.ConfigDict()
  m.prunable = masks.DEFAULT_PRUNABLE  # regex over param paths ('body_0/conv1/kernel')
  m.prune_fraction = 0.2  # of the remaining prunable weights, per round
  m.rounds = 13  # K; 1 − 0.8^13 ≈ 94.5 % sparsity
  m.sparsities = ()  # explicit level sparsities (overrides fraction/rounds)
  m.dense_steps = 1000  # dense training, rewind step included
  m.rewind_step = 100  # k: the rewind state is the dense params after k steps
  m.rewind_to = "rewind"  # "rewind" (step k) | "init" (the initial params) | "random" (a fresh
  # random initialization): the last two are the paper's ablations
  m.round_steps = 1000  # retraining steps per round
  m.expand = True  # run the backward stage
  m.expand_steps = 500  # fine-tuning steps per level in the backward stage
  m.expand_lr = 0.0  # 0: config.schedule.lr
  # Start values of the re-enabled weights: "zero" (the larger network starts as exactly the
  # smaller one, so fine-tuning can only add to it) or "forward" (their values in the
  # forward-stage level-k network, which was trained around other shared weights).
  m.expand_init = "zero"
  m.ssd_weight = 1.0  # 0 disables stochastic self-distillation
  m.ssd_target = "hr"  # "hr" | "teacher"
  m.ssd_depths = ()  # () = uniform over 1..N−1 residual blocks
  m.eval_sets = ("set5",)  # per-level PSNR after training; () to skip
  m.eval_root = ""  # "" = config.val.root
  return m


def edsr_baseline_div2k(scale: int) -> ml_collections.ConfigDict:
  """EDSR-baseline (64 ch × 16 blocks) on DIV2K, for one GPU/TPU host.

  Dense training follows EDSR (Adam 1e-4…2e-4, batch 16, 48-px LR patches) but with a cosine
  decay per stage, since every round restarts from the rewind state. 13 rounds of p = 0.2 reach
  94.5 % sparsity of the body convs (the paper's smallest model). Budget: 300k dense +
  13 × 60k rounds + 13 × 20k backward = 1.34M steps; lower round_steps for a faster, weaker
  schedule.
  """
  c = config_lib.base_config()
  c.method = "mssr"
  c.scale = scale
  c.model.name = "edsr_baseline"
  c.data.dataset = "div2k"
  c.data.root = ""  # set to the folder holding DIV2K (or $MEMSR_DATA_DIR)
  c.data.lr_patch = 48
  c.data.batch_size = 16
  c.data.num_workers = 4
  c.val.dataset = "set5"
  c.val.every_steps = 20_000
  c.schedule.name = "cosine"
  c.schedule.lr = 2e-4
  c.optim.name = "adam"
  c.log_every = 500
  c.ckpt_every = 5000
  c.mssr = default_mssr_config()
  c.mssr.prune_fraction = 0.2
  c.mssr.rounds = 13
  c.mssr.dense_steps = 300_000
  c.mssr.rewind_step = 5_000
  c.mssr.round_steps = 60_000
  c.mssr.expand_steps = 20_000
  c.mssr.expand_lr = 1e-4
  c.mssr.ssd_weight = 1.0
  c.mssr.eval_sets = ("set5", "set14", "b100", "urban100")
  c.total_steps = c.mssr.dense_steps  # informational; stages set their own step counts
  return c


def edsr_cpu(scale: int = 2) -> ml_collections.ConfigDict:
  """A CPU-scale run: 16 ch × 8 blocks (edsr_mini) on T91 + BSD200, 4 levels down to 93.75 %."""
  c = config_lib.base_config()
  c.method = "mssr"
  c.scale = scale
  c.model.name = "edsr_mini"
  c.model.kwargs.n_feats = 16
  c.model.kwargs.n_resblocks = 8
  c.model.kwargs.res_scale = 1.0  # docs/MSSR.md figures were measured with 1 (the preset has 2)
  c.data.dataset = "t91"
  c.data.root = ""  # folder holding T91 ("" = the data home) or a folder of HR images
  c.data.lr_patch = 24
  c.data.batch_size = 16
  c.val.dataset = "set5"
  c.val.every_steps = 0
  c.schedule.name = "cosine"
  c.schedule.lr = 1e-3
  c.log_every = 50
  c.ckpt_every = 200
  c.progress = False
  c.tensorboard = False
  c.mssr = default_mssr_config()
  c.mssr.prune_fraction = 0.5
  c.mssr.rounds = 4  # 50 / 75 / 87.5 / 93.75 %
  c.mssr.dense_steps = 1000
  c.mssr.rewind_step = 200
  c.mssr.round_steps = 400
  c.mssr.expand_steps = 150
  c.mssr.expand_lr = 5e-4
  c.mssr.ssd_weight = 1.0
  c.mssr.eval_sets = ("set5", "set14")
  c.total_steps = c.mssr.dense_steps
  return c
