"""Training curves: `memsr-plot`.

Also `python -m memsr_jax.tools.plot` and `python -m memsr_jax.plot`; the command is
in memsr_jax/plot.py (--help).
"""
import sys

from memsr_jax.plot import main as _main
from memsr_jax.utils import cli


def main() -> int:
  return cli.run(_main)


if __name__ == "__main__":
  sys.exit(main())
