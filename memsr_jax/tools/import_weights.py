"""PyTorch weights into a checkpoint: `memsr-import-weights`.

Also `python -m memsr_jax.tools.import_weights` and `python -m memsr_jax.import_weights`;
the command is
in memsr_jax/import_weights.py (--help).
"""
import sys

from memsr_jax.import_weights import main as _main
from memsr_jax.utils import cli


def main() -> int:
  return cli.run(_main)


if __name__ == "__main__":
  sys.exit(main())
