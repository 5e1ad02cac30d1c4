"""Quantization-aware training of a trained plain net for ONNX Runtime int8: `memsr-qat`.

  python -m memsr_jax.qat --checkpoint runs/memsr_quick --workdir runs/memsr_quick_qat --steps 300
  python -m memsr_jax.export --checkpoint runs/memsr_quick_qat/qat --quantize int8 --output q.onnx

Writes WORKDIR/qat: a model checkpoint with the trained int8 ranges (memsr_jax.train.qat), which
`export --quantize int8` pins (no --calibration). Covers plain nets without a mean shift (the
MemSR students); other models are refused. Training data: --dataset (a name of
memsr_jax.data, e.g. t91, or skimage_train), LR patches of --lr_patch pixels.
"""
import argparse
import pathlib

from memsr_jax.utils import cli


def parse_args(argv=None) -> argparse.Namespace:
  p = cli.ArgumentParser(prog="memsr-qat", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--checkpoint", required=True, help="trained model (checkpoint or workdir)")
  p.add_argument("--workdir", required=True, help="folder to write qat/ into")
  p.add_argument("--steps", type=cli.positive_int, required=True, help="QAT steps")
  p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (cosine decay)")
  p.add_argument("--frozen_ranges", action="store_true",
                 help="keep the calibrated ranges (default: train them)")
  p.add_argument("--dataset", default="skimage_train", help="training images (data pipeline name)")
  p.add_argument("--data_root", default="", help="folder of the dataset, where it needs one")
  p.add_argument("--lr_patch", type=cli.positive_int, default=24)
  p.add_argument("--batch_size", type=cli.positive_int, default=8)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--overwrite", action="store_true", help="replace an existing WORKDIR/qat")
  return p.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    from memsr_jax.deploy import fake_quant
    from memsr_jax.inference.source import load_source
    from memsr_jax.train import config_lib
    from memsr_jax.train import qat as qat_lib
    out = pathlib.Path(args.workdir) / "qat"
    if out.exists() and not args.overwrite:
      raise cli.UsageError(f"{out} exists: pass --overwrite to replace it")
    src = load_source(args.checkpoint)
    if src.meta.get("model") != "plain":
      raise cli.UsageError(f"quantization-aware training covers plain nets (model 'plain'); "
                           f"{args.checkpoint} is {src.meta.get('model')!r}")
    c = config_lib.base_config()
    c.scale = int(src.scale)
    c.seed = args.seed
    c.data.dataset, c.data.root, c.data.lr_patch = args.dataset, args.data_root, args.lr_patch
    try:
      qat_lib.run_qat(c, out, "plain", dict(src.meta["model_kwargs"]), src.params,
                      steps=args.steps, lr=args.lr, train_ranges=not args.frozen_ranges,
                      batch_size=args.batch_size,
                      meta={"qat_source": str(pathlib.Path(args.checkpoint).resolve())})
    except fake_quant.UnsupportedModel as e:
      raise cli.UsageError(str(e)) from e
  except (cli.UserError, ValueError, OSError) as e:
    return cli.fail(e)
  print(str(out))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
