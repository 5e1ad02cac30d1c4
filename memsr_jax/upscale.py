"""`python -m memsr_jax.upscale`: tiled upscaling (memsr_jax/deploy/upscale_cli.py, --help)."""
import sys

from memsr_jax.deploy.upscale_cli import main
from memsr_jax.utils import cli

if __name__ == "__main__":
  sys.exit(cli.run(main))
