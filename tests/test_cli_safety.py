"""Nothing lost, no traceback for a user's mistake (issue 16): every command refuses to overwrite
what it must not, and a user error is one line `error: …` on stderr with exit status 2."""
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from memsr_jax import upscale
from memsr_jax.deploy import png_stream
from memsr_jax.train import workdir_lock
from memsr_jax.utils import cli

REPO = pathlib.Path(__file__).resolve().parents[1]


def _env():
  return dict(os.environ, PYTHONPATH=str(REPO),
              XLA_FLAGS="--xla_force_host_platform_device_count=1")


def run_cmd(*args, timeout=300):
  """A command as the user runs it: (returncode, stdout, stderr)."""
  p = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=_env(), capture_output=True,
                     text=True, timeout=timeout)
  return p.returncode, p.stdout, p.stderr


def assert_user_error(result, *fragments):
  """Exit status 2, one `error:` line naming the problem, no traceback."""
  rc, out, err = result
  assert rc == 2, (rc, out[-2000:], err[-3000:])
  assert "Traceback" not in out + err, err[-3000:]
  lines = [l for l in err.splitlines() if l.startswith("error: ")]
  assert len(lines) == 1, err[-3000:]
  for f in fragments:
    assert f in lines[0], lines[0]


def _png(path, size=(12, 10), seed=0):
  rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(rgb).save(path)
  return path


def _snapshot(folder: pathlib.Path) -> dict:
  return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ----------------------------------------------------------------------------- the convention


def test_user_error_is_one_line_exit_2_and_bugs_keep_their_traceback(capsys):
  def bad(argv):
    raise cli.UserError("--x 3 is wrong\nuse --x 2")
  assert cli.run(bad) == 2
  assert capsys.readouterr().err == "error: --x 3 is wrong use --x 2\n"

  def bug(argv):
    raise KeyError("internal")
  with pytest.raises(KeyError):
    cli.run(bug)


# ----------------------------------------------------------------------------- data loss: upscale


def _upscale(*argv):
  return upscale.main(["--model", "plain_s", "--scale", "2", "--quiet", *map(str, argv)])


def test_upscale_never_writes_over_its_inputs(tmp_path, capsys):
  inp = tmp_path / "in"
  _png(inp / "a.png")
  _png(inp / "b.png", seed=1)
  before = _snapshot(inp)
  for extra in ([], ["--stream_input", "always"]):
    assert _upscale("--input", inp, "--output", inp, *extra) == 2
    assert "is the input folder" in capsys.readouterr().err
    # The same folder spelled differently, and one file into its own folder.
    assert _upscale("--input", inp, "--output", f"{inp}/../in/", *extra) == 2
    assert _upscale("--input", inp / "a.png", "--output", inp, *extra) == 2
    assert "overwrite the input itself" in capsys.readouterr().err
  assert _snapshot(inp) == before


def test_upscale_refuses_two_inputs_with_one_output_name(tmp_path, capsys):
  inp = tmp_path / "in"
  _png(inp / "photo.png")
  Image.open(_png(inp / "other.png", seed=1)).save(inp / "photo.bmp")
  assert _upscale("--input", inp, "--output", tmp_path / "out") == 2
  assert "would both be written to" in capsys.readouterr().err
  assert not list((tmp_path / "out").glob("*.png")) if (tmp_path / "out").exists() else True


def test_upscale_writes_under_a_temporary_name_until_complete(tmp_path):
  dst = tmp_path / "x.png"
  w = png_stream.PNGRowWriter(dst, 4, 2)
  w.write_rows(np.zeros((1, 4, 3), np.uint8))
  assert not dst.exists()  # a kill now leaves no file under the final name
  w.write_rows(np.zeros((1, 4, 3), np.uint8))
  w.close()
  assert dst.exists() and [p.name for p in tmp_path.iterdir()] == ["x.png"]
  dst.write_bytes(b"previous run")
  with pytest.raises(RuntimeError):
    with png_stream.PNGRowWriter(dst, 4, 2) as w:
      w.write_rows(np.zeros((1, 4, 3), np.uint8))
      raise RuntimeError("killed mid-write")
  assert dst.read_bytes() == b"previous run" and len(list(tmp_path.iterdir())) == 1


def test_upscale_killed_mid_write_leaves_no_png(tmp_path):
  """SIGKILL while a (slow) writer is open: the final name never appears."""
  code = ("import sys, time, numpy as np; from memsr_jax.deploy import png_stream\n"
          f"w = png_stream.PNGRowWriter({str(tmp_path / 'out.png')!r}, 8, 4)\n"
          "w.write_rows(np.zeros((2, 8, 3), np.uint8)); print('writing', flush=True)\n"
          "time.sleep(60)\n")
  p = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                       text=True)
  assert p.stdout.readline().strip() == "writing"
  p.kill()
  p.wait()
  assert not (tmp_path / "out.png").exists()
  assert [f.name for f in tmp_path.iterdir()] == [f".out.png.partial-{p.pid}"]
  from memsr_jax.utils import safe_io
  safe_io.remove_stale_partials(tmp_path / "out.png")  # what the next upscale run does
  assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- data loss: train


def test_workdir_lock_is_exclusive_and_freed_by_kill9(tmp_path):
  with workdir_lock.hold(tmp_path):
    with pytest.raises(workdir_lock.WorkdirBusy, match=f"pid {os.getpid()}"):
      with workdir_lock.hold(tmp_path):
        pass
  code = ("import time; from memsr_jax.train import workdir_lock\n"
          f"with workdir_lock.hold({str(tmp_path)!r}):\n"
          "  print('held', flush=True); time.sleep(60)\n")
  p = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                       text=True)
  assert p.stdout.readline().strip() == "held"
  with pytest.raises(workdir_lock.WorkdirBusy, match=f"pid {p.pid}"):
    with workdir_lock.hold(tmp_path):
      pass
  p.send_signal(signal.SIGKILL)
  p.wait()
  with workdir_lock.hold(tmp_path):  # the kernel released it
    pass


def test_train_refuses_a_busy_workdir_and_bad_flags(tmp_path):
  config = REPO / "configs" / "quickstart.py"
  work = tmp_path / "w"
  with workdir_lock.hold(work):
    assert_user_error(run_cmd("train.py", f"--config={config}", f"--workdir={work}"),
                      "is in use by pid")
  assert not (work / "checkpoints").exists()
  assert_user_error(run_cmd("train.py", f"--config={config}", f"--workdir={work}",
                            "--config.log_every=0"), "config.log_every must be at least 1")
  (tmp_path / "file").write_text("notes")
  assert_user_error(run_cmd("train.py", f"--config={config}", f"--workdir={tmp_path / 'file'}"),
                    "is a file")
  assert_user_error(run_cmd("train.py", f"--config={config}", f"--workdir={work}",
                            "--config.data.batchsize=4"), "batchsize")
  assert (tmp_path / "file").read_text() == "notes"


@pytest.mark.parametrize("flag,fragment", [
    ("--config.data.dataset=nosuchset", "unknown dataset 'nosuchset'"),
    ("--config.val.dataset=/nonexistent/val", "config.val.dataset='/nonexistent/val'"),
    ("--config.method=memsr", "needs a config.memsr section"),
    ("--config.model.name=nosuchmodel", "unknown model 'nosuchmodel'")])
def test_train_config_mistakes_are_one_line(tmp_path, flag, fragment):
  config = REPO / "configs" / "quickstart.py"
  assert_user_error(run_cmd("train.py", f"--config={config}", f"--workdir={tmp_path / 'w'}",
                            "--config.total_steps=1", flag), fragment)


_SHAPE_BUG = """
import runpy, sys
from memsr_jax.train import supervised
def loss_fn(*args, **kwargs):
  raise ValueError("Incompatible shapes for broadcasting: (4, 8) and (4, 16)")
supervised.SupervisedTask.loss_fn = loss_fn
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def test_train_internal_error_keeps_its_traceback(tmp_path):
  """A ValueError from inside training (here a shape bug) is a bug, not a config mistake."""
  config = REPO / "configs" / "quickstart.py"
  rc, _, err = run_cmd("-c", _SHAPE_BUG, f"--config={config}", f"--workdir={tmp_path / 'w'}",
                       "--config.total_steps=1", "--config.val.dataset=")
  assert rc == 1, err[-3000:]
  assert "Traceback" in err and "ValueError: Incompatible shapes" in err, err[-3000:]
  assert not any(l.startswith("error: ") for l in err.splitlines()), err[-3000:]


@pytest.mark.slow
def test_train_refuses_a_workdir_in_a_checkpoint_tree_and_a_failed_run_leaves_nothing(tmp_path):
  config = REPO / "configs" / "quickstart.py"
  run = tmp_path / "run"
  (run / "checkpoints" / "6").mkdir(parents=True)
  (run / "checkpoints" / "6" / "_CHECKPOINT_METADATA").write_text("{}")
  assert_user_error(run_cmd("train.py", f"--config={config}",
                            f"--workdir={run / 'checkpoints' / '6' / 'mine'}"), "checkpoint tree")
  assert sorted(p.name for p in run.rglob("*")) == ["6", "_CHECKPOINT_METADATA", "checkpoints"]
  fresh = tmp_path / "fresh"
  assert_user_error(run_cmd("train.py", f"--config={config}", f"--workdir={fresh}",
                            f"--config.data.root={tmp_path / 'no_data'}"), "is not a folder")
  assert not fresh.exists()  # neither the folder nor its .lock


def test_a_workdir_inside_a_checkpoint_tree_is_refused(tmp_path):
  from memsr_jax.utils import safe_io
  run = tmp_path / "run"
  (run / "checkpoints" / "6").mkdir(parents=True)
  for work in (run / "checkpoints", run / "checkpoints" / "6" / "mine", run / "checkpoints" / "7"):
    with pytest.raises(cli.UserError, match="checkpoint tree"):
      safe_io.check_not_in_checkpoint_tree(work, "--workdir")
  safe_io.check_not_in_checkpoint_tree(run, "--workdir")  # the run itself: a resume


def test_the_workdir_lock_file_is_removed_with_the_lock(tmp_path):
  with workdir_lock.hold(tmp_path / "w"):
    assert (tmp_path / "w" / ".lock").read_text().startswith(f"pid {os.getpid()}")
  assert list((tmp_path / "w").iterdir()) == []
  from memsr_jax.utils import safe_io
  with pytest.raises(cli.UserError):
    with safe_io.removed_if_left_empty(tmp_path / "new") as new:
      with workdir_lock.hold(new):
        raise cli.UserError("failed at once")
  assert not (tmp_path / "new").exists()
  with safe_io.removed_if_left_empty(tmp_path / "kept") as kept:
    kept.mkdir()
    (kept / "results.json").write_text("{}")
  assert (kept / "results.json").exists()


@pytest.mark.parametrize("value,fragment", [("-3", "n_feats=-3 (expected an integer >= 1)"),
                                            ("0", "n_feats=0 (expected an integer >= 1)")])
def test_train_checks_model_hyperparameter_values_first(tmp_path, value, fragment):
  config = REPO / "configs" / "quickstart.py"
  assert_user_error(run_cmd("train.py", f"--config={config}", f"--workdir={tmp_path / 'w'}",
                            f"--config.model.kwargs.n_feats={value}"), "config.model.kwargs",
                    fragment)
  assert not (tmp_path / "w").exists()


# ----------------------------------------------------------------------------- data loss: import


def test_torch_import_refuses_a_non_empty_out(tmp_path):
  out = tmp_path / "run"
  (out / "checkpoints" / "2").mkdir(parents=True)
  (out / "notes.txt").write_text("mine")
  weights = tmp_path / "w.pth"
  weights.write_text("not a pth")
  assert_user_error(run_cmd("-m", "memsr_jax.import_weights", "--weights", weights,
                            "--model", "imdn", "--scale", "2", "--out", out),
                    "is not empty", "--overwrite")
  assert (out / "notes.txt").read_text() == "mine" and (out / "checkpoints" / "2").is_dir()
  # --overwrite replaces --out, but never when the weights themselves live in it.
  (out / "w.pth").write_text("weights")
  assert_user_error(run_cmd("-m", "memsr_jax.import_weights", "--weights", out / "w.pth",
                            "--model", "imdn", "--scale", "2", "--out", out, "--overwrite"),
                    "lies inside --out")
  assert (out / "w.pth").read_text() == "weights"


# ----------------------------------------------------------------------------- user errors


def _images(folder, n=2):
  for i in range(n):
    _png(folder / f"im{i}.png", size=(24, 24), seed=i)
  return folder


EVAL = ("eval.py", "--config", REPO / "configs" / "eval.py")


def test_eval_user_errors_are_one_line_before_any_computing(tmp_path):
  imgs = _images(tmp_path / "imgs")
  (tmp_path / "text.pth").write_text("hello")
  (tmp_path / "file").write_text("notes")
  assert_user_error(run_cmd(*EVAL, "--config.datasets=nosuch", f"--config.data_dir={tmp_path}"),
                    "unknown dataset 'nosuch'")
  assert_user_error(run_cmd(*EVAL, f"--config.datasets={imgs}", "--config.scales=abc"),
                    "'abc' is not an integer scale")
  assert_user_error(run_cmd(*EVAL, f"--config.datasets={imgs}", "--config.scales=2",
                            "--config.model.name=imdn",
                            f"--config.model.torch_weights={tmp_path / 'text.pth'}",
                            f"--config.output_dir={tmp_path / 'out'}"),
                    "cannot read", "as PyTorch weights")
  assert_user_error(run_cmd(*EVAL, f"--config.datasets={imgs}", "--config.scales=2",
                            f"--config.output_dir={tmp_path / 'file'}"), "is a file")


@pytest.mark.slow
@pytest.mark.parametrize("args,fragment", [
    (["--config.datasets={tmp}/empty"], "no images"),
    (["--config.scales=0"], "must be positive"),
    (["--config.scales=-2"], "must be positive"),
    (["--config.foo=1"], "no key 'foo'"),
    (["--config.model.checkpoint={tmp}/none"], "does not exist"),
    (["--bogus"], "Unknown command line flag 'bogus'"),
])
def test_eval_more_user_errors(tmp_path, args, fragment):
  imgs = _images(tmp_path / "imgs")
  (tmp_path / "empty").mkdir()
  args = [a.format(tmp=tmp_path) for a in args]
  assert_user_error(run_cmd(*EVAL, f"--config.datasets={imgs}", *args), fragment)


def test_profile_user_errors(tmp_path):
  (tmp_path / "file").write_text("notes")
  prof = ("-m", "memsr_jax.profile", "--models", "plain_s", "--out", tmp_path / "p")
  assert_user_error(run_cmd(*prof, "--scales", "abc"), "--scales 'abc'")
  assert_user_error(run_cmd(*prof, "--hr", "0x0"), "must be positive")
  assert not (tmp_path / "p").exists()


@pytest.mark.slow
@pytest.mark.parametrize("args,fragment", [
    (["--hr", "64xfoo"], "not WIDTHxHEIGHT"),
    (["--scales", "3", "--hr", "64x64"], "not divisible by scale 3"),
    (["--out", "{tmp}/file"], "is a file"),
    (["--models", "nosuch"], "unknown model(s) ['nosuch']"),
    (["--repeats", "0"], "--repeats must be at least 1"),
])
def test_profile_more_user_errors(tmp_path, args, fragment):
  (tmp_path / "file").write_text("notes")
  args = [a.format(tmp=tmp_path) for a in args]
  assert_user_error(run_cmd("-m", "memsr_jax.profile", "--models", "plain_s", "--out",
                            tmp_path / "p", *args), fragment)


def test_upscale_usage_errors_are_one_line(tmp_path):
  imgs = _images(tmp_path / "imgs")
  up = ("-m", "memsr_jax.upscale", "--model", "plain_s", "--input", imgs, "--output",
        tmp_path / "out")
  assert_user_error(run_cmd(*up, "--tile", "-3"), "--tile: must be >= 1")
  assert_user_error(run_cmd(*up, "--png_level", "99"), "--png_level must be 0..9")


def test_torch_import_user_errors(tmp_path):
  (tmp_path / "text.pth").write_text("hello")
  ti = ("-m", "memsr_jax.import_weights", "--weights", tmp_path / "text.pth",
        "--out", tmp_path / "out")
  assert_user_error(run_cmd(*ti, "--model", "imdn", "--scale", "2"), "is not a weights file")
  assert_user_error(run_cmd(*ti, "--model", "imdn", "--scale", "2", "--set", "foo=3"),
                    "no hyperparameter(s) ['foo']")
  assert not (tmp_path / "out").exists()  # nothing created for a failed import
