"""Datasets, weights and a sample photo into the data home: `memsr-fetch`.

Also `python -m memsr_jax.tools.fetch` and `python -m memsr_jax.data.fetch`; the command is
in memsr_jax/data/fetch.py (--help).
"""
import sys

from memsr_jax.data.fetch import main as _main
from memsr_jax.utils import cli


def main() -> int:
  return cli.run(_main)


if __name__ == "__main__":
  sys.exit(main())
