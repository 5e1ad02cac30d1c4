"""Convert PyTorch SR weights (.pth) into a memsr_jax model checkpoint (Orbax).

  python -m memsr_jax.import_weights --weights IMDN_x2.pth --model imdn --scale 2 \
      --out runs/imdn_x2
  # the released EDSRmini, checked against its BasicSR options file (res_scale, width, depth)
  python -m memsr_jax.import_weights --weights EDSR_Mini_x2.pth --model edsr_mini --scale 2 \
      --options options/test/EDSR/test_EDSR_Minix2.yml --out runs/edsr_mini_x2
  # an official MemSR teacher (PyTorch Lightning checkpoint, 1×1 tail, body bias maps)
  python -m memsr_jax.import_weights --weights teacherx4_div2k_69068.ckpt \
      --model memsr_teacher_m --scale 4 --set body_bias=map --out runs/memsr_teacher_x4

The key tables and checks are memsr_jax/interop/torch_import.py's; this adds the checkpoint
(readable by eval.py, `python -m memsr_jax.upscale` and every other tool) and its provenance.
"""
import hashlib
import json
import pathlib
import sys

from memsr_jax import cli
from memsr_jax import pytrees
from memsr_jax import safe_io
from memsr_jax.checkpoints import save_model_checkpoint
from memsr_jax.interop.torch_import import load_torch_weights
from memsr_jax.interop.torch_import import read_options
from memsr_jax.models import registry


def file_md5(path: str | pathlib.Path) -> str:
  digest = hashlib.md5()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
  parser = cli.ArgumentParser(
      prog="python -m memsr_jax.import_weights",
      description="Convert PyTorch SR weights (.pth) into a memsr_jax Orbax checkpoint.")
  parser.add_argument("--weights", required=True, help="the .pth / Lightning .ckpt file")
  parser.add_argument("--model", required=True, help="registry preset, e.g. imdn, swinir_s")
  parser.add_argument("--scale", type=int, required=True)
  parser.add_argument("--out", required=True,
                      help="checkpoint directory to write (must be empty or new)")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace whatever --out holds (it is deleted first)")
  parser.add_argument("--param_key", default=None,
                      help="entry holding the weights (default: params, then params_ema)")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="model hyperparameter override (repeatable), e.g. n_feats=16")
  parser.add_argument("--options", default=None,
                      help="the release's BasicSR options file (.yml): its network_g "
                           "(res_scale, widths, depths, scale) must match the model")
  parser.add_argument("--no_hparam_check", action="store_true",
                      help="import even where recorded hyperparameters contradict the model")
  args = parser.parse_args(argv)

  # Everything is checked before the weights are read; --out is never emptied unasked.
  try:
    overrides = cli.parse_set_overrides(args.set)
    if args.scale < 1:
      raise ValueError(f"--scale must be a positive integer, got {args.scale}")
    registry.model_kwargs(args.model, scale=args.scale, **overrides)  # known name and keys
  except ValueError as e:
    raise cli.UserError(e) from None
  if not pathlib.Path(args.weights).is_file():
    raise cli.UserError(f"--weights {args.weights} is not a file")
  if pathlib.Path(args.out).resolve() in pathlib.Path(args.weights).resolve().parents:
    raise cli.UserError(f"--weights {args.weights} is inside --out {args.out}, which is replaced: "
                        "choose another --out")
  safe_io.check_output_dir(args.out, "--out", must_be_empty=not args.overwrite, create=False,
                           empty_hint=": choose a new folder, or pass --overwrite to replace it")
  if args.options is not None and not pathlib.Path(args.options).is_file():
    raise cli.UserError(f"--options {args.options} is not a file")
  options = read_options(args.options) if args.options else None
  params = load_torch_weights(args.weights, args.model, args.scale, param_key=args.param_key,
                              options=options, check_hparams=not args.no_hparam_check,
                              **overrides)
  model_kwargs = registry.model_kwargs(args.model, scale=args.scale, **overrides)
  meta = {
      "architecture": args.model,
      "model_kwargs": model_kwargs,
      "scale": args.scale,
      "source_file": str(pathlib.Path(args.weights).resolve()),
      "source_md5": file_md5(args.weights),
      "source_options": str(pathlib.Path(args.options).resolve()) if args.options else None,
      "n_params": pytrees.count_params(params),
  }
  out = pathlib.Path(args.out).resolve()
  save_model_checkpoint(str(out), args.model, model_kwargs, params, meta)
  print(json.dumps({"out": str(out), **meta}, default=str))


if __name__ == "__main__":
  sys.exit(cli.run(main))
