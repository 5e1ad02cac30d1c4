"""The paper experiments: `memsr-experiments`.

Also `python -m memsr_jax.tools.experiments` and `python -m memsr_jax.experiments`; the command is
in memsr_jax/experiments/__main__.py (--help).
"""
import sys

from memsr_jax.experiments.__main__ import main as _main


def main() -> int:
  return _main()


if __name__ == "__main__":
  sys.exit(main())
