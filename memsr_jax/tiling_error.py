"""`python -m memsr_jax.tiling_error`: tiled vs whole-image inference
(memsr_jax/measure/tiling_accuracy.py, --help)."""
import sys

from memsr_jax.measure.tiling_accuracy import main
from memsr_jax.utils import cli

if __name__ == "__main__":
  sys.exit(cli.run(main))
