"""The methods, and the one place that turns a config into training (train.py, experiments).

`run(config, workdir)`: "supervised" trains config.model with the engine; "memsr", "mssr" and
"compress" run `memsr_jax.methods.<method>.stages.run(config, workdir)`. The engine
(memsr_jax/train) knows no method by name: `validate` adds the method check to the engine's.
"""
import importlib

from memsr_jax.train import config_lib
from memsr_jax.train import loop
from memsr_jax.train.supervised import SupervisedTask
from memsr_jax.utils import cli

METHODS = ("supervised", "memsr", "mssr", "compress")
# Top-level config keys each method adds to the engine's (config_lib.base_config).
METHOD_KEYS = {"supervised": (), "memsr": ("memsr", "teacher_checkpoint"), "mssr": ("mssr",),
               "compress": ("compress",)}


def validate(config) -> None:
  """The engine's config checks, config.method is one of METHODS, no top-level key is unknown to
  the engine and the method, and the method's own section (`stages.check`): a mistake is a
  `cli.UsageError` (one line from train.py) before anything runs."""
  config_lib.validate(config)
  if config.method not in METHODS:
    raise cli.UsageError(f"config.method={config.method!r}; expected one of {METHODS}")
  known = set(config_lib.base_config().keys()) | set(METHOD_KEYS[config.method])
  unknown = sorted(set(config.keys()) - known)
  if unknown:
    raise cli.UsageError(f"unknown config key(s) {unknown} for method {config.method!r}; valid "
                         f"top-level keys: {sorted(known)}")
  if config.method != "supervised":
    importlib.import_module(f"memsr_jax.methods.{config.method}.stages").check(config)


def run(config, workdir):
  """Trains what `config.method` names in `workdir` (resuming, or skipping finished stages)."""
  validate(config)
  if config.method == "supervised":
    return loop.train(config, workdir, SupervisedTask(config))
  stages = importlib.import_module(f"memsr_jax.methods.{config.method}.stages")
  return stages.run(config, workdir)
