"""No command replaces an existing output without --overwrite (upscale, eval, profile)."""
import json
import os
import stat
import subprocess
import sys

from conftest import REPO
import numpy as np
from PIL import Image

from memsr_jax import upscale
from memsr_jax.measure import zoo_profile


def _png(path, size=(20, 16), seed=0):
  path.parent.mkdir(parents=True, exist_ok=True)
  rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
  Image.fromarray(rgb).save(path)
  return path


def test_second_upscale_refuses_and_keeps_the_first_output(tmp_path, capsys):
  photo = _png(tmp_path / "photo.png")
  out = tmp_path / "out"
  args = ["--model", "plain_s", "--scale", "2", "--input", str(photo), "--output", str(out)]
  assert upscale.main(args) == 0
  first = (out / "photo.png").read_bytes()
  assert stat.S_IMODE((out / "photo.png").stat().st_mode) == 0o644
  capsys.readouterr()
  assert upscale.main(args[:-4] + ["--seed", "1", "--input", str(photo), "--output",
                                   str(out)]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and "--overwrite" in err and len(err.splitlines()) == 1
  assert (out / "photo.png").read_bytes() == first
  assert upscale.main(args + ["--seed", "1", "--overwrite"]) == 0
  assert (out / "photo.png").read_bytes() != first  # other random weights


def test_profile_refuses_an_earlier_profile_before_measuring(tmp_path, capsys):
  (tmp_path / "profile.md").write_text("earlier")
  rc = zoo_profile.main(["--models", "plain_s", "--scales", "2", "--hr", "32x32", "--out",
                         str(tmp_path)])
  err = capsys.readouterr().err
  assert rc == 2 and "--overwrite" in err and "profiling" not in err
  assert (tmp_path / "profile.md").read_text() == "earlier"


def _eval(*args):
  env = dict(os.environ, PYTHONPATH=str(REPO), XLA_FLAGS="--xla_force_host_platform_device_count=1")
  env.pop("MEMSR_DATA_DIR", None)
  return subprocess.run([sys.executable, "eval.py", "--config", "configs/eval.py", *args],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_eval_keeps_earlier_results_unless_overwrite(tmp_path):
  images = tmp_path / "imgs"
  _png(images / "a.png", size=(24, 24))
  out = tmp_path / "out"
  out.mkdir()
  (out / "results.json").write_text('{"earlier": 1}')
  args = [f"--config.datasets={images}", "--config.scales=2", f"--config.output_dir={out}"]
  p = _eval(*args)
  assert p.returncode == 2 and "--config.overwrite=True" in p.stderr, p.stderr[-2000:]
  assert len(p.stderr.strip().splitlines()) == 1
  assert json.loads((out / "results.json").read_text()) == {"earlier": 1}
  p = _eval(*args, "--config.overwrite=True")
  assert p.returncode == 0, p.stderr[-2000:]
  assert str(images) in json.loads((out / "results.json").read_text())
  assert "16." in p.stdout  # the table (its PSNR) on stdout
  assert "results: " in p.stderr  # status lines on stderr
