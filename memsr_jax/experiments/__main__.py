"""python -m memsr_jax.experiments NAME --budget gpu8|cpu|smoke --workdir W [--data_dir D]
    [--weights_dir V] [--sets a,b] [--seeds N] [--teacher CHECKPOINT] [--no_train]

Runs every stage of experiment NAME at the budget, evaluates its rows on Set5, Set14 and the other
benchmarks present under D, decides its claims (holds / does not hold / inconclusive / not judged,
one rule per kind: memsr_jax/experiments/claims.py), and writes W/results.json and W/results.md.
Rerun the same command to resume after an interruption (at most one checkpoint interval is
lost). Everything is written under W.
Exit status: 0 done, 2 bad arguments, missing data or a damaged file in W (one line on stderr),
128 + signal after SIGTERM/SIGINT (a checkpoint was saved), 1 other failures (e.g. a non-finite
loss).
"""
import argparse
import logging
import os
import shlex
import sys

from memsr_jax.data import home
from memsr_jax.experiments import budgets
from memsr_jax.experiments import runner
from memsr_jax.experiments import specs
from memsr_jax.train import loop
from memsr_jax.utils import cli
from memsr_jax.utils import console


def parse_args(argv=None):
  p = cli.ArgumentParser(prog="python -m memsr_jax.experiments", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("name", choices=specs.NAMES, help="the experiment to run (its paper's claims)")
  p.add_argument("--budget", required=True, choices=budgets.BUDGETS,
                 help="steps, batch and evaluation sets (memsr_jax/experiments/budgets.py)")
  p.add_argument("--workdir", required=True,
                 help="where every run, row cache and results.json/.md go (resumable)")
  p.add_argument("--data_dir", default=str(home.data_home()),
                 help="folder holding T91, BSD200, Set5, Set14, … (default: the data home, "
                      "$MEMSR_DATA_DIR, else ~/.cache/memsr_jax)")
  p.add_argument("--weights_dir", default=os.environ.get("MEMSR_WEIGHTS_DIR")
                 or str(home.weights_dir()),
                 help="folder holding imdn/IMDN_x{2,4}.pth (reference rows; default: "
                      "$MEMSR_WEIGHTS_DIR, else <data home>/weights)")
  p.add_argument("--sets", default="", help="comma-separated evaluation sets instead of the "
                 "budget's (Set5, Set14 and the benchmarks present), e.g. set5,set14: Urban100 and "
                 "Manga109 have ~100 image sizes, one compilation each per row")
  p.add_argument("--seeds", type=int, default=None,
                 help="seeds of the relative claims' arms; the relative rule needs ≥ 3 "
                      f"(default per budget: {budgets.SEEDS})")
  p.add_argument("--teacher", default="", help="compress_x2: the fixed distillation teacher, a "
                 "×2 checkpoint (zoo checkpoint or training workdir), instead of the official "
                 "IMDN ×2 weights")
  p.add_argument("--no_train", action="store_true", help="train nothing: evaluate and decide "
                 "with the runs finished so far (the others are recorded as skipped)")
  return p.parse_args(argv)


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  args = parse_args(argv)
  logging.getLogger("absl").setLevel(logging.WARNING)
  command = "python -m memsr_jax.experiments " + shlex.join(argv)
  try:
    sets = tuple(x if "/" in x else x.lower()  # names are case-insensitive; paths are not
                 for x in (y.strip() for y in args.sets.split(",")) if x)
    runner.run(args.name, args.budget, args.workdir, args.data_dir, args.weights_dir, command,
               sets, args.seeds, args.teacher, train=not args.no_train)
  except cli.UserError as e:  # usage, a damaged file, a busy workdir, bad weights
    return cli.fail(e)
  except loop.TrainingInterrupted as e:
    console.say(str(e))
    return 128 + int(e.signum)
  except loop.NonFiniteLossError as e:
    console.say(f"error: {e}")
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
