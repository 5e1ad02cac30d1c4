"""Paper configs against the authors' release: `memsr-release-check`.

Also `python -m memsr_jax.tools.release_check` and `python -m memsr_jax.release_check`;
the command is
in memsr_jax/methods/compress/release_check.py (--help).
"""
import sys

from memsr_jax.methods.compress.release_check import main as _main


def main() -> int:
  return _main()


if __name__ == "__main__":
  sys.exit(main())
