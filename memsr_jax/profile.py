"""Cost profiler CLI: `python -m memsr_jax.profile --help` (logic: memsr_jax/measure/profile.py)."""
import sys

from memsr_jax.measure.profile import main

if __name__ == "__main__":
  sys.exit(main())
