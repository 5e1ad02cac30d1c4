"""Tiled against whole-image inference: `memsr-tiling-error`.

Also `python -m memsr_jax.tools.tiling_error` and `python -m memsr_jax.tiling_error`; the command is
in memsr_jax/measure/tiling_accuracy.py (--help).
"""
import sys

from memsr_jax.measure.tiling_accuracy import main as _main
from memsr_jax.utils import cli


def main() -> int:
  return cli.run(_main)


if __name__ == "__main__":
  sys.exit(main())
