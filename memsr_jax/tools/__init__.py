"""The command-line entry points: each module's `main()` is a console script of pyproject.toml
(`memsr-train`, `memsr-eval`, `memsr-upscale`, …) and each runs as `python -m
memsr_jax.tools.<name>`. They only assemble: the work is in the library's subpackages."""
