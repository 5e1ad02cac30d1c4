"""Train a model: `python train.py --config configs/quickstart.py --workdir runs/quickstart`.

Reruns of the same command resume from the newest checkpoint in the workdir. config.method picks
what is trained: "supervised" (any registry model on LR/HR pairs) or a method pipeline
("memsr", "mssr", "compress": memsr_jax.methods.<method>.pipeline.run(config, workdir)).
"""
import importlib
import logging
import sys

from absl import flags
from ml_collections import config_flags

from memsr_jax import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints and metrics go.")
flags.mark_flags_as_required(["config", "workdir"])

PIPELINES = ("memsr", "mssr", "compress")


def _maybe_init_distributed():
  """Multi-host: jax.distributed.initialize() when a cluster is configured (env or flags)."""
  import os
  import jax
  if os.environ.get("MEMSR_DISTRIBUTED", "") in ("1", "true"):
    if os.environ.get("MEMSR_CPU_COLLECTIVES"):
      jax.config.update("jax_cpu_collectives_implementation", os.environ["MEMSR_CPU_COLLECTIVES"])
    kwargs = {}
    if os.environ.get("MEMSR_COORDINATOR"):
      kwargs = dict(coordinator_address=os.environ["MEMSR_COORDINATOR"],
                    num_processes=int(os.environ["MEMSR_NUM_PROCESSES"]),
                    process_id=int(os.environ["MEMSR_PROCESS_ID"]))
    jax.distributed.initialize(**kwargs)


def main(argv):
  del argv
  logging.getLogger("absl").setLevel(logging.WARNING)
  from memsr_jax.train import config_lib
  config = cli.config_value(_CONFIG)
  workdir = _WORKDIR.value
  try:  # flags and the workdir are checked before anything is computed
    config_lib.validate(config)
  except ValueError as e:
    raise cli.UserError(e) from None
  _maybe_init_distributed()
  import jax
  from memsr_jax import safe_io
  from memsr_jax.train import workdir_lock
  if jax.process_index() != 0:
    return _train(config, workdir)
  safe_io.check_output_dir(workdir, "--workdir")
  with workdir_lock.hold(workdir):  # one run per workdir
    _train(config, workdir)


def _train(config, workdir):
  from memsr_jax.train import loop
  try:
    if config.method == "supervised":
      from memsr_jax.train.supervised import SupervisedTask
      loop.train(config, workdir, SupervisedTask(config))
    elif config.method in PIPELINES:
      name = f"memsr_jax.methods.{config.method}.pipeline"
      try:
        pipeline = importlib.import_module(name)
      except ModuleNotFoundError as e:
        if e.name != name:
          raise
        raise cli.UserError(f"config.method={config.method!r} needs {name}, which is not in "
                            "this checkout") from None
      pipeline.run(config, workdir)
  except loop.TrainingInterrupted as e:
    print(str(e), flush=True)
    sys.exit(128 + int(e.signum))
  except loop.NonFiniteLossError as e:
    raise cli.UserError(e) from None
  except (ValueError, FileNotFoundError) as e:  # data/model settings the config got wrong
    raise cli.UserError(f"{type(e).__name__}: {e}") from None


if __name__ == "__main__":
  cli.run_absl(main)
