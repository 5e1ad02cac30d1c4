"""python -m memsr_jax.release_check [--release_dir DIR] [--configs_dir DIR] [--markdown]

Compares the paper configs (configs/compress/{edsr,swinir}_x2.py) with the authors' released
option files, value by value (memsr_jax/methods/compress/release_check.py). Exit status 0 when
every difference is documented, 1 on an undocumented one (named with both values), 2 when the
release folder or a config cannot be read.
"""
import sys

from memsr_jax.methods.compress.release_check import main

if __name__ == "__main__":
  sys.exit(main())
