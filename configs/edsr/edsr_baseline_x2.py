"""EDSR-baseline ×2: the recipe of configs/edsr/baseline.py at scale 2."""
import importlib.util
import pathlib

_spec = importlib.util.spec_from_file_location(
    "edsr_baseline_recipe", pathlib.Path(__file__).with_name("baseline.py"))
_recipe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_recipe)


def get_config():
  return _recipe.get_config("x2")
