"""`python -m memsr_jax.eval`: the SR benchmark evaluation (memsr_jax/tools/eval.py, --help)."""
from memsr_jax.tools.eval import main

if __name__ == "__main__":
  main()
