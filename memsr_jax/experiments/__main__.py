"""python -m memsr_jax.experiments NAME --budget gpu8|cpu|smoke --workdir W [--data_dir D]

Runs every stage of experiment NAME at the budget, evaluates its rows on Set5, Set14 and the other
benchmarks present under D, and writes W/results.json and W/results.md. Rerun the same command to
resume after an interruption (at most one checkpoint interval is lost).
Exit status: 0 done, 2 bad arguments or missing data, 128 + signal after SIGTERM/SIGINT (a
checkpoint was saved), 1 other failures (e.g. a non-finite loss).
"""
import argparse
import logging
import os
import pathlib
import shlex
import sys

from memsr_jax import cli
from memsr_jax.experiments import budgets
from memsr_jax.experiments import runner
from memsr_jax.train import loop

_REPO = pathlib.Path(__file__).resolve().parents[2]


def parse_args(argv=None):
  names = ("edsr_baseline_x2", "memsr_x4", "mssr_x2", "compress_x2")
  p = cli.ArgumentParser(prog="python -m memsr_jax.experiments", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("name", choices=names)
  p.add_argument("--budget", required=True, choices=budgets.BUDGETS)
  p.add_argument("--workdir", required=True)
  p.add_argument("--data_dir", default=os.environ.get("MEMSR_DATA_DIR") or str(
      _REPO.parent / "shared" / "datasets"), help="folder holding T91, BSD200, Set5, Set14, … "
      "(default: $MEMSR_DATA_DIR, else ../shared/datasets)")
  p.add_argument("--weights_dir", default=os.environ.get("MEMSR_WEIGHTS_DIR") or str(
      _REPO.parent / "shared" / "weights"), help="folder holding imdn/IMDN_x2.pth (compress_x2; "
      "default: $MEMSR_WEIGHTS_DIR, else ../shared/weights)")
  p.add_argument("--sets", default="", help="comma-separated evaluation sets instead of the "
                 "budget's (Set5, Set14 and the benchmarks present), e.g. set5,set14: Urban100 and "
                 "Manga109 have ~100 image sizes, one compilation each per row")
  return p.parse_args(argv)


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  args = parse_args(argv)
  logging.getLogger("absl").setLevel(logging.WARNING)
  command = "python -m memsr_jax.experiments " + shlex.join(argv)
  try:
    sets = tuple(x.strip().lower() for x in args.sets.split(",") if x.strip())
    runner.run(args.name, args.budget, args.workdir, args.data_dir, args.weights_dir, command,
               sets)
  except runner.UsageError as e:
    return cli.fail(e)
  except loop.TrainingInterrupted as e:
    print(str(e), flush=True)
    return 128 + int(e.signum)
  except loop.NonFiniteLossError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
