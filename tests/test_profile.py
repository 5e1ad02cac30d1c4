"""The cost profiler on tiny sizes: JSON, the Table-5 Markdown, the PSNR-vs-memory plot."""
import json

import pytest

from memsr_jax.measure import zoo_profile as profile


def test_profile_json_markdown_and_plot(tmp_path):
  res = tmp_path / "results.json"
  res.write_text(json.dumps({"Set5": {"x2": {"psnr": 31.5, "ssim": 0.9, "n_images": 5}}}))
  out = tmp_path / "p"
  rc = profile.main(["--models", "plain,edsr_mini", "--scales", "2,4", "--hr", "32x16",
                     "--results", f"plain={res}", "--out", str(out)])
  assert rc == 0
  rows = json.loads((out / "profile.json").read_text())
  assert {(r["model"], r["scale"]) for r in rows} == {("plain", 2), ("plain", 4),
                                                      ("edsr_mini", 2), ("edsr_mini", 4)}
  for r in rows:
    assert r["params"] > 0 and r["mult_adds"] > 0 and r["memory_bytes"] > 0
    assert r["xla_flops"] > r["mult_adds"]  # ≈ 2 flops per multiply-add
  plain2 = next(r for r in rows if r["model"] == "plain" and r["scale"] == 2)
  assert plain2["two_feature_maps_bytes"] == 2 * 16 * 8 * 64 * 4
  md = (out / "profile.md").read_text()
  assert md.startswith("| model | params | mult-adds ×2 (G)") and "| edsr_mini |" in md
  assert (out / "psnr_vs_memory.png").stat().st_size > 1000
  points = json.loads((out / "psnr_vs_memory.json").read_text())
  assert points == [{"model": "plain", "memory_mb": plain2["memory_bytes"] / 1e6, "psnr": 31.5}]


def test_profile_rejects_bad_arguments(tmp_path, capsys):
  assert profile.main(["--models", "nope", "--out", str(tmp_path)]) == 2
  assert "unknown model" in capsys.readouterr().err
  res = tmp_path / "r.json"
  res.write_text(json.dumps({"Set14": {}}))
  assert profile.main(["--models", "plain", "--scales", "2", "--hr", "16x16", "--no_layerwise",
                       "--results", f"plain={res}", "--out", str(tmp_path)]) == 2
  assert "has no Set5 ×2 PSNR" in capsys.readouterr().err


def test_markdown_shows_paper_figures():
  rows = [{"model": "plain_m", "scale": s, "params": 1.2e6, "mult_adds": 1e9,
           "memory_bytes": 3e8} for s in (2, 4)]
  md = profile.markdown_table(rows, [2, 4])
  assert "| plain_m | 1.20M / 1.20M | 1.0 | 1.0 | 300 | 300 | 420 / 161 |" in md


@pytest.mark.parametrize("content,fragment", [
    ('{"Set5": {"x2": {"psnr": 31.', "is not readable JSON"),           # torn by a kill
    ('{"Set14": {"x2": {"psnr": 31.5}}}', "has no Set5 ×2 PSNR"),       # another dataset
    ('[1, 2]', "has no Set5 ×2 PSNR"),
    ("[" * 100000 + "]" * 100000, "maximum recursion depth exceeded"),  # deep nesting
])
def test_profile_reads_results_before_profiling(tmp_path, capsys, monkeypatch, content, fragment):
  def no_profiling(*a, **k):
    raise AssertionError("profiled before --results was read")

  monkeypatch.setattr(profile, "profile_model", no_profiling)
  res = tmp_path / "results.json"
  res.write_text(content)
  rc = profile.main(["--models", "plain", "--scales", "2", "--hr", "32x16",
                     "--results", f"plain={res}", "--out", str(tmp_path / "p")])
  err = capsys.readouterr().err
  assert rc == 2 and err.count("\n") == 1 and fragment in err and "Traceback" not in err, err
  rc = profile.main(["--models", "plain", "--scales", "2", "--results", f"edsr={res}",
                     "--out", str(tmp_path / "p")])
  assert rc == 2 and "is not profiled" in capsys.readouterr().err
