"""Packaging beyond pyproject.toml (which holds everything else): the packages to install.

The top-level `configs/` folder ships inside the package as `memsr_jax.configs`, where
`utils.config_paths` finds the configs of an installed memsr_jax (a checkout reads configs/
directly). Each sub-folder of configs/ becomes a sub-package of it.
"""
import pathlib

from setuptools import find_packages
from setuptools import setup

HERE = pathlib.Path(__file__).resolve().parent
CONFIG_PACKAGES = ["memsr_jax.configs"] + sorted(
    "memsr_jax.configs." + ".".join(d.relative_to(HERE / "configs").parts)
    for d in (HERE / "configs").rglob("*")
    if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py")))

setup(packages=find_packages(include=["memsr_jax", "memsr_jax.*"]) + CONFIG_PACKAGES,
      package_dir={"memsr_jax.configs": "configs"})
