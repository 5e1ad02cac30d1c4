"""Every tool's progress goes through utils.console.progress: on stderr, never on stdout (where
results are), with the time left on plain lines; upscale's --quiet hides it."""
import functools
import time

from PIL import Image
import pytest

from memsr_jax import evaluation
from memsr_jax import upscale
from memsr_jax.experiments import runner
from memsr_jax.image import bicubic
from memsr_jax.image import io as image_io
from memsr_jax.measure import zoo_profile
from memsr_jax.utils import console


@pytest.fixture
def every_step(monkeypatch):
  """Plain progress lines (no terminal) at every step instead of every 30 s."""
  monkeypatch.setattr(console, "progress",
                      functools.partial(console.progress, tty=False, min_interval=0.0))


def test_plain_line_shows_the_time_left(capsys):
  p = console.progress(10, desc="train", unit="step", tty=False, min_interval=0.0)
  p._t0 = time.monotonic() - 10.0  # 2 steps in 10 s: 8 steps left take 40 s
  p.set_postfix(loss="1.5")
  p.update(2)
  p.update(8)  # done: no time left to tell
  p.close()
  out, err = capsys.readouterr()
  assert out == ""
  assert err.splitlines() == ["train: 2/10 step, loss 1.5, eta 0:00:40",
                             "train: 10/10 step, loss 1.5"]


def test_final_line_can_be_left_to_the_caller(capsys):
  with console.progress(3, desc="x", tty=False, min_interval=1e9, final_line=False) as p:
    p.update(3)
  assert capsys.readouterr().err == ""
  with console.progress(3, desc="x", tty=False, min_interval=1e9) as p:
    p.update(3)
  assert capsys.readouterr().err == "x: 3/3 it\n"


@pytest.mark.parametrize("quiet", [False, True])
def test_upscale_tiles(tmp_path, sample_image, capsys, every_step, quiet):
  d = tmp_path / "in"
  d.mkdir()
  Image.fromarray(sample_image[:21, :17]).save(d / "a.png")
  rc = upscale.main(["--model", "plain_s", "--scale", "2", "--input", str(d), "--output",
                     str(tmp_path / "out"), "--tile", "46"] + (["--quiet"] if quiet else []))
  out, err = capsys.readouterr()
  assert rc == 0 and out == ""
  tiles = [line for line in err.splitlines()
           if line.startswith("[1/1] a.png: ")
           and (line.endswith(" tile") or " tile, eta " in line)]
  if quiet:
    assert err == ""
  else:
    assert len(tiles) >= 2 and "[1/1] a.png: 1/" in tiles[0], err
    assert err.splitlines()[-1].startswith("[1/1] a.png: 17×21 → 34×42 "), err


def test_eval_images(tmp_path, sample_image, capsys, every_step):
  d = tmp_path / "imgs"
  image_io.write_png(d / "a.png", sample_image[:40, :48])
  image_io.write_png(d / "b.png", sample_image[100:148, 50:90])
  r = evaluation.evaluate_dataset(lambda lr: bicubic.imresize_np(lr[0], scale=2)[None],
                                  str(d), 2, None, show_progress=True)
  out, err = capsys.readouterr()
  assert r["n_images"] == 2 and out == ""
  assert err.splitlines()[0].startswith("imgs ×2: 1/2 image, eta ")
  assert err.splitlines()[1] == "imgs ×2: 2/2 image"
  evaluation.evaluate_dataset(lambda lr: bicubic.imresize_np(lr[0], scale=2)[None],
                              str(d), 2, None)  # a library call shows nothing by default
  assert capsys.readouterr().err == ""


def test_profile_models(tmp_path, capsys, every_step):
  rc = zoo_profile.main(["--models", "plain", "--scales", "2", "--hr", "16x16", "--no_layerwise",
                         "--out", str(tmp_path / "p")])
  out, err = capsys.readouterr()
  assert rc == 0 and out.startswith("| model |")  # the table stays on stdout
  assert "profiling plain ×2 …" in err and "profile: 1/1 model" in err
  assert "profil" not in out


def test_experiment_status_lines(capsys):
  runner._log("run x: training 10 steps")
  out, err = capsys.readouterr()
  assert out == "" and err == "[experiment] run x: training 10 steps\n"


def test_a_bar_left_to_the_caller_is_cleared_for_its_line(capsys):
  with console.progress(3, desc="[1/1] a.png", unit="tile", tty=True, final_line=False) as p:
    p.update(3)
  console.say("[1/1] a.png: done")
  out, err = capsys.readouterr()
  assert out == "" and "a.png:   0%" in err  # the bar was shown
  assert err.split("\r")[-1] == "[1/1] a.png: done\n", repr(err)  # no bar left above the line
  assert "\n" not in err[:-1], repr(err)
