"""Cost profile of the model zoo: `memsr-profile`.

Also `python -m memsr_jax.tools.profile` and `python -m memsr_jax.profile`; the command is
in memsr_jax/measure/zoo_profile.py (--help).
"""
import sys

from memsr_jax.measure.zoo_profile import main as _main


def main() -> int:
  return _main()


if __name__ == "__main__":
  sys.exit(main())
