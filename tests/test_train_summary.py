"""memsr_jax.train.summary: the end-of-training summary, from the files a run leaves."""
import json
import os

from memsr_jax.train import summary


def _run(workdir, rows, steps=(2, 4)):
  workdir.mkdir(parents=True)
  (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows)
                                         + '{"step": 9, "val/val')  # a torn last line
  for s in steps:
    (workdir / "checkpoints" / str(s)).mkdir(parents=True)
  (workdir / "tb").mkdir()
  (workdir / ".lock").write_text("")


def test_summary_reports_final_best_bicubic_workdir_and_next_commands(tmp_path):
  w = tmp_path / "runs" / "q"
  _run(w, [{"step": 1, "train/loss": 3.0},
           {"step": 2, "val/val_psnr": 33.5, "val/bicubic_psnr": 32.93},
           {"step": 4, "val/val_psnr": 33.25}])
  text = summary.summary(w, "skimage_val", 2)
  lines = text.splitlines()
  assert lines[0] == f"finished: {w}"
  assert lines[1] == ("  validation skimage_val Y-PSNR: final 33.25 dB (step 4), best 33.50 dB "
                      "(step 2); bicubic 32.93 dB (final +0.32 dB)")
  assert lines[2] == "  workdir: checkpoints/ (steps 2, 4), metrics.jsonl, tb/"
  assert lines[3] == "  next:"
  assert lines[4].startswith(f"    memsr-eval --config.model.checkpoint={w} ")
  assert lines[5].startswith("    memsr-fetch sample && memsr-upscale ")  # photo.png exists then
  assert f"--output {w}/upscaled --scale 2" in lines[5]
  assert lines[6] == f"    memsr-plot {w} --out {w}/plots"


def test_summary_without_validation_and_with_stages(tmp_path):
  w = tmp_path / "m"
  _run(w / "teacher", [{"step": 1, "val/val_psnr": 30.0}])
  _run(w / "student", [{"step": 1, "train/loss": 2.0}])
  os.utime(w / "teacher" / "metrics.jsonl", (1, 1))  # student written last
  text = summary.summary(w, "set5", 4)
  assert text.splitlines()[0] == f"finished: {w} (last stage: student)"
  assert "no validation" in text
  assert "workdir: student/, teacher/" in text
