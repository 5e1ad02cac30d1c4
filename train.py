"""Train a model from a checkout: `python train.py --config configs/quickstart.py --workdir runs/q`.

The same command as `memsr-train` (memsr_jax/tools/train.py, --help); --config also takes the name
of a packaged config (`quickstart`, `memsr/plain.py:m,x4`).
"""
from memsr_jax.tools.train import main

if __name__ == "__main__":
  main()
