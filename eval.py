"""Evaluate a model from a checkout: `python eval.py --config.model.checkpoint=runs/q`.

The same command as `memsr-eval` (memsr_jax/tools/eval.py, --help).
"""
from memsr_jax.tools.eval import main

if __name__ == "__main__":
  main()
