"""benchmarks/gpu_check.sh: the plan (every step, sized by budgets.py's estimates), skipping what
does not fit the time left, packing into at most six files; the dry run on CPU (slow)."""
import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)


def test_the_plan_runs_tests_throughput_and_every_gpu8_experiment(tmp_path):
  steps = gpu_check.plan(tmp_path / "out", dry=False)
  names = [s["name"] for s in steps]
  assert names[:2] == ["tests", "throughput"]
  assert {s["experiment"] for s in steps[2:]} == set(gpu_check.ESTIMATES)
  assert [s["estimate_s"] for s in steps[2:]] == sorted(gpu_check.ESTIMATES.values())
  assert "--device" in steps[1]["cmd"] and "gpu" in steps[1]["cmd"]
  assert "--arms" not in steps[1]["cmd"]  # every arm
  for s in steps[2:]:
    assert s["cmd"][s["cmd"].index("--budget") + 1] == "gpu8"
    work = pathlib.Path(s["cmd"][s["cmd"].index("--workdir") + 1])
    assert not work.is_relative_to(tmp_path / "out")  # work stays out of the packed folder


def test_steps_that_do_not_fit_are_skipped_and_recorded(tmp_path):
  out = tmp_path / "out"
  out.mkdir()
  steps = [{"name": "a", "estimate_s": 1, "cmd": [sys.executable, "-c", "print('hi')"]},
           {"name": "b", "estimate_s": 10_000, "cmd": [sys.executable, "-c", "pass"]},
           {"name": "c", "estimate_s": 1, "cmd": [sys.executable, "-c", "raise SystemExit(3)"]}]
  rec = gpu_check.run_steps(steps, out, 60, dry=True)
  assert rec[0]["rc"] == 0 and rec[0]["wall_s"] >= 0
  assert "skipped" in rec[1] and "10000 s" in rec[1]["skipped"]
  assert rec[2]["rc"] == 3
  assert "hi" in (out / "log.txt").read_text()
  gpu_check.pack(out, rec, True, 1)
  assert json.loads((out / "summary.json").read_text())["steps"] == rec
  assert len(list(out.iterdir())) <= 6


@pytest.mark.slow
def test_dry_run_on_cpu(tmp_path):
  out = tmp_path / "out"
  p = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--out", str(out),
                      "--dry-run", "--minutes", "20"], capture_output=True, text=True,
                     timeout=1500)
  assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
  files = sorted(x.name for x in out.iterdir())
  assert files == sorted(gpu_check.FILES)
  summary = json.loads((out / "summary.json").read_text())
  assert summary["dry_run"] and len(summary["steps"]) == 2 + len(gpu_check.ESTIMATES)
  assert all(s.get("rc") == 0 for s in summary["steps"]), summary
  log = (out / "log.txt").read_text()
  for name in gpu_check.ESTIMATES:
    assert f"{name} gpu8:" in log
  assert json.loads((out / "train_throughput_gpu.json").read_text())
