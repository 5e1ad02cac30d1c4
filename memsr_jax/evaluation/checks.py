"""eval.py's flags and output location, checked before any model runs.

Everything a user can get wrong in an eval config and that needs no computing: scales, datasets
(exist, hold images), the checkpoint (exists; its scale fits config.scales), a preset's name and
weights files, the output folder (a writable folder). Each problem is a `cli.UserError`.
"""
import pathlib

from memsr_jax import checkpoints
from memsr_jax.checkpoints import layout
from memsr_jax.data import folders
from memsr_jax.data import home
from memsr_jax.models import levels
from memsr_jax.models import registry
from memsr_jax.utils import cli
from memsr_jax.utils import safe_io


def check(config) -> None:
  """Raises cli.UserError for the first problem found in an eval config."""
  m = config.model
  scales = cli.parse_scales(config.scales, "config.scales", allow_empty=True)
  if m.checkpoint:
    path = pathlib.Path(m.checkpoint).expanduser()
    if not path.exists():
      raise cli.UserError(f"config.model.checkpoint {path} does not exist")
    ckpt_scale = layout.declared_scale(path)
    wrong = [s for s in scales if ckpt_scale is not None and s != ckpt_scale]
    if wrong:
      raise cli.UserError(f"checkpoint {path} is a ×{ckpt_scale} model; it cannot evaluate "
                          f"×{wrong}. Set --config.scales={ckpt_scale} (or leave it empty)")
    scales = scales or ([ckpt_scale] if ckpt_scale else [])
  elif m.name != "bicubic":
    kwargs = m.kwargs.to_dict() if hasattr(m.kwargs, "to_dict") else dict(m.get("kwargs", {}))
    try:
      registry.model_kwargs(m.name, **kwargs)  # the name, the keys and their values
    except ValueError as e:
      raise cli.UserError(f"config.model: {e}") from None
    if m.torch_weights:
      for s in scales or [2, 3, 4]:
        w = m.torch_weights.replace("{scale}", str(s))
        try:
          home.find_weights(w, home.weights_fetch_name(w))
        except FileNotFoundError as e:
          raise cli.UserError(f"config.model.torch_weights (×{s}): {e}") from None
  check_levels(config)
  scales = scales or [2, 3, 4]
  datasets = [d for d in str(config.datasets).replace(" ", "").split(",") if d] if isinstance(
      config.datasets, str) else [str(d) for d in config.datasets]
  if not datasets:
    raise cli.UserError("config.datasets is empty: name one, e.g. --config.datasets=set5")
  for ds in datasets:
    for s in scales:
      try:
        folders.list_pairs(ds, config.data_dir or None, s, use_lr_files=config.use_lr_files)
      except (ValueError, OSError) as e:  # unknown name, missing or empty folder
        raise cli.UserError(f"config.datasets: {e}") from None
  safe_io.check_output_dir(config.output_dir, "config.output_dir")


def check_levels(config) -> None:
  """config.model.level / sparsity / config.sweep_levels: values in range, and only for a
  checkpoint that stores a level map (MSSR), whose levels the value must name."""
  m = config.model
  level, sparsity = m.get("level", -1), m.get("sparsity", -1.0)
  sweep = config.get("sweep_levels", False)
  if not isinstance(sweep, bool):
    raise cli.UserError(f"config.sweep_levels must be True or False, got {sweep!r}")
  if isinstance(level, bool) or not isinstance(level, int):
    raise cli.UserError(f"config.model.level must be an integer (-1: the full model), got "
                        f"{level!r}")
  if not isinstance(sparsity, (int, float)) or sparsity >= 1 or sparsity != sparsity:
    raise cli.UserError(f"config.model.sparsity must be in [0, 1) (-1: off), got {sparsity!r}")
  wants = level >= 0 or sparsity >= 0
  if level >= 0 and sparsity >= 0:
    raise cli.UserError(f"config.model.level={level} and config.model.sparsity={sparsity} are "
                        "both set; give one of them")
  if not (wants or sweep):
    return
  what = "config.sweep_levels" if sweep else (
      f"config.model.level={level}" if level >= 0 else f"config.model.sparsity={sparsity}")
  if not m.checkpoint:
    raise cli.UserError(f"{what} selects sizes of a scalable (MSSR) checkpoint; set "
                        "config.model.checkpoint to one (a train.py run with config.method=mssr)")
  level_map = checkpoints.load_model_item(m.checkpoint, levels.LEVEL_MAP_ITEM)
  if level_map is None:
    raise cli.UserError(f"{what} needs a scalable (MSSR) checkpoint with a level map; "
                        f"{m.checkpoint} has none: drop {what.split('=')[0]}")
  if level >= 0:
    try:
      levels.check_level(level_map, level)
    except ValueError as e:
      raise cli.UserError(f"config.model.level: {e}") from None
