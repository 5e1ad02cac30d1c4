"""memsr_jax: memory-efficient lightweight super-resolution in JAX/Flax."""
__version__ = "0.1.0"
