"""Train a model: `memsr-train --config quickstart --workdir runs/quickstart` (the same as
`python train.py --config configs/quickstart.py --workdir runs/quickstart` in a checkout).

--config takes a config file or the name of a packaged config (`quickstart`, `memsr/plain.py:m,x4`;
memsr_jax/utils/config_paths.py).

Reruns of the same command resume from the newest checkpoint in the workdir. config.method picks
what is trained: "supervised" (any registry model on LR/HR pairs) or a method's stages
("memsr", "mssr", "compress": memsr_jax.methods.<method>.stages.run(config, workdir)).
A user's mistake (bad flag or key, unusable workdir, a workdir another run holds, missing data) is
one line on stderr and exit status 2 (docs/SAFETY.md): config values are checked up front
(`methods.validate`), the rest raise `cli.UserError`s where they are found; any other exception is
a bug and keeps its traceback.
"""
import os
import sys

from absl import flags
import jax
from ml_collections import config_flags

from memsr_jax import methods
from memsr_jax.train import loop
from memsr_jax.train import summary
from memsr_jax.train import workdir_lock
from memsr_jax.utils import cli
from memsr_jax.utils import console
from memsr_jax.utils import safe_io

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config: a file, or a "
                                          "packaged config by name (quickstart, "
                                          "memsr/plain.py:m,x4).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints and metrics go (rerun the "
                                "same command to resume).")
flags.mark_flags_as_required(["config", "workdir"])


def _maybe_init_distributed():
  """Multi-host: jax.distributed.initialize() when a cluster is configured (env or flags)."""
  if os.environ.get("MEMSR_DISTRIBUTED", "") in ("1", "true"):
    if os.environ.get("MEMSR_CPU_COLLECTIVES"):
      jax.config.update("jax_cpu_collectives_implementation", os.environ["MEMSR_CPU_COLLECTIVES"])
    kwargs = {}
    if os.environ.get("MEMSR_COORDINATOR"):
      kwargs = dict(coordinator_address=os.environ["MEMSR_COORDINATOR"],
                    num_processes=int(os.environ["MEMSR_NUM_PROCESSES"]),
                    process_id=int(os.environ["MEMSR_PROCESS_ID"]))
    jax.distributed.initialize(**kwargs)


def absl_main(argv):
  del argv
  config = cli.config_value(_CONFIG)
  workdir = _WORKDIR.value
  methods.validate(config)  # config values (cli.UsageError) before anything is computed
  _maybe_init_distributed()
  if jax.process_index() != 0:
    return _train(config, workdir)
  safe_io.check_path_flag(workdir, "--workdir")
  safe_io.check_not_in_checkpoint_tree(workdir, "--workdir")  # another run's clean-up deletes it
  with safe_io.removed_if_left_empty(workdir):  # a run that fails at once leaves nothing
    safe_io.check_output_dir(workdir, "--workdir")
    with workdir_lock.hold(workdir):  # one run per workdir
      _train(config, workdir)
  console.say(summary.summary(workdir, config.val.dataset, config.scale))


def _train(config, workdir):
  try:
    methods.run(config, workdir)
  except loop.TrainingInterrupted as e:
    console.say(str(e))
    sys.exit(128 + int(e.signum))
  except loop.NonFiniteLossError as e:
    raise cli.UserError(e) from None


def main() -> None:
  """The `memsr-train` console script (and train.py, `python -m memsr_jax.tools.train`)."""
  cli.run_config_tool(absl_main, sys.modules[__name__])


if __name__ == "__main__":
  main()
