r"""Evaluates a model (or bicubic) by the SR benchmark protocol and prints a paper-style table.

  python eval.py --config configs/eval.py --config.model.name=imdn \
      --config.model.torch_weights=/path/IMDN_x{scale}.pth --config.scales=2,3,4 \
      --config.datasets=set5,set14 --config.data_dir=../shared/datasets

Writes `results.json` ({dataset: {"x2": {"psnr", "ssim", "n_images"}}}) and `details.json`
(per-image values and unreadable images) to config.output_dir. See configs/eval.py for options.
Method-specific choices (e.g. an MSSR level, or every level) come from the methods' evaluation hooks
(memsr_jax/evaluation/hooks.py).
"""
import json
import pathlib
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from memsr_jax import checkpoints
from memsr_jax import cli
from memsr_jax import evaluation
from memsr_jax import precision
from memsr_jax import safe_io
from memsr_jax.data import folders
from memsr_jax.evaluation import checks
from memsr_jax.evaluation import hooks
from memsr_jax.image import bicubic
from memsr_jax.interop.torch_import import load_torch_weights
from memsr_jax.models import registry

# Guarded so that tests can import both train.py and eval.py (both define --config).
if "config" not in flags.FLAGS:
  config_flags.DEFINE_config_file(
      "config", str(pathlib.Path(__file__).resolve().parent / "configs" / "eval.py"),
      "Evaluation config file (default: configs/eval.py).")

PredictFn = Callable[[np.ndarray], np.ndarray]


def _parse_list(value: Any, what: str) -> list[str]:
  if isinstance(value, (list, tuple)):
    items = [str(v) for v in value]
  else:
    items = str(value).replace(" ", "").strip("()[]").split(",")
  items = [s for s in items if s]
  if not items and what != "scales":
    raise ValueError(f"config.{what} is empty")
  return items


def _parse_scales(value: Any) -> list[int]:
  scales = []
  for s in _parse_list(value, "scales"):
    try:
      scales.append(int(s.lower().lstrip("x")))
    except ValueError:
      raise ValueError(f"config.scales: {s!r} is not an integer scale (use e.g. 2,3,4)") from None
  if any(s < 1 for s in scales):
    raise ValueError(f"config.scales must be positive, got {scales}")
  return scales


def _bicubic_predictor(scale: int) -> PredictFn:

  def predict(lr: np.ndarray) -> np.ndarray:  # exact float64: MATLAB imresize(LR, scale)
    return np.stack([bicubic.imresize_np(x, scale=scale) for x in np.asarray(lr)])
  return predict


def _model_predictor(model, params, policy: str = "highest") -> PredictFn:
  """A jitted forward pass under the precision policy (memsr_jax.precision; "highest" gives the
  protocol's numbers on any backend); jit's cache compiles once per LR shape."""
  dtype = precision.compute_dtype(policy)
  params = precision.cast_floating(params, dtype)

  @jax.jit
  def forward(p, x):
    return model.apply({"params": p}, x.astype(dtype)).astype(jnp.float32)

  def predict(x):
    with precision.context(policy):  # traced (and cached) under the policy
      return forward(params, x)
  return predict


def _policy(config) -> str:
  return precision.check_policy(config.get("precision", "highest"))


def build_predictors(config) -> tuple[list[int], Callable[[int], PredictFn], str]:
  """(scales, scale → predict_fn, description) for the model the config names."""
  m = config.model
  scales = _parse_scales(config.scales)
  if m.checkpoint:
    model, params, meta = checkpoints.load_model_checkpoint(m.checkpoint)
    ckpt_scale = int(meta["scale"])
    scales = scales or [ckpt_scale]
    unsupported = [s for s in scales if s != ckpt_scale]
    if unsupported:
      raise ValueError(f"checkpoint {m.checkpoint} is a ×{ckpt_scale} model ({meta.get('model')}); "
                       f"it cannot evaluate ×{unsupported}. Set --config.scales={ckpt_scale}")
    params = hooks.select_params(params, meta, config)
    predictor = _model_predictor(model, params, _policy(config))
    return scales, lambda s: predictor, f"{meta.get('model')} from {m.checkpoint}"

  scales = scales or [2, 3, 4]
  if m.name == "bicubic":
    if m.torch_weights:
      raise ValueError("config.model.torch_weights is set but config.model.name is 'bicubic'; "
                       "name the preset the weights belong to (e.g. --config.model.name=imdn)")
    return scales, _bicubic_predictor, "bicubic"

  if not m.torch_weights:
    raise ValueError(
        f"model {m.name!r} has no weights: set config.model.checkpoint (a train.py checkpoint) or "
        "config.model.torch_weights (a PyTorch .pth). A randomly initialized model is not "
        "evaluated; use config.model.name=bicubic for the baseline")
  if len(scales) > 1 and "{scale}" not in m.torch_weights:
    raise ValueError(f"one weights file cannot serve scales {scales}: put {{scale}} in "
                     "config.model.torch_weights (e.g. IMDN_x{scale}.pth) or give one scale")
  overrides = dict(m.kwargs.to_dict()) if hasattr(m.kwargs, "to_dict") else dict(m.kwargs)

  def predictor(scale: int) -> PredictFn:
    path = m.torch_weights.replace("{scale}", str(scale))
    params = load_torch_weights(path, m.name, scale, param_key=m.torch_param_key or None,
                                **overrides)
    meta = {"model": m.name, "scale": scale, "source": path}
    params = hooks.select_params(params, meta, config)
    return _model_predictor(registry.build_model(m.name, scale=scale, **overrides), params,
                            _policy(config))

  return scales, predictor, f"{m.name} from {m.torch_weights}"


def run(config) -> dict:
  """Evaluates every dataset × scale; prints the table; writes results.json and details.json.

  A method's sweep (e.g. MSSR's config.sweep_levels) replaces this by its own calls to `run`.
  """
  swept = hooks.sweep(config, run)
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
    predict_fn = make_predictor(scale)
    for ds in datasets:
      save_dir = (out_dir / "images" / pathlib.Path(ds).name / f"x{scale}"
                  if config.save_images else None)
      r = evaluation.evaluate_dataset(predict_fn, ds, scale, data_root, save_dir=save_dir,
                                      y_only=config.y_only, use_lr_files=config.use_lr_files)
      results[ds][scale] = r
      logging.info("%s ×%d: %.4f dB / %.4f (%d images, %.1f s)", ds, scale, r["psnr"], r["ssim"],
                   r["n_images"], r["seconds"])
      for name, msg in r["errors"].items():
        logging.warning("%s ×%d: skipped %s: %s", ds, scale, name, msg)

  summary = evaluation.summary(results)
  for by_scale in summary.values():  # which numbers these are (bicubic: float64 NumPy anyway)
    for entry in by_scale.values():
      entry["precision"] = policy
  table = evaluation.format_table(summary)
  print(f"{description} ({'Y' if config.y_only else 'RGB'} channel)\n{table}")
  out_dir.mkdir(parents=True, exist_ok=True)
  safe_io.atomic_write_text(out_dir / "results.json", json.dumps(summary, indent=2))
  details = {ds: {f"x{s}": {k: r[k] for k in ("per_image", "errors", "seconds")}
                  for s, r in by_scale.items()} for ds, by_scale in results.items()}
  details["model"] = description
  details["config"] = config.to_dict()
  safe_io.atomic_write_text(out_dir / "details.json", json.dumps(details, indent=2, default=str))
  n_errors = sum(len(r["errors"]) for by_scale in results.values() for r in by_scale.values())
  if n_errors:
    print(f"{n_errors} image(s) could not be evaluated; see {out_dir / 'details.json'}")
  print(f"results: {out_dir / 'results.json'}")
  return summary


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = cli.config_value(flags.FLAGS["config"])
  checks.check(config)  # flags and output_dir, before any model runs
  run(config)


if __name__ == "__main__":
  cli.run_absl(main)
