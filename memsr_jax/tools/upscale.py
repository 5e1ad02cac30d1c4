"""Tiled upscaling: `memsr-upscale`.

Also `python -m memsr_jax.tools.upscale` and `python -m memsr_jax.upscale`; the command is
in memsr_jax/deploy/upscale_cli.py (--help).
"""
import sys

from memsr_jax.deploy.upscale_cli import main as _main
from memsr_jax.utils import cli


def main() -> int:
  return cli.run(_main)


if __name__ == "__main__":
  sys.exit(main())
