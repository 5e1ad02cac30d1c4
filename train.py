"""Train a model: `python train.py --config configs/quickstart.py --workdir runs/quickstart`.

Reruns of the same command resume from the newest checkpoint in the workdir. config.method picks
what is trained: "supervised" (any registry model on LR/HR pairs) or a method pipeline
("memsr", "mssr", "compress": memsr_jax.methods.<method>.pipeline.run(config, workdir)).
"""
import importlib
import logging
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

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
  _maybe_init_distributed()
  from memsr_jax.train import config_lib
  from memsr_jax.train import loop
  config = _CONFIG.value
  workdir = _WORKDIR.value
  try:
    config_lib.validate(config)
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
        sys.exit(f"error: config.method={config.method!r} needs {name}, which is not in this "
                 "checkout")
      pipeline.run(config, workdir)
  except loop.TrainingInterrupted as e:
    print(str(e), flush=True)
    sys.exit(128 + int(e.signum))
  except loop.NonFiniteLossError as e:
    sys.exit(f"error: {e}")
  except (ValueError, FileNotFoundError) as e:
    sys.exit(f"error: {type(e).__name__}: {e}")


if __name__ == "__main__":
  app.run(main)
