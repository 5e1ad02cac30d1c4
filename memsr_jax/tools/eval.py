r"""Evaluates a model (or bicubic) by the SR benchmark protocol and prints a paper-style table.

  memsr-eval --config.model.name=imdn --config.model.torch_weights=imdn/IMDN_x{scale}.pth \
      --config.scales=2,3,4 --config.datasets=set5,set14

(`python eval.py …` in a checkout.) --config defaults to the packaged eval config; datasets and
weights are looked up in the data home (memsr_jax/data/home.py) unless config.data_dir or a path
that exists says otherwise.

Writes `results.json` ({dataset: {"x2": {"psnr", "ssim", "n_images"}}}) and `details.json`
(per-image values and unreadable images) to config.output_dir. See configs/eval.py for options.
One level of a checkpoint that stores nested levels (MSSR) is a loader option
(`config.model.level` / `sparsity`); `config.sweep_levels` evaluates every level
(memsr_jax/evaluation/level_sweep.py).
"""
import pathlib
import sys
from typing import Any, Callable

from absl import app
from absl import flags
from ml_collections import config_flags

from memsr_jax import evaluation
from memsr_jax.data import folders
from memsr_jax.data import home
from memsr_jax.evaluation import checks
from memsr_jax.evaluation import level_sweep
from memsr_jax.inference.predictor import bicubic_predictor
from memsr_jax.inference.predictor import model_forward
from memsr_jax.inference.source import load_source
from memsr_jax.utils import cli
from memsr_jax.utils import config_paths
from memsr_jax.utils import console
from memsr_jax.utils import jsonio
from memsr_jax.utils import precision
from memsr_jax.utils import safe_io

# Guarded so that tests can import both the train and eval tools (both define --config).
if "config" not in flags.FLAGS:
  config_flags.DEFINE_config_file(
      "config", str(config_paths.find_config("eval")),
      "Evaluation config file or packaged config name (default: the packaged eval config).")


def _parse_list(value: Any, what: str) -> list[str]:
  if isinstance(value, (list, tuple)):
    items = [str(v) for v in value]
  else:
    items = str(value).replace(" ", "").strip("()[]").split(",")
  items = [s for s in items if s]
  if not items and what != "scales":
    raise ValueError(f"config.{what} is empty")
  return items


def _policy(config) -> str:
  return precision.check_policy(config.get("precision", "highest"))


def build_predictors(config) -> tuple[list[int], Callable[[int], tuple[Callable, Any]], str]:
  """(scales, scale → (predict_fn, params), description) for the model the config names: a model
  is `predict_fn(params, lr)` (the evaluator spreads its images over the devices), bicubic is
  `predict_fn(lr)` with params None."""
  m = config.model
  scales = cli.parse_scales(config.scales, "config.scales", allow_empty=True)
  level, sparsity = m.get("level", -1), m.get("sparsity", -1.0)
  if m.checkpoint:
    src = load_source(m.checkpoint, level=level, sparsity=sparsity)
    if "level" in src.meta:
      lv = src.meta["level"]
      console.say(f"MSSR level {lv['level']}: sparsity {100 * lv['sparsity']:.2f}%, "
                  f"{lv['nonzero_params']} non-zero params")
    unsupported = [s for s in scales if s != src.scale]
    if unsupported:
      raise ValueError(f"checkpoint {m.checkpoint} is a ×{src.scale} model ({src.name}); "
                       f"it cannot evaluate ×{unsupported}. Set --config.scales={src.scale}")
    forward = model_forward(src.model, src.params, _policy(config), what=src.describe())
    return scales or [src.scale], lambda s: forward, src.describe()

  scales = scales or [2, 3, 4]
  if m.name == "bicubic":
    if m.torch_weights:
      raise ValueError("config.model.torch_weights is set but config.model.name is 'bicubic'; "
                       "name the preset the weights belong to (e.g. --config.model.name=imdn)")
    return scales, lambda s: (bicubic_predictor(s), None), "bicubic"

  if not m.torch_weights:
    raise ValueError(
        f"model {m.name!r} has no weights: set config.model.checkpoint (a train.py checkpoint) or "
        "config.model.torch_weights (a PyTorch .pth). A randomly initialized model is not "
        "evaluated; use config.model.name=bicubic for the baseline")
  if len(scales) > 1 and "{scale}" not in m.torch_weights:
    raise ValueError(f"one weights file cannot serve scales {scales}: put {{scale}} in "
                     "config.model.torch_weights (e.g. IMDN_x{scale}.pth) or give one scale")
  overrides = dict(m.kwargs.to_dict()) if hasattr(m.kwargs, "to_dict") else dict(m.kwargs)

  def predictor(scale: int) -> tuple[Callable, Any]:
    src = load_source(preset=m.name, scale=scale, torch_weights=m.torch_weights,
                      torch_param_key=m.torch_param_key or None, overrides=overrides, level=level,
                      sparsity=sparsity)
    return model_forward(src.model, src.params, _policy(config), what=src.describe())

  return scales, predictor, f"{m.name} from {m.torch_weights}"


def run(config) -> dict:
  """Evaluates every dataset × scale; prints the table; writes results.json and details.json.

  With config.sweep_levels, every level of the checkpoint is evaluated by its own call to `run`.
  """
  swept = level_sweep.sweep(config, run)
  if swept is not None:
    return swept
  datasets = _parse_list(config.datasets, "datasets")
  policy = _policy(config)
  scales, make_predictor, description = build_predictors(config)
  data_root = config.data_dir or None
  # Fail on a missing or unknown dataset before any model runs.
  for ds in datasets:
    folders.list_pairs(ds, data_root, scales[0])

  out_dir = pathlib.Path(config.output_dir)
  results: dict[str, dict[int, dict]] = {ds: {} for ds in datasets}
  for scale in scales:
    predict_fn, params = make_predictor(scale)
    for ds in datasets:
      save_dir = (out_dir / "images" / pathlib.Path(ds).name / f"x{scale}"
                  if config.save_images else None)
      r = evaluation.evaluate_dataset(predict_fn, ds, scale, data_root, save_dir=save_dir,
                                      y_only=config.y_only, use_lr_files=config.use_lr_files,
                                      show_progress=True, params=params)
      results[ds][scale] = r
      console.say(f"{ds} ×{scale}: {r['psnr']:.4f} dB / {r['ssim']:.4f} ({r['n_images']} images, "
                  f"{r['seconds']:.1f} s)")
      for name, msg in r["errors"].items():
        console.say(f"warning: {ds} ×{scale}: skipped {name}: {msg}")

  summary = evaluation.summary(results)
  for by_scale in summary.values():  # which numbers these are (bicubic: float64 NumPy anyway)
    for entry in by_scale.values():
      entry["precision"] = policy
  table = evaluation.format_table(summary)
  print(f"{description} ({'Y' if config.y_only else 'RGB'} channel)\n{table}")
  jsonio.write_json(out_dir / "results.json", summary, indent=2)
  details = {ds: {f"x{s}": {k: r[k] for k in ("per_image", "errors", "seconds")}
                  for s, r in by_scale.items()} for ds, by_scale in results.items()}
  details["model"] = description
  details["config"] = config.to_dict()
  jsonio.write_json(out_dir / "details.json", details, indent=2)
  n_errors = sum(len(r["errors"]) for by_scale in results.values() for r in by_scale.values())
  if n_errors:
    console.say(f"{n_errors} image(s) could not be evaluated; see {out_dir / 'details.json'}")
  console.say(f"results: {out_dir / 'results.json'}")
  return summary


# What an evaluation writes into config.output_dir (a sweep: one level_NN/ per level).
RESULT_NAMES = ("results.json", "details.json", "levels.json", "images")


def default_data_dir() -> str:
  """The data home: $MEMSR_DATA_DIR, else the per-user cache (memsr_jax/data/home.py)."""
  return str(home.data_home())


def check_not_in_checkpoint(config) -> None:
  """No results inside a checkpoint tree: the checkpoint read stays read-only, and a resumed run's
  clean-up would delete them."""
  if config.output_dir:
    safe_io.check_not_in_checkpoint_tree(config.output_dir, "config.output_dir", folder=True)


def check_no_overwrite(config) -> None:
  """Earlier results in config.output_dir are replaced only with config.overwrite."""
  out = pathlib.Path(config.output_dir)
  if config.get("overwrite", False) or not out.is_dir():
    return
  found = [p for p in out.iterdir() if p.name in RESULT_NAMES or p.name.startswith("level_")]
  if found:
    raise cli.UserError(f"config.output_dir {out} already holds results ({found[0].name}): pass "
                        "--config.overwrite=True to replace them, or choose another "
                        "--config.output_dir")


def absl_main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = cli.config_value(flags.FLAGS["config"])
  if not config.data_dir:
    config.data_dir = default_data_dir()
  check_not_in_checkpoint(config)
  with safe_io.removed_if_left_empty(config.output_dir or "."):  # a failed run leaves nothing
    checks.check(config)  # flags and output_dir, before any model runs
    check_no_overwrite(config)
    run(config)


def main() -> None:
  """The `memsr-eval` console script (and eval.py, `python -m memsr_jax.eval`)."""
  cli.run_config_tool(absl_main, sys.modules[__name__])


if __name__ == "__main__":
  main()
