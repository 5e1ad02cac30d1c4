"""How much of the Laplacian distillation gradient each pyramid level carries, for given students.

For a batch of training patches, the teacher's output T and each student S, it computes every term
of L_dis separately — mean|P_i(S − T)| for the image pyramid and for the high-pass pyramid
(x − G(x)), levels i = 0 (finest band) … L−1 (low-pass) — with its gradient norm over the student's
params, and each term's share of Σ_i base^i·‖∇term_i‖ for level weights base^i = 1 and 2^i. It
explains why 2^i-weighted distillation trains slowly at short budgets (docs/COMPRESS.md).

  MEMSR_DATA_DIR=../shared/datasets python benchmarks/lap_level_grads.py \
      --student init=edsr_mini --student trained=runs/cpu_edsrmini_scratch/distill \
      --teacher imdn:../shared/weights/imdn/IMDN_x2.pth \
      --out benchmarks/results/lap_level_grads.json
"""
import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.interop import torch_import
from memsr_jax.methods.compress import lap_loss
from memsr_jax.models import registry
from memsr_jax.train import config_lib
from memsr_jax.train import data as data_lib


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--student", action="append", required=True,
                  help="label=workdir_or_checkpoint, or label=<zoo model name> for a fresh init")
  ap.add_argument("--teacher", required=True, help="model_name:weights.pth (PyTorch release)")
  ap.add_argument("--dataset", default="t91+bsd200")
  ap.add_argument("--root", default="", help="data root ('' = $MEMSR_DATA_DIR)")
  ap.add_argument("--scale", type=int, default=2)
  ap.add_argument("--lr_patch", type=int, default=32)
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--levels", type=int, default=4)
  ap.add_argument("--seed", type=int, default=7)
  ap.add_argument("--out", default="lap_level_grads.json")
  args = ap.parse_args(argv)

  cfg = config_lib.base_config()
  cfg.scale, cfg.seed = args.scale, args.seed
  cfg.data.dataset, cfg.data.root, cfg.data.lr_patch = args.dataset, args.root, args.lr_patch
  cfg.data.skip_small = True
  src = data_lib.make_source(cfg, local_batch_size=args.batch, process_index=0, process_count=1)
  try:
    lr = jnp.asarray(next(src)["lr"], jnp.float32)
  finally:
    src.close()
  t_name, t_path = args.teacher.split(":", 1)
  t_params = torch_import.load_torch_weights(t_path, t_name, args.scale)
  target = registry.build_model(t_name, scale=args.scale).apply({"params": t_params}, lr) / 255.0

  results = {"levels": args.levels, "batch": args.batch, "lr_patch": args.lr_patch,
             "teacher": args.teacher, "students": {}}
  for spec in args.student:
    label, what = spec.split("=", 1)
    if not pathlib.Path(what).exists():  # a zoo name: fresh init
      model = registry.build_model(what, scale=args.scale)
      params = registry.init_params(model, jax.random.PRNGKey(0))
    else:
      model, params, _ = ckpt_lib.load_model_checkpoint(what)

    def term(p, i, highpass, model=model):
      d = model.apply({"params": p}, lr) / 255.0 - target
      if highpass:
        d = d - lap_loss.blur(d)
      return jnp.mean(jnp.abs(lap_loss.laplacian_pyramid(d, args.levels)[i]))

    rows = []
    for highpass in (False, True):
      for i in range(args.levels):
        value, grad = jax.value_and_grad(term)(params, i, highpass)
        norm = float(jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(grad))))
        rows.append({"pyramid": "highpass" if highpass else "image", "level": i,
                     "mean_abs": float(value), "grad_norm": norm})
    for base in (1.0, 2.0):
      total = sum(base ** r["level"] * r["grad_norm"] for r in rows)
      for r in rows:
        r[f"share_w{base:g}"] = base ** r["level"] * r["grad_norm"] / total
    results["students"][label] = rows
    print(f"{label}: pyramid level  mean|P_i|  ‖∇‖  share(w=1)  share(w=2^i)")
    for r in rows:
      print(f"  {r['pyramid']:8s} {r['level']}  {r['mean_abs']:.5f}  {r['grad_norm']:.4f}  "
            f"{r['share_w1']:.3f}  {r['share_w2']:.3f}")
  pathlib.Path(args.out).write_text(json.dumps(results, indent=1))
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
