"""MemSR Teacher-L (100 ch, 16 res blocks, 1×1 conv tail): the recipe of teacher_s.py.

  python train.py --config configs/memsr/teacher_l.py:x4 --workdir runs/teacher_l_x4 \
      --config.data.root=/data/DIV2K --config.val.root=/data/benchmark
"""
import importlib.util
import pathlib

_spec = importlib.util.spec_from_file_location(
    "memsr_teacher_recipe", pathlib.Path(__file__).with_name("teacher_s.py"))
_recipe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_recipe)


def get_config(arg: str = "x2"):
  return _recipe.teacher_config("memsr_teacher_l", arg)
