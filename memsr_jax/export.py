"""`python -m memsr_jax.export`: ONNX export (memsr_jax/deploy/export_cli.py, --help)."""
import sys

from memsr_jax.deploy.export_cli import main
from memsr_jax.utils import cli

if __name__ == "__main__":
  sys.exit(cli.run(main))
