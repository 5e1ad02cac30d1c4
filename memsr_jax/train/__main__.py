"""`python -m memsr_jax.train` is not the training command: it names the ones that are.

The engine (this package) sits below the methods, so it cannot start them; the command lives in
memsr_jax/tools/train.py.
"""
import sys

print("error: training is `memsr-train --config NAME --workdir DIR` (or "
      "`python -m memsr_jax.tools.train …`); see memsr-train --help", file=sys.stderr)
sys.exit(2)
