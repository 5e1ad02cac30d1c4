"""memsr_jax.experiments: every experiment × budget builds valid configs; CLI errors; the smoke
budget end to end (slow), resuming on the second invocation."""
import json
import math

import pytest

from memsr_jax.experiments import __main__ as cli
from memsr_jax.experiments import budgets, deps, report, runner, specs
from memsr_jax.train import config_lib


@pytest.mark.parametrize("budget", budgets.BUDGETS)
@pytest.mark.parametrize("name", specs.NAMES)
def test_every_experiment_and_budget_builds_valid_configs(name, budget, tmp_path):
  exp = specs.build(name, budget, str(tmp_path / "data"), str(tmp_path / "weights"),
                    str(tmp_path / "w"))
  assert exp.runs and exp.rows
  runs = {r.name for r in exp.runs}
  for r in exp.runs:
    c = r.config
    config_lib.validate(c)
    assert c.data.dataset == specs.TRAIN_SETS and c.data.root == str(tmp_path / "data")
    assert c.val.dataset == ""  # nothing is selected on Set5 during training
    assert r.steps > 0 and c.ckpt_every <= r.steps
    if c.method == "mssr":
      deps.mssr_pipeline._check(c)  # pylint: disable=protected-access
    if c.method == "compress":
      assert deps.compress_pipeline.parse_stages(c.compress.stages) == ["distill"]
      assert c.compress.distill.total_steps == r.steps
  for row in exp.rows:
    assert row.run in runs or row.run == ""
  s = budgets.settings(name, budget)
  if budget == "smoke":
    assert budgets.shrunk(name, budget)
  if budget == "gpu8":
    assert s.get("num_workers", 0) > 0  # feed ≈ 3k patches/s from 16 cores


def test_memsr_students_share_the_teacher_and_steps(tmp_path):
  exp = specs.build("memsr_x4", "cpu", "d", "w", str(tmp_path))
  teacher, *students = exp.runs
  assert teacher.config.model.name == "memsr_teacher_s" and teacher.steps == 3000
  assert {r.steps for r in students} == {2000}
  assert {(r.config.memsr.init, r.config.memsr.distill) for r in students} == {
      ("winning", True), ("winning", False), ("random", True), ("random", False)}
  assert {r.config.teacher_checkpoint for r in students} == {str(tmp_path / "teacher")}


def test_mssr_dense_model_matches_the_level_size():
  from memsr_jax import pytrees
  from memsr_jax.methods.mssr import masks
  kw = {"n_feats": 16, "n_resblocks": 8, "scale": 2}
  sizes = specs.level_sizes("edsr_mini", kw, [0.5, 0.75], masks.DEFAULT_PRUNABLE)
  assert sizes[0] > sizes[1] > sizes[2]
  params_of = specs._params_of  # pylint: disable=protected-access
  n = lambda f: pytrees.count_params(params_of("edsr_mini", {**kw, "n_feats": f}))
  assert n(16) == sizes[0]
  f = specs.matching_width("edsr_mini", kw, sizes[2])
  assert abs(n(f) - sizes[2]) <= min(abs(n(f - 1) - sizes[2]), abs(n(f + 1) - sizes[2]))


def test_compress_without_weights_skips_the_teacher_runs_with_a_reason(tmp_path):
  exp = specs.build("compress_x2", "smoke", "d", str(tmp_path), str(tmp_path / "w"))
  skips = {r.name: r.skip for r in exp.runs}
  assert skips["no_teacher"] == ""
  assert skips["kd_2i"] and skips["kd_equal"]
  assert "IMDN" in skips["kd_2i"] or "torch" in skips["kd_2i"]


def _data(tmp_path):
  from PIL import Image
  import numpy as np
  root = tmp_path / "data"
  for name in ("T91", "BSD200", "Set5"):
    (root / name).mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / name / "a.png")
  return root


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
  data = _data(tmp_path)
  missing = cli.main(["edsr_baseline_x2", "--budget", "smoke", "--workdir", str(tmp_path / "w"),
                      "--data_dir", str(tmp_path / "nowhere")])
  err = capsys.readouterr().err
  assert missing == 2 and err.startswith("error: t91 not found") and err.count("\n") == 1
  (tmp_path / "file").write_text("x")
  assert cli.main(["edsr_baseline_x2", "--budget", "smoke", "--workdir", str(tmp_path / "file"),
                   "--data_dir", str(data)]) == 2
  assert "is a file" in capsys.readouterr().err
  (tmp_path / "mine").mkdir()
  (tmp_path / "mine" / "notes.txt").write_text("keep me")
  assert cli.main(["edsr_baseline_x2", "--budget", "smoke", "--workdir", str(tmp_path / "mine"),
                   "--data_dir", str(data)]) == 2
  assert "not empty" in capsys.readouterr().err
  assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
  other = tmp_path / "other"
  runner.prepare_workdir(other, "mssr_x2", "cpu")
  assert cli.main(["mssr_x2", "--budget", "smoke", "--workdir", str(other),
                   "--data_dir", str(data)]) == 2
  assert "at budget cpu" in capsys.readouterr().err


def test_markdown_table():
  res = {"scale": 2, "title": "T", "budget": "cpu", "claim": "c", "command": "python -m x",
         "device": {"platform": "cpu", "device_kind": "cpu"}, "precision": "float32 (…)",
         "jax_version": "0", "date": "d", "train_sets": "t91+bsd200", "memory_hr": [720, 1280],
         "eval": {"sets": ["set5", "set14"], "max_images": 0}, "shrunk": [],
         "rows": [{"row": "a", "params": 1500, "macs": 3e9, "steps": 10, "wall_s": 5.0,
                   "results": {"set5": {"x2": {"psnr": 30.123, "ssim": 0.9}}}},
                  {"row": "b", "skipped": "no torch"}]}
  md = report.markdown(res, ("macs",))
  assert "| a | 1.5k | 3.00 | 30.12 / 0.9000 | – | 10 | 5 |" in md
  assert "- b: not run: no torch" in md and "python -m x" in md


EXPECTED_ROWS = {
    "edsr_baseline_x2": 4, "memsr_x4": 7, "mssr_x2": 5, "compress_x2": 5,
}


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("name", specs.NAMES)
def test_smoke_end_to_end_and_resume(name, shared_dir, tmp_path, capsys):
  weights = shared_dir / "weights"
  if name == "compress_x2":
    pytest.importorskip("torch")
    if not (weights / "imdn" / "IMDN_x2.pth").is_file():
      pytest.skip("IMDN ×2 weights not in the shared folder")
  w = tmp_path / "w"
  argv = [name, "--budget", "smoke", "--workdir", str(w), "--data_dir",
          str(shared_dir / "datasets"), "--weights_dir", str(weights)]
  assert cli.main(argv) == 0
  res = json.loads((w / "results.json").read_text())
  md = (w / "results.md").read_text()
  assert res["budget"] == "smoke" and res["command"].endswith(" ".join(argv))
  assert res["device"]["platform"] and res["jax_version"] and res["precision"]
  assert len(res["rows"]) == EXPECTED_ROWS[name]
  bicubic = res["rows"][0]["results"]["set5"][f"x{res['scale']}"]["psnr"]
  assert 25 < bicubic < 45
  for row in res["rows"]:
    assert row["row"] in md and "skipped" not in row
    for by_scale in row["results"].values():
      psnr = by_scale[f"x{res['scale']}"]["psnr"]
      assert math.isfinite(psnr) and psnr > 5  # a few steps: finite, not yet good
  if name == "compress_x2":  # the official teacher is a real model
    assert res["rows"][1]["results"]["set5"]["x2"]["psnr"] > bicubic
  if name == "memsr_x4":
    assert res["extra"]["conversion"]["max_abs_diff_fp32_random_input"] < 1e-2
    assert res["extra"]["claim"]["activation_memory_ratio_student_over_teacher"] > 0
  capsys.readouterr()

  # Second invocation: nothing retrains or re-evaluates; the table is the same.
  runs = {r: json.loads((w / r / "run.json").read_text()) for r in res["runs"]}
  assert cli.main(argv) == 0
  out = capsys.readouterr().out
  assert ": training " not in out and "': evaluating on" not in out
  assert out.count("finished earlier") == len(runs)
  again = json.loads((w / "results.json").read_text())
  for r, info in runs.items():
    assert json.loads((w / r / "run.json").read_text()) == info
  assert [r.get("results") for r in again["rows"]] == [r.get("results") for r in res["rows"]]


def test_run_bookkeeping_survives_an_interrupt(tmp_path, monkeypatch, capsys):
  """A cut invocation keeps its wall time and is resumed; a finished run is never retrained."""
  import signal
  from memsr_jax.train import loop
  calls = []

  def cut(config, run_dir):
    calls.append(run_dir)
    raise loop.TrainingInterrupted(signal.SIGTERM, 3, run_dir)

  run = specs.Run("r", None, 10)
  monkeypatch.setattr(runner, "_train", cut)
  with pytest.raises(loop.TrainingInterrupted):
    runner.train_run(run, tmp_path)
  info = json.loads((tmp_path / "r" / "run.json").read_text())
  assert info["invocations"] == 1 and not info["finished"] and info["wall_s"] >= 0
  monkeypatch.setattr(runner, "_train", lambda config, run_dir: calls.append(run_dir))
  capsys.readouterr()
  done = runner.train_run(run, tmp_path)
  assert "(resuming)" in capsys.readouterr().out
  assert done["finished"] and done["invocations"] == 2 and len(calls) == 2
  assert runner.train_run(run, tmp_path) == done and len(calls) == 2
  assert runner.train_run(specs.Run("s", None, 1, skip="why"), tmp_path)["skipped"] == "why"
