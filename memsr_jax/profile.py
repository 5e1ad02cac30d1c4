"""`python -m memsr_jax.profile`: cost profile of the model zoo (memsr_jax/measure/zoo_profile.py,
--help)."""
import sys

from memsr_jax.measure.zoo_profile import main

if __name__ == "__main__":
  sys.exit(main())
