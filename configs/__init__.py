"""Config files (scripts with `get_config()`, read by path). This file only makes the folder the
package `memsr_jax.configs` of an installed memsr_jax (setup.py), where memsr_jax.utils.config_paths
finds it."""
