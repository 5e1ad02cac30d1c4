"""Convert PyTorch SR weights (.pth) into a memsr_jax model checkpoint (Orbax).

  python -m memsr_jax.import_weights --torch_weights IMDN_x2.pth --model imdn --scale 2 \
      --out runs/imdn_x2
  # the released EDSRmini, checked against its BasicSR options file (res_scale, width, depth)
  python -m memsr_jax.import_weights --torch_weights EDSR_Mini_x2.pth --model edsr_mini --scale 2 \
      --options options/test/EDSR/test_EDSR_Minix2.yml --out runs/edsr_mini_x2
  # an official MemSR teacher (PyTorch Lightning checkpoint, 1×1 tail, body bias maps)
  python -m memsr_jax.import_weights --torch_weights teacherx4_div2k_69068.ckpt \
      --model memsr_teacher_m --scale 4 --set body_bias=map --out runs/memsr_teacher_x4

The key tables and checks are memsr_jax/interop/torch_import.py's; this adds the checkpoint
(readable by eval.py, `python -m memsr_jax.upscale` and every other tool) and its provenance.
"""
import argparse
import hashlib
import json
import pathlib
import sys

from memsr_jax.checkpoints import save_model_checkpoint
from memsr_jax.interop.torch_import import load_torch_weights
from memsr_jax.interop.torch_import import read_options
from memsr_jax.models import registry
from memsr_jax.utils import cli
from memsr_jax.utils import pytrees
from memsr_jax.utils import safe_io


def file_md5(path: str | pathlib.Path) -> str:
  digest = hashlib.md5()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def parse_args(argv=None) -> argparse.Namespace:
  parser = cli.ArgumentParser(
      prog="python -m memsr_jax.import_weights", description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  cli.add_model_source_flags(parser, sources=("model",),
                             model_help="zoo preset the weights are for, e.g. imdn, swinir_s")
  parser.add_argument("--weights", dest="torch_weights", help=argparse.SUPPRESS)  # older name
  parser.add_argument("--out", required=True,
                      help="checkpoint directory to write (must be empty or new)")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace whatever --out holds (it is deleted first)")
  parser.add_argument("--options", default=None,
                      help="the release's BasicSR options file (.yml): its network_g "
                           "(res_scale, widths, depths, scale) must match the model")
  parser.add_argument("--no_hparam_check", action="store_true",
                      help="import even where recorded hyperparameters contradict the model")
  args = parser.parse_args(argv)
  for flag in ("torch_weights", "scale"):
    if not getattr(args, flag):
      parser.error(f"the following arguments are required: --{flag}")
  return args


def main(argv: list[str] | None = None) -> None:
  args = parse_args(argv)
  # Everything is checked before the weights are read; --out is never emptied unasked.
  try:
    overrides = cli.parse_set_overrides(args.set)
    registry.model_kwargs(args.model, scale=args.scale, **overrides)  # known name and keys
  except ValueError as e:
    raise cli.UserError(e) from None
  safe_io.check_input(args.torch_weights, "--torch_weights", folder_ok=False)
  if args.options is not None:
    safe_io.check_input(args.options, "--options", folder_ok=False)
  safe_io.check_path_flag(args.out, "--out")
  # --out is replaced: no input may lie inside it (also not with --overwrite).
  safe_io.check_apart(args.out, {"--torch_weights": args.torch_weights,
                                 "--options": args.options}, "--out", replaces_folder=True)
  safe_io.check_output_dir(args.out, "--out", must_be_empty=not args.overwrite, create=False,
                           empty_hint=": choose a new folder, or pass --overwrite to replace it")
  options = read_options(args.options) if args.options else None
  params = load_torch_weights(args.torch_weights, args.model, args.scale,
                              param_key=args.param_key,
                              options=options, check_hparams=not args.no_hparam_check,
                              **overrides)
  model_kwargs = registry.model_kwargs(args.model, scale=args.scale, **overrides)
  meta = {
      "architecture": args.model,
      "model_kwargs": model_kwargs,
      "scale": args.scale,
      "source_file": str(pathlib.Path(args.torch_weights).resolve()),
      "source_md5": file_md5(args.torch_weights),
      "source_options": str(pathlib.Path(args.options).resolve()) if args.options else None,
      "n_params": pytrees.count_params(params),
  }
  out = pathlib.Path(args.out).resolve()
  save_model_checkpoint(str(out), args.model, model_kwargs, params, meta)
  print(json.dumps({"out": str(out), **meta}, default=str))


if __name__ == "__main__":
  sys.exit(cli.run(main))
