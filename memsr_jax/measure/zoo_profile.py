"""Cost profiler of the model zoo (the logic behind `python -m memsr_jax.profile`): params,
multiply-adds, XLA flops, peak memory and latency.

  python -m memsr_jax.profile --models plain_m,edsr_baseline,imdn --scales 2,4 --out profile/
  python -m memsr_jax.profile --latency --torch --torch_hr 480x270 ...   # slow on CPU
  python -m memsr_jax.profile --models plain_m --results plain_m=runs/pm/results.json --out pm/

For a 1920×1080 HR output (`--hr`), batch 1, fp32. Writes `<out>/profile.json`, `<out>/profile.md`
(a table laid out like MemSR's Table 5, with the paper's memory figures beside ours) and, with
`--results`, `<out>/psnr_vs_memory.png`.
- mult-adds: convs and matmuls counted from the traced program (measure/cost.py states the rule);
- XLA flops: `compiled.cost_analysis()["flops"]` (≈ 2 × mult-adds plus elementwise work);
- memory: XLA's buffer assignment for the whole jitted forward, `compiled.memory_analysis()`
  arguments (params + input) + outputs + temporaries − aliased; on a GPU also the allocator's peak
  after a run (with --latency). The paper's figures are PyTorch allocator peaks on a 1080Ti;
- plain nets also get the layer-by-layer peak (one jit per layer, input donated) and the
  two-feature-map ideal 2 × H·W·C_max·4 bytes;
- latency (--latency): median of --repeats warm calls;
- --torch: PyTorch twins of plain nets and EDSR (weights copied), latency and peak-RSS ratios.
"""
import argparse
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.inference.source import load_source
from memsr_jax.measure import cost
from memsr_jax.measure import torch_bench
from memsr_jax.models import registry
from memsr_jax.models.plain import PlainNet
from memsr_jax.utils import cli
from memsr_jax.utils import console
from memsr_jax.utils import jsonio
from memsr_jax.utils import pytrees
from memsr_jax.utils import safe_io

PAPER_MEMORY_MB = {  # MemSR Table 5 (PyTorch, GTX 1080Ti, 1920×1080 output)
    "plain_m": {2: 420, 4: 161},
    "edsr_baseline": {2: 1306, 4: 1108},
    "imdn": {2: 1813, 4: 476},
}


def parse_size(text: str, flag: str = "--hr") -> tuple[int, int]:
  try:
    w, h = (int(v) for v in text.lower().split("x"))
  except ValueError:
    raise cli.UserError(f"{flag} {text!r} is not WIDTHxHEIGHT, e.g. 1920x1080") from None
  if w < 1 or h < 1:
    raise cli.UserError(f"{flag} {text!r}: width and height must be positive")
  return w, h


def parse_args(argv=None):
  p = cli.ArgumentParser(prog="python -m memsr_jax.profile", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--models", default="all", help="comma-separated registry names, or 'all'")
  p.add_argument("--scales", default="2,3,4", help="comma-separated scales (default 2,3,4)")
  p.add_argument("--hr", default="1920x1080", help="HR output size WxH")
  p.add_argument("--latency", action="store_true", help="also time the forward (slow on CPU)")
  p.add_argument("--repeats", type=int, default=3, help="warm calls timed with --latency "
                 "(median reported)")
  p.add_argument("--no_layerwise", action="store_true", help="skip plain nets' per-layer peak")
  p.add_argument("--torch", action="store_true", help="PyTorch side-by-side (plain nets, EDSR)")
  p.add_argument("--torch_hr", default=None, help="HR size for the torch comparison (default --hr)")
  p.add_argument("--results", action="append", default=[],
                 help="MODEL=path/to/results.json (eval.py output), repeatable; for the plot")
  p.add_argument("--dataset", default="Set5", help="dataset of the PSNR-vs-memory plot")
  p.add_argument("--plot_scale", type=int, default=None, help="scale of the plot (default: first)")
  p.add_argument("--out", default="profile", help="output folder (default profile/)")
  p.add_argument("--overwrite", action="store_true",
                 help="replace the results of an earlier profile in --out (default: refuse)")
  return p.parse_args(argv)


def profile_model(name: str, scale: int, hr: tuple[int, int], latency: bool, repeats: int,
                  layerwise: bool, torch_hr: tuple[int, int] | None) -> dict:
  src = load_source(preset=name, scale=scale)  # random weights (seed 0)
  model, params = src.model, src.params
  w, h = hr
  if w % scale or h % scale:
    raise ValueError(f"HR size {w}x{h} is not divisible by scale {scale}")
  lr_shape = (1, h // scale, w // scale, 3)
  x = jax.ShapeDtypeStruct(lr_shape, jnp.float32)
  fwd = lambda p, x: model.apply({"params": p}, x)
  xc, compiled = cost.xla_cost(fwd, params, x)
  row = {"model": name, "scale": scale, "hr": [w, h], "lr_shape": list(lr_shape),
         "params": pytrees.count_params(params),
         "mult_adds": cost.model_macs(model, params, lr_shape),
         "xla_flops": xc.flops, "memory_bytes": xc.peak_bytes, "argument_bytes": xc.argument_bytes,
         "output_bytes": xc.output_bytes, "temp_bytes": xc.temp_bytes,
         "backend": jax.default_backend()}
  if isinstance(model, PlainNet) and layerwise:
    row.update(cost.plain_layerwise_peak(model, params, lr_shape))
  if latency:
    xs = jnp.asarray(np.random.default_rng(0).uniform(0, 255, lr_shape), jnp.float32)
    pj = jax.tree_util.tree_map(jnp.asarray, params)
    row["latency_s"] = cost.time_call(compiled, pj, xs, repeats=repeats)
    row["device_peak_bytes"] = cost.device_peak_bytes()
  if torch_hr is not None and torch_bench.supported(model):
    tw, th = torch_hr
    row["torch"] = torch_bench.side_by_side(model, params, (1, th // scale, tw // scale, 3),
                                            repeats=repeats)
  return row


def _mb(b) -> str:
  return "–" if b is None else f"{b / 1e6:.0f}"


def markdown_table(rows: list[dict], scales: list[int]) -> str:
  """MemSR Table 5 layout: model | params | mult-adds and memory per scale | paper memory."""
  by_model = {}
  for r in rows:
    by_model.setdefault(r["model"], {})[r["scale"]] = r
  head = (["model", "params"] + [f"mult-adds ×{s} (G)" for s in scales]
          + [f"memory ×{s} (MB)" for s in scales] + ["paper memory ×2 / ×4 (MB)"])
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for name, per in by_model.items():
    params = " / ".join(f"{per[s]['params'] / 1e6:.2f}M" for s in scales if s in per)
    macs = [f"{per[s]['mult_adds'] / 1e9:.1f}" if s in per else "–" for s in scales]
    mem = [_mb(per[s]["memory_bytes"]) if s in per else "–" for s in scales]
    paper = PAPER_MEMORY_MB.get(name)
    paper_txt = f"{paper[2]} / {paper[4]}" if paper else "–"
    lines.append("| " + " | ".join([name, params] + macs + mem + [paper_txt]) + " |")
  extra = [r for r in rows if "layerwise_peak_bytes" in r]
  if extra:
    lines += ["", "Plain nets: whole-program XLA peak vs one-jit-per-layer peak vs the "
              "two-feature-map ideal (2 × H·W·C·4 bytes):", "",
              "| model | scale | XLA peak (MB) | of which temporaries | layer-by-layer (MB) | "
              "2 feature maps (MB) | XLA / ideal |", "|---|---|---|---|---|---|---|"]
    for r in extra:
      lines.append(f"| {r['model']} | ×{r['scale']} | {_mb(r['memory_bytes'])} | "
                   f"{_mb(r['temp_bytes'])} | {_mb(r['layerwise_peak_bytes'])} | "
                   f"{_mb(r['two_feature_maps_bytes'])} | "
                   f"{r['memory_bytes'] / r['two_feature_maps_bytes']:.2f} |")
  timed = [r for r in rows if "latency_s" in r]
  if timed:
    lines += ["", "| model | scale | latency (s) | backend |", "|---|---|---|---|"]
    lines += [f"| {r['model']} | ×{r['scale']} | {r['latency_s']:.3f} | {r['backend']} |"
              for r in timed]
  tr = [r for r in rows if "torch" in r]
  if tr:
    peak = lambda m: m.get("peak_rss_growth_bytes", m.get("device_peak_bytes"))  # CPU | GPU
    lines += ["", "JAX vs PyTorch (same machine, same weights; peak memory of one warm call: CPU "
              "RSS growth, GPU device allocator):",
              "", "| model | scale | LR | JAX s | torch s | JAX/torch time | JAX MB | torch MB | "
              "JAX/torch memory | max abs diff |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in tr:
      t = r["torch"]
      lines.append(
          f"| {r['model']} | ×{r['scale']} | {t['lr_shape'][2]}×{t['lr_shape'][1]} | "
          f"{t['jax']['latency_s']:.3f} | {t['torch']['latency_s']:.3f} | "
          f"{t['latency_ratio_jax_over_torch']:.2f} | {_mb(peak(t['jax']))} | "
          f"{_mb(peak(t['torch']))} | {t['memory_ratio_jax_over_torch']:.2f} | "
          f"{t['max_abs_diff']:.2g} |")
  return "\n".join(lines) + "\n"


def read_results(results: dict[str, str], dataset: str, scale: int) -> dict[str, float]:
  """{model: PSNR} from each MODEL=results.json (eval.py's format), read before any profiling:
  a torn or foreign file is a one-line error naming it."""
  psnr = {}
  for name, path in results.items():
    try:
      data = json.loads(pathlib.Path(path).read_text())
      psnr[name] = float(data[dataset][f"x{scale}"]["psnr"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
      # RecursionError: nesting deeper than Python's JSON decoder recurses
      raise cli.UserError(f"--results {name}={path} is not readable JSON ({cli.one_line(e)}): "
                          "rerun eval.py to write it again") from None
    except (KeyError, TypeError, ValueError):
      keys = sorted(data) if isinstance(data, dict) else type(data).__name__
      raise cli.UserError(f"--results {name}={path} has no {dataset} ×{scale} PSNR (eval.py's "
                          f"results.json; its keys: {keys}); check --dataset / --plot_scale") \
          from None
  return psnr


def psnr_memory_points(rows: list[dict], psnr: dict[str, float], scale: int) -> list[dict]:
  """(model, memory MB, PSNR) for each model of `psnr` (`read_results`)."""
  mem = {(r["model"], r["scale"]): r["memory_bytes"] for r in rows}
  return [{"model": name, "memory_mb": mem[(name, scale)] / 1e6, "psnr": value}
          for name, value in psnr.items()]


def plot_psnr_vs_memory(points: list[dict], path, title: str) -> None:
  import matplotlib  # optional dependency: only the plot needs it
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
  for p in points:
    ax.scatter(p["memory_mb"], p["psnr"])
    ax.annotate(p["model"], (p["memory_mb"], p["psnr"]), textcoords="offset points",
                xytext=(4, 4), fontsize=8)
  ax.set_xlabel("peak inference memory, 1920×1080 output (MB, XLA)")
  ax.set_ylabel("PSNR (dB, Y)")
  ax.set_title(title)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


OUTPUT_NAMES = ("profile.json", "profile.md", "psnr_vs_memory.png", "psnr_vs_memory.json")


def check_no_overwrite(out: pathlib.Path, overwrite: bool) -> None:
  """An earlier profile in `out` is replaced only with --overwrite (checked before measuring)."""
  existing = [out / n for n in OUTPUT_NAMES if (out / n).exists()]
  if existing and not overwrite:
    raise cli.UserError(f"{existing[0]} exists: pass --overwrite to replace the earlier profile "
                        "in --out, or choose another --out")


def main(argv=None) -> int:
  """Exit status: 0, or 2 after a user error (printed as one line)."""
  return cli.run(_main, argv)


def _main(argv=None) -> int:
  args = parse_args(argv)
  registry.model_kwargs("plain")  # registers the optional models
  names = sorted(registry.MODEL_PRESETS) if args.models == "all" else [
      m.strip() for m in args.models.split(",") if m.strip()]
  unknown = [n for n in names if n not in registry.MODEL_PRESETS]
  if unknown:
    raise cli.UserError(f"unknown model(s) {unknown}; known: {sorted(registry.MODEL_PRESETS)}")
  # Every flag and the output folder are checked before the first (slow) measurement.
  scales = cli.parse_scales(args.scales)
  if args.repeats < 1:
    raise cli.UserError(f"--repeats must be at least 1, got {args.repeats}")
  results = {}
  for item in args.results:
    if "=" not in item:
      raise cli.UserError(f"--results wants MODEL=path, got {item!r}")
    k, v = item.split("=", 1)
    if not pathlib.Path(v).is_file():
      raise cli.UserError(f"--results {item}: {v} is not a file")
    results[k] = v
  hr = parse_size(args.hr)
  torch_hr = (parse_size(args.torch_hr, "--torch_hr") if args.torch_hr else hr) if args.torch \
      else None
  for s in scales:
    for flag, size in (("--hr", hr), ("--torch_hr", torch_hr)):
      if size is not None and (size[0] % s or size[1] % s):
        raise cli.UserError(f"{flag} {size[0]}x{size[1]} is not divisible by scale {s}: choose a "
                            "size that every scale divides")
  plot_scale = args.plot_scale or scales[0]
  not_profiled = [k for k in results if k not in names or plot_scale not in scales]
  if not_profiled:
    raise cli.UserError(f"--results {not_profiled[0]}=…: {not_profiled[0]} ×{plot_scale} is not "
                        "profiled (add it to --models / --scales)")
  psnr = read_results(results, args.dataset, plot_scale)
  out = safe_io.check_output_dir(args.out, "--out")
  check_no_overwrite(out, args.overwrite)
  rows = []
  with console.progress(len(names) * len(scales), desc="profile", unit="model",
                        final_line=False) as bar:
    for name in names:
      for s in scales:
        console.say(f"profiling {name} ×{s} …")
        rows.append(profile_model(name, s, hr, args.latency, args.repeats, not args.no_layerwise,
                                  torch_hr))
        # Written after every row: a long sweep that is stopped keeps what it measured.
        jsonio.write_json(out / "profile.json", rows, indent=2)
        md = markdown_table(rows, scales)
        safe_io.atomic_write_text(out / "profile.md", md)
        bar.update()
  print(md)
  if results:
    points = psnr_memory_points(rows, psnr, plot_scale)
    plot_psnr_vs_memory(points, out / "psnr_vs_memory.png", f"{args.dataset} ×{plot_scale}")
    jsonio.write_json(out / "psnr_vs_memory.json", points, indent=2)
  return 0
