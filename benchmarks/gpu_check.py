"""One prepared GPU check: the fast test suite, the training-throughput arms, and the `gpu8`
experiments that fit the time left, packed into a few files under --out.

  bash benchmarks/gpu_check.sh --out "$OUT" [--minutes 10] [--dry-run]

Steps, in order, each with a wall-clock limit from what is left of --minutes:
  tests        python -m pytest -q -m 'not slow'                       → tests.txt
  throughput   benchmarks/train_throughput.py --device gpu (all arms)  → train_throughput_gpu.json
  experiments  python -m memsr_jax.experiments NAME --budget gpu8, in order of their estimate
               (budgets.py), each only when its estimate fits the time left → experiments.json/.md
Every step's command, exit status, wall_s and estimate go to summary.json; all output to log.txt.
At most 6 files. `--dry-run` runs the same plan on the CPU at tiny sizes (test collection only,
one throughput arm at batch 1, each experiment's gpu8 configs built and checked, no training) so
the script is checked where there is no GPU.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

# Estimated wall seconds of each gpu8 experiment (the arithmetic is in budgets.py).
ESTIMATES = {"edsr_baseline_x2": 350, "memsr_x4": 477, "compress_x2": 270, "mssr_x2": 1400}
FILES = ("summary.json", "log.txt", "tests.txt", "train_throughput_gpu.json",
         "experiments.json", "experiments.md")
_BUILD = ("from memsr_jax.experiments import specs; from memsr_jax.train import config_lib; "
          "e = specs.build({name!r}, 'gpu8', 'data', 'weights', 'w'); "
          "[config_lib.validate(r.config) for r in e.runs]; "
          "print({name!r}, 'gpu8:', len(e.runs), 'runs,', len(e.rows), 'rows,', "
          "sum(r.steps for r in e.runs), 'steps')")


def plan(out: pathlib.Path, dry: bool) -> list[dict]:
  """[{name, cmd, estimate_s}] of every step (dry: the CPU-sized stand-ins)."""
  py = sys.executable
  steps = [{"name": "tests", "estimate_s": 60 if dry else 300,
            "cmd": [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"]
            + (["--collect-only"] if dry else [])},
           {"name": "throughput", "estimate_s": 120 if dry else 180,
            "cmd": [py, "benchmarks/train_throughput.py", "--out",
                    str(out / "train_throughput_gpu.json")]
            + (["--device", "cpu", "--arms", "jax_fp32", "--model", "plain35", "--batch", "1",
                "--lr_patch", "8", "--steps", "1", "--warmup", "0", "--repeats", "1"] if dry
               else ["--device", "gpu"])}]
  for name, est in sorted(ESTIMATES.items(), key=lambda kv: kv[1]):
    cmd = ([py, "-c", _BUILD.format(name=name)] if dry else
           [py, "-m", "memsr_jax.experiments", name, "--budget", "gpu8", "--workdir",
            str(out.parent / f"{out.name}_work" / name), "--sets", "set5,set14"])
    steps.append({"name": f"experiment {name}", "experiment": name,
                  "estimate_s": 30 if dry else est, "cmd": cmd})
  return steps


def run_steps(steps: list[dict], out: pathlib.Path, seconds: float, dry: bool) -> list[dict]:
  t0, done = time.monotonic(), []
  with open(out / "log.txt", "a") as log:
    for s in steps:
      left = seconds - (time.monotonic() - t0)
      rec = {k: s[k] for k in ("name", "estimate_s")} | {"cmd": " ".join(s["cmd"])}
      if s["estimate_s"] > left:
        done.append({**rec, "skipped": f"estimate {s['estimate_s']} s > {left:.0f} s left"})
        print(f"[gpu_check] skip {s['name']}: {done[-1]['skipped']}", flush=True)
        continue
      print(f"[gpu_check] {s['name']}: {rec['cmd']}", flush=True)
      log.write(f"\n===== {s['name']}: {rec['cmd']}\n")
      log.flush()
      start = time.monotonic()
      try:
        p = subprocess.run(s["cmd"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=max(1.0, left))
        rc, text = p.returncode, p.stdout
      except subprocess.TimeoutExpired as e:
        rc, text = "timeout", (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (
            e.stdout or "")
      log.write(text)
      log.flush()
      rec.update(rc=rc, wall_s=round(time.monotonic() - start, 1))
      if s["name"] == "tests":
        (out / "tests.txt").write_text(text[-20000:])
      if "experiment" in s and not dry:
        rec["workdir"] = s["cmd"][s["cmd"].index("--workdir") + 1]
      done.append(rec)
      print(f"[gpu_check] {s['name']}: rc {rc}, {rec['wall_s']} s (estimate "
            f"{s['estimate_s']} s)", flush=True)
  return done


def pack(out: pathlib.Path, records: list[dict], dry: bool, minutes: float) -> None:
  """experiments.json / .md from each experiment's workdir, and summary.json."""
  results, md = {}, []
  for r in records:
    w = r.get("workdir")
    if w and (pathlib.Path(w) / "results.json").is_file():
      results[r["name"]] = json.loads((pathlib.Path(w) / "results.json").read_text())
      md.append((pathlib.Path(w) / "results.md").read_text())
  (out / "experiments.json").write_text(json.dumps(results, indent=1))
  (out / "experiments.md").write_text("\n\n".join(md) or "(no experiment ran)\n")
  summary = {"dry_run": dry, "minutes": minutes, "steps": records,
             "host": os.uname().nodename, "files": list(FILES)}
  (out / "summary.json").write_text(json.dumps(summary, indent=1))


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--out", required=True, help="folder for the packed results")
  ap.add_argument("--minutes", type=float, default=10.0, help="time for all steps together")
  ap.add_argument("--dry-run", action="store_true", help="the same plan on the CPU, tiny sizes")
  args = ap.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  if any(out.iterdir()):
    print(f"error: --out {out} is not empty; give a new or empty folder", file=sys.stderr)
    return 2
  records = run_steps(plan(out, args.dry_run), out, args.minutes * 60, args.dry_run)
  if not (out / "tests.txt").exists():
    (out / "tests.txt").write_text("(tests did not run)\n")
  if not (out / "train_throughput_gpu.json").exists():
    (out / "train_throughput_gpu.json").write_text("{}\n")
  pack(out, records, args.dry_run, args.minutes)
  failed = [r["name"] for r in records if r.get("rc") not in (0, None)]
  print(f"[gpu_check] {len(records)} steps, failed: {failed or 'none'}; files in {out}")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
