"""eval.py's flags and output location, checked before any model runs.

Everything a user can get wrong in an eval config and that needs no computing: scales, datasets
(exist, hold images), the checkpoint (exists; its scale fits config.scales), a preset's name and
weights files, the output folder (a writable folder). Each problem is a `cli.UserError`.
"""
import pathlib

from memsr_jax import cli
from memsr_jax import safe_io
from memsr_jax.checkpoints import layout
from memsr_jax.data import folders
from memsr_jax.models import registry


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
    try:
      registry.model_kwargs(m.name)
    except ValueError as e:
      raise cli.UserError(f"config.model.name: {e}") from None
    if m.torch_weights:
      for s in scales or [2, 3, 4]:
        w = pathlib.Path(m.torch_weights.replace("{scale}", str(s))).expanduser()
        if not w.is_file():
          raise cli.UserError(f"config.model.torch_weights: {w} (×{s}) is not a file")
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
