"""`python -m memsr_jax.qat`: quantization-aware training for int8 export (memsr_jax/tools/qat.py,
--help)."""
import sys

from memsr_jax.tools.qat import main

if __name__ == "__main__":
  sys.exit(main())
