"""The methods, and the one place that turns a config into training (train.py, experiments).

`run(config, workdir)`: "supervised" trains config.model with the engine; "memsr", "mssr" and
"compress" run `memsr_jax.methods.<method>.stages.run(config, workdir)`.
"""
import importlib

from memsr_jax.train import config_lib
from memsr_jax.train import loop
from memsr_jax.train.supervised import SupervisedTask


def run(config, workdir):
  """Trains what `config.method` names in `workdir` (resuming, or skipping finished stages)."""
  config_lib.validate(config)  # config.method is one of config_lib.METHODS from here on
  if config.method == "supervised":
    return loop.train(config, workdir, SupervisedTask(config))
  stages = importlib.import_module(f"memsr_jax.methods.{config.method}.stages")
  return stages.run(config, workdir)
