"""Seconds-long training configs for the tests."""
import ml_collections

from memsr_jax.train import config_lib


def tiny_config() -> ml_collections.ConfigDict:
  """A seconds-long config for tests and smoke runs: a 4-channel, 1-block EDSR on synthetic data."""
  c = config_lib.base_config()
  c.model.name = "edsr_mini"
  c.model.kwargs.n_feats = 4
  c.model.kwargs.n_resblocks = 1
  c.data.dataset = "synthetic"
  c.data.lr_patch = 8
  c.data.batch_size = 4
  c.val.dataset = ""
  c.total_steps = 6
  c.schedule.name = "constant"
  c.schedule.lr = 1e-3
  c.log_every = 1
  c.ckpt_every = 2
  c.progress = False
  c.tensorboard = False
  c.async_ckpt = False
  return c
