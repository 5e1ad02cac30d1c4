"""memsr_jax.plot: curves from synthetic metrics.jsonl files in the training loop's format."""
import json
import stat

from PIL import Image
import pytest

from memsr_jax import plot
from memsr_jax.utils import cli


def _write_run(folder, steps, psnr_offset=0.0, torn=False):
  folder.mkdir(parents=True)
  lines = []
  for s in steps:
    lines.append(json.dumps({"step": s, "train/loss": 10.0 / s, "train/lr": 1e-3,
                             "train/steps_per_sec": 5.0}))
    if s % 20 == 0:
      lines.append(json.dumps({"step": s, "val/val_psnr": 30 + psnr_offset + s / 100}))
  text = "\n".join(lines) + "\n" + ('{"step": 99, "train/lo' if torn else "")
  (folder / "metrics.jsonl").write_text(text)


def test_reads_the_loop_format_and_skips_a_torn_line(tmp_path):
  _write_run(tmp_path / "a", range(10, 101, 10), torn=True)
  (series,) = plot.find_runs([str(tmp_path / "a")])
  assert series.label == "a"
  assert series.loss[0] == (10, 1.0) and len(series.loss) == 10
  assert series.psnr == [(20, 30.2), (40, 30.4), (60, 30.6), (80, 30.8), (100, 31.0)]


def test_writes_png_and_svg_overlaying_runs_and_stages(tmp_path, capsys):
  _write_run(tmp_path / "runs" / "a", range(10, 101, 10))
  _write_run(tmp_path / "runs" / "m" / "teacher", range(10, 61, 10), psnr_offset=1)
  _write_run(tmp_path / "runs" / "m" / "student", range(10, 61, 10), psnr_offset=2)
  out = tmp_path / "plots"
  rc = cli.run(plot.main, [str(tmp_path / "runs" / "a"), str(tmp_path / "runs" / "m"),
                           "--out", str(out)])
  assert rc == 0
  names = sorted(p.name for p in out.iterdir())
  assert names == ["loss.png", "loss.svg", "psnr.png", "psnr.svg"]
  img = Image.open(out / "loss.png")
  assert img.size[0] > 400 and img.size[1] > 300
  svg = (out / "psnr.svg").read_text()
  assert svg.lstrip().startswith("<?xml") and "<svg" in svg
  for label in ("m/teacher", "m/student"):  # every stage is its own curve
    assert label in svg
  assert stat.S_IMODE((out / "psnr.png").stat().st_mode) == 0o644
  assert capsys.readouterr().err.count("wrote ") == 4


def test_refuses_to_overwrite_without_the_flag(tmp_path, capsys):
  _write_run(tmp_path / "a", range(10, 51, 10))
  out = tmp_path / "plots"
  assert cli.run(plot.main, [str(tmp_path / "a"), "--out", str(out)]) == 0
  before = (out / "loss.png").read_bytes()
  _write_run(tmp_path / "b", range(10, 201, 10))
  capsys.readouterr()
  rc = cli.run(plot.main, [str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)])
  err = capsys.readouterr().err
  assert rc == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
  assert (out / "loss.png").read_bytes() == before
  assert cli.run(plot.main, [str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out),
                             "--overwrite"]) == 0
  assert (out / "loss.png").read_bytes() != before


def test_bicubic_line_and_loss_only_runs(tmp_path):
  folder = tmp_path / "r"
  folder.mkdir()
  rows = [{"step": 5, "train/loss": 3.0}, {"step": 10, "train/loss": 2.0},
          {"step": 10, "val/val_psnr": 33.9, "val/bicubic_psnr": 32.9}]
  (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  written = plot.plot([str(folder / "metrics.jsonl")], tmp_path / "o")
  assert {p.name for p in written} == {"loss.png", "loss.svg", "psnr.png", "psnr.svg"}
  assert "bicubic 32.90 dB" in (tmp_path / "o" / "psnr.svg").read_text()
  (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
  written = plot.plot([str(folder)], tmp_path / "o2")
  assert {p.name for p in written} == {"loss.png", "loss.svg"}  # no validation: no PSNR plot


@pytest.mark.parametrize("bad", ["missing", "empty_dir"])
def test_bad_runs_are_one_line_errors(tmp_path, capsys, bad):
  run = tmp_path / bad
  if bad == "empty_dir":
    run.mkdir()
  rc = cli.run(plot.main, [str(run), "--out", str(tmp_path / "o")])
  err = capsys.readouterr().err
  assert rc == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
  assert not (tmp_path / "o").exists()


def test_bad_lines_and_values_are_skipped_with_a_note(tmp_path, capsys):
  folder = tmp_path / "r"
  folder.mkdir()
  good = [{"step": 5, "train/loss": 3.0}, {"step": 10, "train/loss": 2.0, "val/val_psnr": 30.0}]
  bad = [{"step": "abc", "train/loss": 1.0}, {"step": 6, "train/loss": "x"},
         {"step": 7, "train/loss": None}, {"step": 8, "train/loss": [1.0]},
         {"step": 9, "val/val_psnr": {"a": 1}}, [1, 2], {"step": True, "train/loss": 1.0}]
  lines = [json.dumps(r).encode() for r in good + bad] + [b'{"step": 11, "train/loss": \xff}',
                                                          b"[" * 100000]
  (folder / "metrics.jsonl").write_bytes(b"\n".join(lines) + b"\n")
  rc = cli.run(plot.main, [str(folder), "--out", str(tmp_path / "o")])
  err = capsys.readouterr().err
  assert rc == 0 and "Traceback" not in err, err
  assert "5 line(s) skipped" in err and "4 value(s)" in err, err
  (series,) = plot.find_runs([str(folder)])
  assert series.loss == [(5, 3.0), (10, 2.0)] and series.psnr == [(10, 30.0)]


def test_plots_never_go_inside_a_checkpoint_tree(tmp_path, capsys):
  run = tmp_path / "run"
  _write_run(run, range(10, 101, 10))
  step = run / "checkpoints" / "20"
  step.mkdir(parents=True)
  (step / "_CHECKPOINT_METADATA").write_text("{}")
  for out in (step, step / "plots", run / "checkpoints", run):
    rc = cli.run(plot.main, [str(run), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "checkpoint tree" in err and len(err.strip().splitlines()) == 1
  assert sorted(p.name for p in step.iterdir()) == ["_CHECKPOINT_METADATA"]
  assert cli.run(plot.main, [str(run), "--out", str(run / "plots")]) == 0
