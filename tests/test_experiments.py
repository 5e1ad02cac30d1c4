"""memsr_jax.experiments: every experiment × budget builds valid configs; CLI errors; the smoke
budget end to end (slow), resuming on the second invocation."""
import json
import math

import pytest

from memsr_jax import methods
from memsr_jax.experiments import __main__ as cli
from memsr_jax.experiments import base
from memsr_jax.experiments import budgets
from memsr_jax.experiments import claims
from memsr_jax.experiments import exp_compress
from memsr_jax.experiments import report
from memsr_jax.experiments import runner
from memsr_jax.experiments import specs
from memsr_jax.methods.compress import stages as compress_stages


@pytest.mark.parametrize("budget", budgets.BUDGETS)
@pytest.mark.parametrize("name", specs.NAMES)
def test_every_experiment_and_budget_builds_valid_configs(name, budget, tmp_path):
  exp = specs.build(name, budget, str(tmp_path / "data"), str(tmp_path / "weights"),
                    str(tmp_path / "w"))
  assert exp.runs and exp.rows
  runs = {r.name for r in exp.runs}
  for r in exp.runs:
    c = r.config
    methods.validate(c)  # the engine's, the method's and the top-level keys
    assert c.data.dataset == specs.TRAIN_SETS and c.data.root == str(tmp_path / "data")
    assert c.val.dataset == ""  # nothing is selected on Set5 during training
    assert r.steps > 0 and c.ckpt_every <= r.steps
    if c.method == "compress":
      assert compress_stages.parse_stages(c.compress.stages) == ["distill"]
      assert c.compress.distill.total_steps == r.steps
      assert c.compress.distill.teacher.source in ("torch", "none")
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
  s = budgets.settings("memsr_x4", "cpu")
  assert teacher.config.model.name == "memsr_teacher_s" and teacher.steps == s["teacher_steps"]
  assert {r.steps for r in students} == {s["student_steps"]} and s["student_steps"] > 0
  assert {(r.config.memsr.init, r.config.memsr.distill) for r in students} == {
      ("winning", True), ("winning", False), ("random", True), ("random", False)}
  assert {r.config.teacher_checkpoint for r in students} == {str(tmp_path / "teacher")}
  seeded = {r.name: r for r in specs.build("memsr_x4", "cpu", "d", "w", str(tmp_path),
                                           seeds=3).runs}
  # Every seed trains its own teacher, and its students distill from that one.
  assert seeded["teacher_seed2"].config.seed == teacher.config.seed + 2
  assert seeded["winning_distill_seed2"].config.teacher_checkpoint == str(
      tmp_path / "teacher_seed2")


def test_mssr_dense_model_matches_the_level_size():
  from memsr_jax.methods.mssr import masks
  from memsr_jax.utils import pytrees
  kw = {"n_feats": 16, "n_resblocks": 8, "scale": 2}
  sizes = specs.level_sizes("edsr_mini", kw, [0.5, 0.75], masks.DEFAULT_PRUNABLE)
  assert sizes[0] > sizes[1] > sizes[2]
  params_of = base.params_of
  n = lambda f: pytrees.count_params(params_of("edsr_mini", {**kw, "n_feats": f}))
  assert n(16) == sizes[0]
  f = specs.matching_width("edsr_mini", kw, sizes[2])
  assert abs(n(f) - sizes[2]) <= min(abs(n(f - 1) - sizes[2]), abs(n(f + 1) - sizes[2]))


def test_compress_distills_from_a_fixed_teacher(tmp_path):
  """EDSRmini (res_scale 2) distilled from the official IMDN ×2 weights with the release loss,
  with plain L1 KD and without a teacher; --teacher replaces IMDN; without the IMDN weights the
  runs that need them are skipped with the reason."""
  exp = specs.build("compress_x2", "cpu", "d", str(tmp_path), str(tmp_path / "w"), seeds=1)
  runs = {r.name: r for r in exp.runs}
  assert set(runs) == {"kd", "kd_l1", "no_teacher"}
  kd = runs["kd"].config.compress
  assert (kd.shrink.student, kd.distill.pyramid, kd.distill.levels, kd.distill.alpha) == (
      "edsr_mini", "release", 5, 0.1)
  assert (kd.distill.teacher.source, kd.distill.teacher.model) == ("torch", "imdn")
  assert kd.distill.teacher.path.endswith("IMDN_x2.pth") and kd.distill.optim.ema_decay == 0.999
  assert tuple(kd.distill.schedule.milestones) == (kd.distill.total_steps // 4,)
  assert runs["kd_l1"].config.compress.distill.pyramid == "l1"
  assert runs["no_teacher"].config.compress.distill.teacher.source == "none"
  assert runs["kd"].skip and not runs["no_teacher"].skip  # no weights under tmp_path
  given = specs.build("compress_x2", "cpu", "d", "v", str(tmp_path / "w"), teacher="/t/edsr")
  assert {r.config.compress.distill.teacher.path for r in given.runs} == {"/t/edsr", ""}
  assert not any(r.skip for r in given.runs)


def test_mssr_arms_train_the_same_total_steps():
  exp = specs.build("mssr_x2", "cpu", "d", "v", "w", seeds=1)
  runs = {r.name: r for r in exp.runs}
  steps = {r.steps for r in runs.values()}
  assert len(steps) == 1 and runs["dense"].config.total_steps in steps
  m = runs["mssr"].config.mssr
  assert (runs["nossd"].config.mssr.ssd_weight, runs["reinit"].config.mssr.rewind_to) == (
      0.0, "random")
  assert m.ssd_weight > 0 and m.rewind_to == "rewind"
  t = runs["ticket"].config.mssr
  assert (t.rounds, t.expand, t.ssd_weight) == (1, False, 0.0)
  assert t.dense_steps + t.round_steps in steps
  assert abs(t.sparsities[0] - 0.9375) < 1e-9  # the smallest level, in one prune
  gpu = specs.build("mssr_x2", "gpu8", "d", "v", "w")
  assert gpu.runs[0].config.mssr.rounds == 4  # 93.75 % of the body convs


def test_memsr_plain_m_at_gpu8_and_memory_at_1080p():
  exp = specs.build("memsr_x4", "gpu8", "d", "v", "w")
  assert exp.runs[0].config.model.name == "memsr_teacher_m"
  assert exp.memory_hr == (1080, 1920)
  labels = [r.label for r in exp.rows]
  assert "Plain-M, winning init + distillation" in labels
  assert any("EDSR-baseline" in x for x in labels) and any("IMDN ×4" in x for x in labels)


def test_seeds_repeat_the_seeded_runs():
  exp = specs.build("compress_x2", "cpu", "d", "v", "w", seeds=3)
  names = [r.name for r in exp.runs]
  assert names.count("kd_seed1") == 1 and names.count("kd_seed2") == 1
  seeds = {r.name: r.config.seed for r in exp.runs if r.name.startswith("kd")}
  assert seeds["kd_seed1"] == seeds["kd"] + 1 and seeds["kd_seed2"] == seeds["kd"] + 2
  labels = [r.label for r in exp.rows]
  i = labels.index(exp_compress.KD)
  assert labels[i + 1:i + 3] == [exp_compress.KD + " (seed 1)", exp_compress.KD + " (seed 2)"]


def _data(tmp_path):
  import numpy as np
  from PIL import Image
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
  res = {"scale": 2, "title": "T", "budget": "cpu", "claims": [], "command": "python -m x",
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
    "edsr_baseline_x2": 5, "memsr_x4": 16, "mssr_x2": 14, "compress_x2": 11,
}


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("name", specs.NAMES)
def test_smoke_end_to_end_and_resume(name, shared_dir, tmp_path, capsys):
  weights = shared_dir / "weights"
  pytest.importorskip("torch")  # the IMDN reference rows
  if not (weights / "imdn" / "IMDN_x2.pth").is_file():
    pytest.skip("IMDN weights not in the shared folder")
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
  imdn = [r for r in res["rows"] if r["source"] == "torch"]
  if imdn:  # the official weights are a real model
    assert imdn[0]["results"]["set5"][f"x{res['scale']}"]["psnr"] > bicubic
  kinds = [c["kind"] for c in res["claims"]]
  if name != "edsr_baseline_x2":
    assert len(kinds) >= 3 and "relative" in kinds and "cost" in kinds
  for c in res["claims"]:
    assert set(c) >= {"id", "kind", "source", "sentence", "paper", "ours", "seeds", "verdict",
                      "why"} and c["kind"] in claims.KINDS
    assert c["verdict"] == claims.NOT_JUDGED and c["id"] in md
    if c["kind"] == "absolute":
      assert c["converged"] is False and "gate" in c
  assert md.index("| claim |") < md.index("| row |")
  if name == "memsr_x4":
    assert res["extra"]["conversion"]["max_abs_diff_fp32_random_input"] < 1e-2
    memory = {c["id"]: c for c in res["claims"]}["memory-imdn"]
    assert 0 < memory["ours"]["value"] < 1
  if name == "mssr_x2":
    assert res["extra"]["storage"]["scalable_checkpoint_bytes_on_disk"] > 0
  capsys.readouterr()

  # Second invocation: nothing retrains or re-evaluates; the table is the same.
  runs = {r: json.loads((w / r / "run.json").read_text()) for r in res["runs"]}
  assert cli.main(argv) == 0
  log = capsys.readouterr().err  # status lines are on stderr
  assert ": training " not in log and "': evaluating on" not in log
  assert log.count("finished earlier") == len(runs)
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

  run = specs.TrainRun("r", None, 10)
  monkeypatch.setattr(runner, "_train", cut)
  with pytest.raises(loop.TrainingInterrupted):
    runner.train_run(run, tmp_path)
  info = json.loads((tmp_path / "r" / "run.json").read_text())
  assert info["invocations"] == 1 and not info["finished"] and info["wall_s"] >= 0
  monkeypatch.setattr(runner, "_train", lambda config, run_dir: calls.append(run_dir))
  capsys.readouterr()
  done = runner.train_run(run, tmp_path)
  assert "(resuming)" in capsys.readouterr().err
  assert done["finished"] and done["invocations"] == 2 and len(calls) == 2
  assert runner.train_run(run, tmp_path) == done and len(calls) == 2
  assert runner.train_run(specs.TrainRun("s", None, 1, skip="why"), tmp_path)["skipped"] == "why"
  other = specs.TrainRun("o", None, 10)  # --no_train: never trained, recorded as skipped
  assert "--no_train" in runner.train_run(other, tmp_path, train=False)["skipped"]
  assert len(calls) == 2 and runner.train_run(run, tmp_path, train=False) == done


def test_rows_are_evaluated_at_highest_precision(tmp_path):
  """The lowered-IR guard: a checkpoint row goes through the one predictor, every conv of its
  forward carries Precision.HIGHEST, and the row records the policy."""
  import jax
  import numpy as np

  from memsr_jax import checkpoints
  from memsr_jax.experiments import rows as rows_lib
  from memsr_jax.models import registry
  from memsr_jax.utils import precision
  kw = {"scale": 2, "n_feats": 4, "n_resblocks": 1}
  model = registry.build_model("edsr_mini", **kw)
  checkpoints.save_model_checkpoint(tmp_path / "w" / "r" / "model", "edsr_mini", kw,
                                    registry.random_params(model, 0))
  exp = specs.build("edsr_baseline_x2", "smoke", "d", "v", str(tmp_path / "w"))
  row = base.Row("r", "r", ("checkpoint", "model"))
  dump = tmp_path / "ir"
  old = jax.config.values.get("jax_dump_ir_to", "")
  jax.config.update("jax_dump_ir_to", str(dump))
  try:
    predict, info = rows_lib.row_model(row, exp, tmp_path / "w")
    predict(np.random.default_rng(0).uniform(0, 255, (1, 5, 11, 3)).astype(np.float32))
  finally:
    jax.config.update("jax_dump_ir_to", old)
  ops = [op for f in sorted(dump.glob("*.mlir"))
         for op in precision.lowered_precisions(f.read_text())]
  assert any(op == "convolution" for op, _ in ops)
  assert {p for _, p in ops} == {"HIGHEST"}, ops
  assert info["precision"] == "highest" and info["params"] > 0
