"""Tiling error vs whole-image inference: `python -m memsr_jax.tiling_error --help`
(logic: memsr_jax/measure/tiling_error.py)."""
import sys

from memsr_jax.measure.tiling_error import main

if __name__ == "__main__":
  sys.exit(main())
