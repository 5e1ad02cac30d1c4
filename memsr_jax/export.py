"""`python -m memsr_jax.export`: ONNX export (memsr_jax/deploy/export_cli.py, --help)."""
import sys

from memsr_jax import cli
from memsr_jax.deploy.export_cli import main

if __name__ == "__main__":
  sys.exit(cli.run(main))
