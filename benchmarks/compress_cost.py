"""Cost report of the compression paper's models: params and multiply-adds for a 1280×720 output.

  python benchmarks/compress_cost.py --out results_compress_cost \
      [--psnr runs/compress_eval.json] [--xla]

MACs are counted analytically from each model's jaxpr (memsr_jax/measure/cost.py: convs,
dense layers and attention matmuls; biases, activations, norms and softmax not counted); `--xla`
adds XLA's compiled cost analysis (flops, which also counts elementwise work) for reference.
`--psnr` takes the JSON written by benchmarks/compress_eval.py and adds our measured PSNRs.
Writes <out>.json and <out>.md and prints the Markdown table.
"""
import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from memsr_jax.methods.compress import cost_report

MODELS = ("edsr_baseline", "edsr_mini", "swinir_s", "swinir_mini", "imdn")
# Mean of Set5 and Set14 Y-PSNR at ×2 as the papers report them (docs/COMPRESS.md; IMDN: its
# paper).
PAPER_PSNR = {"edsr_baseline": 35.78, "edsr_mini": 35.44, "swinir_s": 36.00,
              "swinir_mini": 35.74, "imdn": (38.00 + 33.63) / 2}
REDUCED_FROM = {"edsr_mini": "edsr_baseline", "swinir_mini": "swinir_s"}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--scale", type=int, default=2)
  ap.add_argument("--hr", default="720x1280", help="HR output size HxW")
  ap.add_argument("--models", default=",".join(MODELS))
  ap.add_argument("--psnr", default="", help="JSON from benchmarks/compress_eval.py")
  ap.add_argument("--xla", action="store_true", help="also report XLA's cost analysis flops")
  ap.add_argument("--out", default="results_compress_cost")
  args = ap.parse_args(argv)
  h, w = (int(v) for v in args.hr.lower().split("x"))
  measured = json.loads(pathlib.Path(args.psnr).read_text()) if args.psnr else {}

  rows = []
  for name in args.models.split(","):
    r = cost_report.model_cost(name, args.scale, (h, w), xla=args.xla)
    r["paper_psnr_set5_set14_mean"] = PAPER_PSNR.get(name) if args.scale == 2 else None
    rows.append(r)
    print(f"{name}: {r['params']:,} params, {r['macs'] / 1e9:.2f} GMACs", flush=True)
  by_name = {r["model"]: r for r in rows}
  for r in rows:
    base = by_name.get(REDUCED_FROM.get(r["model"], ""))
    if base:
      r["params_reduction"] = 1 - r["params"] / base["params"]
      r["macs_reduction"] = 1 - r["macs"] / base["macs"]

  convention = ("MACs: convolutions (out elements × k·k·Cin/groups) and every dot_general (dense "
                "layers, attention q·kᵀ and attn·v); biases, activations, norms, softmax not "
                f"counted; one {w}×{h} HR output, batch 1, ×{args.scale}")
  report = {"convention": convention, "models": rows, "measured": measured}
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.with_suffix(".json").write_text(json.dumps(report, indent=1))

  lines = [f"Cost for a {w}×{h} HR output at ×{args.scale}. {convention}.", "",
           "| model | params | GMACs | reduction vs original (params / MACs) | paper PSNR "
           "(Set5+Set14)/2 |",
           "|---|---|---|---|---|"]
  for r in rows:
    red = (f"{100 * r['params_reduction']:.1f} % / {100 * r['macs_reduction']:.1f} %"
           if "params_reduction" in r else "")
    paper = f"{r['paper_psnr_set5_set14_mean']:.2f}" if r["paper_psnr_set5_set14_mean"] else ""
    lines.append(f"| {r['model']} | {r['params']:,} | {r['macs'] / 1e9:.2f} | {red} | {paper} |")
  if measured:
    lines += ["", "Measured here (Y-PSNR, dB):", "",
              "| run | " + " | ".join(next(iter(measured.values())).keys()) + " |",
              "|---|" + "---|" * len(next(iter(measured.values())))]
    for run, vals in measured.items():
      lines.append(f"| {run} | " + " | ".join(
          f"{v:.3f}" if isinstance(v, float) else str(v) for v in vals.values()) + " |")
  md = "\n".join(lines) + "\n"
  out.with_suffix(".md").write_text(md)
  print(md)
  print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
  main()
