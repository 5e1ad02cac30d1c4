"""The summary a training run ends with: validation PSNR against bicubic, the workdir, what next.

Read from the files the run leaves (every `metrics.jsonl` under the workdir, one per stage), so it
describes resumed and multi-stage runs as well as single ones:

  finished: runs/quickstart
    validation skimage_val Y-PSNR: final 33.94 dB (step 1000), best 33.95 dB (step 500);
      bicubic 32.93 dB (final +1.01 dB)
    workdir: checkpoints/ (steps 500, 1000), metrics.jsonl, tb/
    next:
      memsr-eval --config.model.checkpoint=runs/quickstart …
      memsr-fetch sample && memsr-upscale --checkpoint runs/quickstart --input photo.png …
      memsr-plot runs/quickstart --out runs/quickstart/plots
The commands are the console scripts (memsr_jax/tools/); in a clone `python eval.py`,
`python -m memsr_jax.upscale` and `python -m memsr_jax.plot` are the same.
"""
import json
import pathlib
import shlex

PSNR_KEY = "val/val_psnr"
BICUBIC_KEY = "val/bicubic_psnr"


def _rows(path: pathlib.Path) -> list[dict]:
  rows = []
  for line in path.read_text().splitlines():
    try:
      row = json.loads(line)
    except json.JSONDecodeError:  # a line torn by a kill
      continue
    if isinstance(row, dict):
      rows.append(row)
  return rows


def _last_metrics(workdir: pathlib.Path) -> tuple[str, list[dict]]:
  """(stage label, rows) of the most recently written metrics.jsonl under the workdir."""
  files = sorted(workdir.rglob("metrics.jsonl"), key=lambda p: p.stat().st_mtime)
  if not files:
    return "", []
  last = files[-1]
  rel = last.parent.relative_to(workdir)
  return ("" if str(rel) == "." else str(rel)), _rows(last)


def validation_line(rows: list[dict], dataset: str) -> str:
  vals = [(int(r["step"]), float(r[PSNR_KEY])) for r in rows if PSNR_KEY in r]
  if not vals:
    return "no validation (config.val.dataset is empty)"
  final_step, final = vals[-1]
  best_step, best = max(vals, key=lambda v: v[1])
  text = (f"validation {dataset} Y-PSNR: final {final:.2f} dB (step {final_step}), best "
          f"{best:.2f} dB (step {best_step})")
  bicubic = [float(r[BICUBIC_KEY]) for r in rows if BICUBIC_KEY in r]
  if bicubic:
    text += f"; bicubic {bicubic[-1]:.2f} dB (final {final - bicubic[-1]:+.2f} dB)"
  return text


def workdir_line(workdir: pathlib.Path) -> str:
  parts = []
  for entry in sorted(workdir.iterdir()):
    if entry.name.startswith("."):
      continue
    if entry.is_dir():
      steps = sorted(int(p.name) for p in entry.iterdir() if p.name.isdigit()) \
          if entry.name == "checkpoints" else []
      parts.append(f"{entry.name}/ (steps {', '.join(map(str, steps))})" if steps
                   else f"{entry.name}/")
    else:
      parts.append(entry.name)
  return ", ".join(parts)


def next_commands(workdir: str, scale: int) -> list[str]:
  w = shlex.quote(str(workdir))
  return [
      f"memsr-eval --config.model.checkpoint={w} --config.datasets=set5,set14 "
      f"--config.output_dir={w}/eval",
      f"memsr-fetch sample && memsr-upscale --checkpoint {w} --input photo.png "
      f"--output {w}/upscaled --scale {scale}",
      f"memsr-plot {w} --out {w}/plots",
  ]


def summary(workdir, val_dataset: str, scale: int) -> str:
  """The end-of-training summary of `workdir` (see the module docstring)."""
  path = pathlib.Path(workdir)
  stage, rows = _last_metrics(path)
  head = f"finished: {workdir}" + (f" (last stage: {stage})" if stage else "")
  lines = [head, "  " + validation_line(rows, val_dataset), "  workdir: " + workdir_line(path),
           "  next:"]
  lines += [f"    {c}" for c in next_commands(str(workdir), scale)]
  return "\n".join(lines)
