"""ONNX / int8 export: `memsr-export`.

Also `python -m memsr_jax.tools.export` and `python -m memsr_jax.export`; the command is
in memsr_jax/deploy/export_cli.py (--help).
"""
import sys

from memsr_jax.deploy.export_cli import main as _main
from memsr_jax.utils import cli


def main() -> int:
  return cli.run(_main)


if __name__ == "__main__":
  sys.exit(main())
