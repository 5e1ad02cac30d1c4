"""Training curves from metrics.jsonl: `python -m memsr_jax.plot RUN [RUN …] --out DIR`.

Each RUN is a training workdir (its `metrics.jsonl`, or, for a method with stages, every
`<stage>/metrics.jsonl` below it) or a metrics.jsonl file. Writes `loss.png`/`loss.svg` (training
loss against step) and `psnr.png`/`psnr.svg` (validation Y-PSNR against step, with the bicubic
baseline where the run logged one), every run overlaid. Existing files are not replaced without
`--overwrite`. The same numbers are in TensorBoard (`pip install "memsr_jax[tensorboard]"`, then
`tensorboard --logdir runs/`).
"""
import argparse
import dataclasses
import json
import os
import pathlib
import sys

from memsr_jax.utils import cli
from memsr_jax.utils import console
from memsr_jax.utils import safe_io

METRICS_FILE = "metrics.jsonl"
LOSS_KEY = "train/loss"
PSNR_KEY = "val/val_psnr"
BICUBIC_KEY = "val/bicubic_psnr"
FORMATS = ("png", "svg")


@dataclasses.dataclass
class Series:
  label: str
  loss: list[tuple[int, float]]
  psnr: list[tuple[int, float]]
  bicubic: float | None


def read_metrics(path) -> list[dict]:
  """The rows of a metrics.jsonl: one JSON object per line with an integer "step". Lines that are
  not UTF-8 or not JSON (a torn last line) or have no integer step are skipped, with a note
  saying how many (`_series` skips values that are not numbers)."""
  rows, bad = [], 0
  try:
    data = pathlib.Path(path).read_bytes()
  except OSError as e:
    raise cli.UserError(f"cannot read {path}: {e.strerror or e}") from None
  lines = data.splitlines()
  for i, line in enumerate(lines):
    try:
      row = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
      row = None
    if isinstance(row, dict) and _is_int(row.get("step")):
      rows.append(row)
    elif line.strip() and not (row is None and i == len(lines) - 1 and not data.endswith(b"\n")):
      bad += 1  # a torn last line (no newline yet: the run is writing it) is expected
  if bad:
    console.say(f"note: {path}: {bad} line(s) skipped (not UTF-8, not a JSON object, or no "
                "integer step)")
  return rows


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def _series(label: str, rows: list[dict]) -> Series:
  def points(key):
    return sorted((r["step"], float(r[key])) for r in rows if _is_number(r.get(key)))
  bicubic = [float(r[BICUBIC_KEY]) for r in rows if _is_number(r.get(BICUBIC_KEY))]
  skipped = sum(1 for r in rows for k in (LOSS_KEY, PSNR_KEY, BICUBIC_KEY)
                if k in r and not _is_number(r[k]))
  if skipped:
    console.say(f"note: {label}: {skipped} value(s) of {LOSS_KEY}/{PSNR_KEY} that are not "
                "numbers skipped")
  return Series(label, points(LOSS_KEY), points(PSNR_KEY), bicubic[-1] if bicubic else None)


def find_runs(runs: list[str]) -> list[Series]:
  """One Series per metrics.jsonl of each RUN (labelled `run` or `run/stage`)."""
  out = []
  for run in runs:
    path = pathlib.Path(run).expanduser()
    if path.is_file():
      files = [path]
    elif path.is_dir():
      files = sorted(path.rglob(METRICS_FILE))
    else:
      raise cli.UserError(f"RUN {run} does not exist: give a training workdir or a "
                          f"{METRICS_FILE}")
    if not files:
      raise cli.UserError(f"no {METRICS_FILE} under {run}: is it a training workdir?")
    for f in files:
      rel = f.parent.relative_to(path) if path.is_dir() else pathlib.Path()
      label = path.name if path.is_dir() else f.parent.name
      label = f"{label}/{rel}" if str(rel) != "." else label
      out.append(_series(label, read_metrics(f)))
  return out


def _outputs(out_dir: pathlib.Path, names: list[str]) -> list[pathlib.Path]:
  return [out_dir / f"{n}.{ext}" for n in names for ext in FORMATS]


def _figure(series: list[Series], what: str):
  import matplotlib  # optional at import time: only this tool draws
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
  for i, s in enumerate(series):
    pts = s.loss if what == "loss" else s.psnr
    if not pts:
      continue
    color = f"C{i % 10}"
    ax.plot(*zip(*pts), color=color, label=s.label, marker="o" if len(pts) < 30 else None,
            markersize=3)
    if what == "psnr" and s.bicubic is not None:
      ax.axhline(s.bicubic, color=color, linestyle="--", linewidth=1,
                 label=f"{s.label}: bicubic {s.bicubic:.2f} dB")
  ax.set_xlabel("step")
  if what == "loss":
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.set_title("Training loss")
  else:
    ax.set_ylabel("validation Y-PSNR (dB)")
    ax.set_title("Validation PSNR")
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  return fig, plt


def _save(fig, path: pathlib.Path, fmt: str) -> None:
  with safe_io.atomic_output(path, "writing the plot") as tmp:
    fig.savefig(tmp, format=fmt)
    os.chmod(tmp, 0o644)  # a shareable image, whatever the umask


def plot(runs: list[str], out_dir, overwrite: bool = False) -> list[pathlib.Path]:
  """Draws the curves of `runs` into out_dir; returns the files written."""
  series = find_runs(runs)
  names = [n for n, key in (("loss", "loss"), ("psnr", "psnr"))
           if any(getattr(s, key) for s in series)]
  if not names:
    raise cli.UserError(f"no {LOSS_KEY} or {PSNR_KEY} values in the {METRICS_FILE} of "
                        f"{', '.join(runs)}")
  safe_io.check_not_in_checkpoint_tree(out_dir, "--out", folder=True)
  out_dir = safe_io.check_output_dir(out_dir, "--out", create=False)
  targets = _outputs(out_dir, names)
  existing = [str(t) for t in targets if t.exists()]
  if existing and not overwrite:
    raise cli.UserError(f"{existing[0]} exists ({len(existing)} of the outputs do): pass "
                        "--overwrite to replace them, or choose another --out")
  out_dir.mkdir(parents=True, exist_ok=True)
  written = []
  for name in names:
    fig, plt = _figure(series, name)
    try:
      for fmt in FORMATS:
        path = out_dir / f"{name}.{fmt}"
        _save(fig, path, fmt)
        written.append(path)
    finally:
      plt.close(fig)
  return written


def _parser() -> cli.ArgumentParser:
  p = cli.ArgumentParser(
      prog="python -m memsr_jax.plot",
      description="Loss and validation-PSNR curves (PNG and SVG) from training workdirs' "
                  f"{METRICS_FILE}, runs overlaid.",
      epilog="example:\n  python -m memsr_jax.plot runs/quickstart --out plots/quickstart",
      formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("runs", nargs="+", metavar="RUN",
                 help=f"a training workdir (every {METRICS_FILE} below it) or a {METRICS_FILE}")
  p.add_argument("--out", required=True, help="folder for loss.{png,svg} and psnr.{png,svg}")
  p.add_argument("--overwrite", action="store_true", help="replace plots already in --out")
  return p


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  console.setup(args.verbose)
  for path in plot(args.runs, args.out, args.overwrite):
    console.say(f"wrote {path}")
  return 0


if __name__ == "__main__":
  sys.exit(cli.run(main))
