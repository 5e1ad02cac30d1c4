"""Convert PyTorch SR weights (.pth) into a memsr_jax model checkpoint (Orbax).

  python -m memsr_jax.import_weights --weights IMDN_x2.pth --model imdn --scale 2 \
      --out runs/imdn_x2

The key tables and checks are memsr_jax/interop/torch_import.py's; this adds the checkpoint
(readable by eval.py, `python -m memsr_jax.upscale` and every other tool) and its provenance.
"""
import argparse
import hashlib
import json
import pathlib
from typing import Any

from memsr_jax import pytrees
from memsr_jax.interop.torch_import import load_torch_weights
from memsr_jax.models import registry
from memsr_jax.train.checkpoint import save_model_checkpoint


def file_md5(path: str | pathlib.Path) -> str:
  digest = hashlib.md5()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def _parse_overrides(items: list[str]) -> dict[str, Any]:
  out = {}
  for item in items:
    if "=" not in item:
      raise ValueError(f"--set expects key=value (value in JSON, e.g. depths=[4,4,4]), "
                       f"got {item!r}")
    k, v = item.split("=", 1)
    try:
      out[k] = json.loads(v)
    except json.JSONDecodeError:
      out[k] = v
  return out


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
      prog="python -m memsr_jax.import_weights",
      description="Convert PyTorch SR weights (.pth) into a memsr_jax Orbax checkpoint.")
  parser.add_argument("--weights", required=True, help="the .pth file")
  parser.add_argument("--model", required=True, help="registry preset, e.g. imdn, swinir_s")
  parser.add_argument("--scale", type=int, required=True)
  parser.add_argument("--out", required=True, help="checkpoint directory to write")
  parser.add_argument("--param_key", default=None,
                      help="entry holding the weights (default: params, then params_ema)")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="model hyperparameter override (repeatable), e.g. n_feats=16")
  args = parser.parse_args(argv)

  overrides = _parse_overrides(args.set)
  params = load_torch_weights(args.weights, args.model, args.scale, param_key=args.param_key,
                              **overrides)
  model_kwargs = registry.model_kwargs(args.model, scale=args.scale, **overrides)
  meta = {
      "architecture": args.model,
      "model_kwargs": model_kwargs,
      "scale": args.scale,
      "source_file": str(pathlib.Path(args.weights).resolve()),
      "source_md5": file_md5(args.weights),
      "n_params": pytrees.count_params(params),
  }
  out = pathlib.Path(args.out).resolve()
  save_model_checkpoint(str(out), args.model, model_kwargs, params, meta)
  print(json.dumps({"out": str(out), **meta}, default=str))


if __name__ == "__main__":
  main()
