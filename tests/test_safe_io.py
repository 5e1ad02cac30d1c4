"""safe_io: outputs checked before computing, never inside checkpoints or over inputs, atomic."""
import errno
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from memsr_jax.utils import jsonio
from memsr_jax.utils import safe_io
from memsr_jax.utils.cli import UserError


def _dead_pid() -> int:
  p = subprocess.Popen([sys.executable, "-c", "pass"])
  p.wait()
  return p.pid


def _workdir(root: pathlib.Path, steps=(20, 40)) -> pathlib.Path:
  """The layout train.py leaves: <workdir>/checkpoints/<step>/ with Orbax's markers."""
  for s in steps:
    step = root / "checkpoints" / str(s)
    (step / "default").mkdir(parents=True)
    (step / "_CHECKPOINT_METADATA").write_text("{}")
    (step / "commit_success.txt").write_text("")
  (root / "metrics.jsonl").write_text("")
  return root


@pytest.mark.parametrize("rel", ["checkpoints/40/m.onnx", "checkpoints/60/m.onnx",
                                 "checkpoints/m.onnx", "checkpoints/40/default/m.onnx",
                                 "m.onnx", "checkpoints_corrupt/40_1/m.onnx"])
def test_outputs_inside_a_checkpoint_tree_are_refused(tmp_path, rel):
  run = _workdir(tmp_path / "run")
  with pytest.raises(UserError, match="inside the checkpoint tree"):
    safe_io.check_not_in_checkpoint_tree(run / rel, "--output")


def test_orbax_roots_and_model_checkpoints_under_any_name(tmp_path):
  ckpts = tmp_path / "ckpts"
  (ckpts / "7").mkdir(parents=True)
  (ckpts / "7" / "_CHECKPOINT_METADATA").write_text("{}")
  model = tmp_path / "model"
  (model / "params").mkdir(parents=True)
  (model / "meta").mkdir()
  for out in (ckpts / "7" / "m.onnx", ckpts / "9" / "m.onnx", model / "m.onnx",
              model / "params" / "x"):
    with pytest.raises(UserError, match="checkpoint tree"):
      safe_io.check_not_in_checkpoint_tree(out, "--output")
  link = tmp_path / "link"
  link.symlink_to(ckpts / "7")
  with pytest.raises(UserError, match="checkpoint tree"):  # symlinks are resolved
    safe_io.check_not_in_checkpoint_tree(link / "m.onnx", "--output")


def test_outputs_beside_a_workdir_are_fine(tmp_path):
  _workdir(tmp_path / "run")
  for out in (tmp_path / "m.onnx", tmp_path / "run.onnx", tmp_path / "exports" / "m.onnx",
              tmp_path / "run" / "exports" / "m.onnx"):
    safe_io.check_not_in_checkpoint_tree(out, "--output")
    assert safe_io.checkpoint_tree_of(out) is None


def test_an_output_never_equals_lies_in_or_holds_an_input(tmp_path):
  w = tmp_path / "w.pth"
  w.write_bytes(b"x")
  opts = tmp_path / "opt" / "opts.yml"
  opts.parent.mkdir()
  opts.write_text("a: 1")
  link = tmp_path / "alias.pth"
  link.symlink_to(w)
  with pytest.raises(UserError, match="is the input --torch_weights"):
    safe_io.check_apart(w, {"--torch_weights": w}, "--output")
  with pytest.raises(UserError, match="is the input"):  # the same file through a symlink
    safe_io.check_apart(link, {"--torch_weights": w}, "--output")
  with pytest.raises(UserError, match="is the input"):
    safe_io.check_apart(tmp_path / "x" / ".." / "w.pth", {"--torch_weights": w}, "--output")
  with pytest.raises(UserError, match="lies inside --out"):
    safe_io.check_apart(tmp_path / "opt", {"--options": opts}, "--out", replaces_folder=True)
  with pytest.raises(UserError, match="lies inside the input --checkpoint"):
    safe_io.check_apart(tmp_path / "opt" / "m.onnx", {"--checkpoint": tmp_path / "opt"},
                        "--output")
  safe_io.check_apart(tmp_path / "other", {"--options": opts, "--x": None}, "--out",
                      replaces_folder=True)
  safe_io.check_apart(tmp_path / "opt" / "new", {"--options": opts}, "--out",
                      replaces_folder=True)


def test_check_output_file_up_front(tmp_path):
  (tmp_path / "dir").mkdir()
  (tmp_path / "f.onnx").write_bytes(b"old")
  with pytest.raises(UserError, match="is a folder"):
    safe_io.check_output_file(tmp_path / "dir", "--output")
  with pytest.raises(UserError, match="exists: pass --overwrite"):
    safe_io.check_output_file(tmp_path / "f.onnx", "--output")
  assert safe_io.check_output_file(tmp_path / "f.onnx", "--output", overwrite=True).is_file()
  with pytest.raises(UserError, match="does not exist"):
    safe_io.check_output_file(tmp_path / "no" / "x.onnx", "--output")
  with pytest.raises(UserError, match="is empty"):
    safe_io.check_output_file("", "--output")
  with pytest.raises(UserError, match="cannot be written"):  # sysfs: read-only even for root
    safe_io.check_output_file("/sys/m.onnx", "--output")
  assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "f.onnx"]  # no probe left


def test_check_input_refuses_fifos_and_empty_paths(tmp_path):
  fifo = tmp_path / "pipe"
  os.mkfifo(fifo)
  with pytest.raises(UserError, match="not a regular file"):
    safe_io.check_input(fifo, "--input")
  for empty in ("", "  "):
    with pytest.raises(UserError, match="--input is empty"):
      safe_io.check_input(empty, "--input")
  with pytest.raises(UserError, match="does not exist"):
    safe_io.check_input(tmp_path / "nope", "--input")
  with pytest.raises(UserError, match="is a folder"):
    safe_io.check_input(tmp_path, "--input", folder_ok=False)
  assert safe_io.check_input(tmp_path, "--input") == tmp_path


def test_atomic_output_cleans_leftovers_of_killed_runs(tmp_path):
  out = tmp_path / "m.onnx"
  dead = _dead_pid()
  stale = [tmp_path / f".m.onnx.{dead}.tmp", tmp_path / f".m.onnx.partial-{dead}",
           tmp_path / ".m.onnx.k2j_x9ab.tmp"]  # the last: a tempfile name of an old export
  for f in stale:
    f.write_bytes(b"half")
  old = os.path.getmtime(stale[-1]) - 2 * safe_io.STALE_UNOWNED_SECONDS
  os.utime(stale[-1], (old, old))
  alive = tmp_path / f".m.onnx.{os.getppid()}.tmp"  # a running process's write: kept
  alive.write_bytes(b"busy")
  fresh = tmp_path / ".m.onnx.abcdefgh.tmp"  # no pid, touched just now: kept
  fresh.write_bytes(b"busy")
  other = tmp_path / ".n.onnx.123.tmp"  # another file's: kept
  other.write_bytes(b"x")
  safe_io.atomic_write_bytes(out, b"model")
  assert out.read_bytes() == b"model"
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
      [out.name, alive.name, fresh.name, other.name])


def test_atomic_output_leaves_the_target_alone_on_failure(tmp_path):
  out = tmp_path / "m.onnx"
  out.write_bytes(b"old")
  with pytest.raises(RuntimeError):
    with safe_io.atomic_output(out) as tmp:
      tmp.write_bytes(b"half")
      raise RuntimeError("killed")
  assert out.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [out]


def test_disk_full_names_the_step(tmp_path, monkeypatch):
  out = tmp_path / "m.onnx"

  def full(self, data):
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(pathlib.Path, "write_bytes", full)
  with pytest.raises(UserError, match=r"writing the ONNX model .*m\.onnx failed: no space left"):
    safe_io.atomic_write_bytes(out, b"x", what="writing the ONNX model")
  assert not out.exists() and list(tmp_path.iterdir()) == []


def test_json_files_have_no_infinity_or_nan(tmp_path):
  value = {"psnr": float("inf"), "l": [1.5, float("nan"), -float("inf")],
           "np": np.float32(np.inf), "ok": np.float64(2.0), "n": 3, "a": np.array([1.0, np.nan])}
  jsonio.write_json(tmp_path / "r.json", value)
  text = (tmp_path / "r.json").read_text()
  assert "Infinity" not in text and "NaN" not in text
  assert json.loads(text) == {"psnr": None, "l": [1.5, None, None], "np": None, "ok": 2.0, "n": 3,
                              "a": [1.0, None]}


def test_exit_on_signal_runs_clean_ups_also_when_a_library_swallows_the_exit(tmp_path):
  import signal
  import time
  before = signal.getsignal(signal.SIGTERM)
  for swallow in (False, True):
    tmp = tmp_path / f"t{swallow}"
    with pytest.raises(SystemExit) as e:
      with safe_io.exit_on_signal():
        try:
          tmp.mkdir()
          try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
          except BaseException:  # noqa: BLE001 - a library's bare except
            if not swallow:
              raise
        finally:
          tmp.rmdir()
    assert e.value.code == 128 + signal.SIGTERM and not tmp.exists()
  assert signal.getsignal(signal.SIGTERM) == before
