"""Measuring models: cost (params, multiply-adds, XLA flops and memory), process memory, the
PyTorch side-by-side, tiling error, and the profiler behind `python -m memsr_jax.profile`."""
