"""results.json → results.md: the claims table first, then a paper-style table with the command
and budget that produced it."""
from memsr_jax.experiments import claims

_BUDGET_WORDS = {
    "gpu8": "sized for about 8 minutes of one H100/H200 per seed (estimates)",
    "cpu": "CPU-scale stand-ins: smaller models, short schedules, paired seeds of every "
           "relative claim's arms",
    "smoke": "a pipeline check only: a few steps, tiny models; the numbers mean nothing",
}


def _mb(b) -> str:
  return "–" if b is None else f"{b / 2**20:.1f}"


def _size(b) -> str:
  return "–" if b is None else f"{b / 2**20:.2f} MB" if b >= 2**20 else f"{b / 1e3:.1f} kB"


def _pct(x) -> str:
  return "–" if x is None else f"{100 * x:.1f} %"


def _cell(r: dict | None) -> str:
  if not r or r.get("psnr") is None:
    return "–"
  ssim = r.get("ssim")
  return f"{r['psnr']:.2f}" + (f" / {ssim:.4f}" if ssim is not None else "")


def _subset(n: int) -> str:
  return "" if not n else ", first image only" if n == 1 else f", first {n} images only"


def markdown(res: dict, columns: tuple = ()) -> str:
  key = f"x{res['scale']}"
  sets = list(res["eval"]["sets"])
  head = ["row", "params"]
  if "sparsity" in columns:
    head += ["non-zeros", "sparsity (network)", "sparsity (pruned convs)"]
  if "macs" in columns:
    h, w = res["memory_hr"]
    head += [f"MACs (G, {w}×{h} out)"]
  if "memory" in columns:
    h, w = res["memory_hr"]
    head += [f"activations (MB, {w}×{h} out)", "XLA peak (MB)", "layer-by-layer peak (MB)"]
  head += [f"{s} ×{res['scale']} PSNR / SSIM" for s in sets] + ["steps", "train s"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  notes = []
  for r in res["rows"]:
    if r.get("skipped"):
      notes.append(f"- {r['row']}: not run: {r['skipped']}")
      continue
    p = r.get("params")
    cells = [r["row"], "–" if not p else f"{p / 1e3:,.1f}k"]
    if r.get("params_vector_bias"):  # stored with 3×3 bias maps; the paper counts them as vectors
      cells[1] += f" ({r['params_vector_bias'] / 1e3:,.1f}k as vector biases)"
    if "sparsity" in columns:
      nz = r.get("nonzero_params")
      cells += ["–" if nz is None else f"{nz / 1e3:,.1f}k",
                _pct(r.get("sparsity_network")), _pct(r.get("sparsity_prunable"))]
    if "macs" in columns:
      cells += ["–" if "macs" not in r else f"{r['macs'] / 1e9:.2f}"]
    if "memory" in columns:
      m = r.get("memory") or {}
      cells += [_mb(m.get("xla_temp_bytes")), _mb(m.get("xla_peak_bytes")),
                _mb(m.get("layerwise_peak_bytes"))]
    cells += [_cell(r.get("results", {}).get(s, {}).get(key)) for s in sets]
    cells += ["–" if r.get("steps") is None else f"{r['steps']:,}",
              "–" if r.get("wall_s") is None else f"{r['wall_s']:.0f}"]
    lines.append("| " + " | ".join(cells) + " |")
    for field in ("note", "eval_note"):
      if r.get(field):
        notes.append(f"- {r['row']}: {r[field]}")
  d = res["device"]
  out = [f"### {res['title']}", ""]
  out += claims.markdown(res.get("claims") or [])
  out += [f"Budget `{res['budget']}`: {_BUDGET_WORDS[res['budget']]}. Device: "
          f"{d['device_kind']} ({d['platform']}), {res['precision'].split(' ')[0]}, JAX "
          f"{res['jax_version']}, {res['date']}. Training data: {res['train_sets']}; Y-PSNR / "
          f"SSIM by the protocol ({', '.join(sets)}" + _subset(res['eval']['max_images']) + "), "
          f"evaluated at {res['eval'].get('precision', 'highest')} precision.",
          "", "```", res["command"], "```", "", *lines, ""]
  if res.get("shrunk"):
    out += ["Shrunk for this budget: " + "; ".join(res["shrunk"]) + ".", ""]
  storage = (res.get("extra") or {}).get("storage")
  if storage and storage.get("scalable_checkpoint_bytes_on_disk"):
    sep = storage.get("separate_models_float32_bytes")
    out += [f"Storage: the one scalable checkpoint takes "
            f"{_size(storage['scalable_checkpoint_bytes_on_disk'])} on disk (every level); "
            f"separate models, one per level: at least {_size(sep)} "
            f"({storage['separate_models_note']}).", ""]
  conv = (res.get("extra") or {}).get("conversion")
  if conv:
    out += [f"Plain conversion of the teacher: max |plain − residual| = "
            f"{conv['max_abs_diff_fp32_random_input']:.2e} (fp32, random input).", ""]
  if notes:
    out += ["Notes:", *notes, ""]
  return "\n".join(out)
