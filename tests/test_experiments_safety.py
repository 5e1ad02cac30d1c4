"""The experiments runner writes only under --workdir, never reuses rows evaluated on other data,
never writes inf/NaN into JSON, and turns a busy, damaged or read-only workdir, a bad weights file
and a bad flag into one line on stderr with exit status 2."""
import json
import math
import pathlib

import numpy as np
from PIL import Image
import pytest

from memsr_jax.experiments import __main__ as cli
from memsr_jax.experiments import base
from memsr_jax.experiments import records
from memsr_jax.experiments import rows as rows_lib
from memsr_jax.experiments import runner
from memsr_jax.experiments import specs
from memsr_jax.train import workdir_lock
from memsr_jax.utils import cli as cli_lib


def _images(folder: pathlib.Path, n: int = 2, size: int = 24) -> pathlib.Path:
  folder.mkdir(parents=True)
  rng = np.random.default_rng(0)
  for i in range(n):
    Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(folder / f"im{i}.png")
  return folder


def _data(tmp_path) -> pathlib.Path:
  root = tmp_path / "data"
  for name in ("T91", "BSD200", "Set5"):
    _images(root / name)
  return root


def _one_line(err: str) -> bool:
  return err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("how", ["absolute", "dotdot"])
def test_a_subset_of_a_set_given_by_path_stays_under_the_workdir(tmp_path, monkeypatch, how):
  myset = _images(tmp_path / "elsewhere" / "myset")
  w = tmp_path / "w"
  if how == "dotdot":
    monkeypatch.chdir(tmp_path / "elsewhere")
    name = "../elsewhere/myset"
  else:
    name = str(myset)
  sets = rows_lib.eval_sets("smoke", str(tmp_path), w, 2, (name,))
  (_, folder, pairs), = sets
  assert pathlib.Path(folder).resolve().is_relative_to(w.resolve())
  assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == ["myset"]
  assert sorted(p.name for p in pathlib.Path(folder).iterdir()) == ["im0.png"]
  assert len(pairs) == 1


def test_stale_subset_links_are_rebuilt(tmp_path):
  a = _images(tmp_path / "a")
  w = tmp_path / "w"
  (_, folder, _), = rows_lib.eval_sets("smoke", str(tmp_path), w, 2, (str(a),))
  (pathlib.Path(folder) / "stale.png").symlink_to(tmp_path / "a" / "im1.png")
  (_, again, _), = rows_lib.eval_sets("smoke", str(tmp_path), w, 2, (str(a),))
  assert again == folder and sorted(p.name for p in pathlib.Path(again).iterdir()) == ["im0.png"]


def test_the_cache_key_changes_with_the_data(tmp_path):
  a = _images(tmp_path / "a")
  sets = rows_lib.eval_sets("cpu", str(tmp_path), tmp_path / "w", 2, (str(a),))
  before = rows_lib.data_fingerprint(sets)
  assert rows_lib.data_fingerprint(rows_lib.eval_sets("cpu", str(tmp_path), tmp_path / "w", 2,
                                                      (str(a),))) == before
  Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(a / "im1.png")
  assert rows_lib.data_fingerprint(rows_lib.eval_sets("cpu", str(tmp_path), tmp_path / "w", 2,
                                                      (str(a),))) != before
  b = _images(tmp_path / "b")  # same names and sizes, another folder
  assert rows_lib.data_fingerprint(rows_lib.eval_sets("cpu", str(tmp_path), tmp_path / "w", 2,
                                                      (str(b),))) != before


def test_a_row_evaluated_on_other_data_is_evaluated_again(tmp_path, monkeypatch):
  calls = []
  monkeypatch.setattr(rows_lib, "row_model", lambda row, exp, w: (lambda x: x, {"params": 0}))

  def fake_eval(predict, arg, scale, data_dir, **kwargs):
    calls.append(arg)
    return {"psnr": 30.0, "ssim": 0.9, "n_images": 1, "errors": []}

  monkeypatch.setattr(rows_lib.evaluation, "evaluate_dataset", fake_eval)
  exp = specs.build("edsr_baseline_x2", "smoke", "d", "v", str(tmp_path))
  row = base.Row("bicubic", "", ("bicubic",))
  sets = [("set5", "set5", [])]
  for data in ("a", "a", "b"):
    rows_lib.evaluate_row(row, exp, tmp_path, sets, {"sets": ["set5"], "data": data}, "d",
                          lambda m: None)
  assert len(calls) == 2


def test_an_infinite_psnr_is_recorded_as_null_with_a_note(tmp_path, monkeypatch):
  monkeypatch.setattr(rows_lib, "row_model", lambda row, exp, w: (lambda x: x, {"params": 0}))
  monkeypatch.setattr(rows_lib.evaluation, "evaluate_dataset", lambda *a, **kw: {
      "psnr": math.inf, "ssim": 1.0, "n_images": 1, "errors": []})
  exp = specs.build("edsr_baseline_x2", "smoke", "d", "v", str(tmp_path))
  out = rows_lib.evaluate_row(base.Row("bicubic", "", ("bicubic",)), exp, tmp_path,
                              [("set5", "set5", [])], {"sets": ["set5"]}, "d", lambda m: None)
  assert out["results"]["set5"]["x2"]["psnr"] is None and "infinite" in out["eval_note"]
  text = (tmp_path / "reference" / "eval.json").read_text()
  assert "Infinity" not in text and "NaN" not in text
  records.write_record(tmp_path / "x.json", {"a": [float("nan"), 1.0, np.float32("inf")]})
  assert json.loads((tmp_path / "x.json").read_text()) == {"a": [None, 1.0, None]}


def test_a_second_runner_on_the_same_workdir_is_refused(tmp_path, capsys):
  data, w = _data(tmp_path), tmp_path / "w"
  runner.prepare_workdir(w, "edsr_baseline_x2", "smoke")
  with workdir_lock.hold(w):
    rc = cli.main(["edsr_baseline_x2", "--budget", "smoke", "--workdir", str(w),
                   "--data_dir", str(data)])
  err = capsys.readouterr().err
  assert rc == 2 and _one_line(err) and "in use" in err


def test_a_torn_experiment_json_is_one_line_naming_the_file(tmp_path, capsys):
  data, w = _data(tmp_path), tmp_path / "w"
  w.mkdir()
  (w / "experiment.json").write_text('{"experiment": "edsr_ba')
  rc = cli.main(["edsr_baseline_x2", "--budget", "smoke", "--workdir", str(w),
                 "--data_dir", str(data)])
  err = capsys.readouterr().err
  assert rc == 2 and _one_line(err) and "experiment.json is damaged" in err
  assert (w / "experiment.json").read_text() == '{"experiment": "edsr_ba'  # left as it was


def test_a_torn_run_json_names_the_file_and_what_to_do(tmp_path):
  (tmp_path / "r").mkdir()
  (tmp_path / "r" / "run.json").write_text('{"steps": 1')
  with pytest.raises(cli_lib.UsageError, match=r"run\.json is damaged .*delete it"):
    runner.train_run(specs.TrainRun("r", None, 10), tmp_path)


def test_a_bad_weights_file_is_one_line(tmp_path, monkeypatch, capsys):
  torch_import = pytest.importorskip("memsr_jax.interop.torch_import")
  pytest.importorskip("torch")
  bad = tmp_path / "IMDN_x2.pth"
  bad.write_bytes(b"not a weights file")
  with pytest.raises(cli_lib.UserError):
    torch_import.load_torch_weights(str(bad), "imdn", 2)

  def run(*a, **k):
    torch_import.load_torch_weights(str(bad), "imdn", 2)

  monkeypatch.setattr(runner, "run", run)
  rc = cli.main(["compress_x2", "--budget", "smoke", "--workdir", str(tmp_path / "w")])
  err = capsys.readouterr().err
  assert rc == 2 and _one_line(err)


def test_a_read_only_workdir_is_one_line(tmp_path, monkeypatch, capsys):
  data = _data(tmp_path)
  (tmp_path / "ro").mkdir()
  monkeypatch.setattr(runner.os, "access", lambda path, mode: False)
  rc = cli.main(["edsr_baseline_x2", "--budget", "smoke", "--workdir", str(tmp_path / "ro"),
                 "--data_dir", str(data)])
  err = capsys.readouterr().err
  assert rc == 2 and _one_line(err) and "not writable" in err
  blocked = tmp_path / "file"
  blocked.write_text("x")
  with pytest.raises(cli_lib.UsageError, match="cannot write"):
    records.write_record(blocked / "sub" / "x.json", {})


@pytest.mark.parametrize("argv", [["nope", "--budget", "smoke", "--workdir", "w"],
                                  ["mssr_x2", "--budget", "huge", "--workdir", "w"],
                                  ["mssr_x2", "--workdir", "w"],
                                  ["mssr_x2", "--budget", "smoke", "--workdir", "w",
                                   "--seeds", "two"]])
def test_argument_errors_are_one_line(argv, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(argv)
  err = capsys.readouterr().err
  assert e.value.code == 2 and _one_line(err)


def test_seeds_and_teacher_are_checked(tmp_path, capsys):
  data = _data(tmp_path)
  base_argv = ["--budget", "smoke", "--workdir", str(tmp_path / "w"), "--data_dir", str(data)]
  assert cli.main(["mssr_x2", *base_argv, "--seeds", "0"]) == 2
  assert "--seeds" in capsys.readouterr().err
  assert cli.main(["mssr_x2", *base_argv, "--teacher", str(tmp_path)]) == 2
  assert "compress_x2" in capsys.readouterr().err
  assert cli.main(["compress_x2", *base_argv, "--teacher", str(tmp_path / "none")]) == 2
  assert "not found" in capsys.readouterr().err
  assert not (tmp_path / "w").exists()  # refused before anything was written


def test_a_teacher_that_is_no_x2_checkpoint_is_refused_before_anything_is_written(tmp_path,
                                                                                  capsys):
  from memsr_jax.experiments import exp_compress
  data = _data(tmp_path)

  def checkpoint(name, scale):
    folder = tmp_path / name
    (folder / "params").mkdir(parents=True)
    (folder / "meta").mkdir()
    (folder / "meta" / "metadata").write_text(json.dumps(
        {"model": "edsr_baseline", "model_kwargs": {"scale": scale}, "scale": scale}))
    return folder
  x4 = checkpoint("x4", 4)
  (tmp_path / "empty").mkdir()
  for teacher, fragment in ((x4, "is a ×4 model"),
                            (tmp_path / "empty", "holds no checkpoint metadata")):
    rc = cli.main(["compress_x2", "--budget", "smoke", "--workdir", str(tmp_path / "w"),
                   "--data_dir", str(data), "--teacher", str(teacher)])
    err = capsys.readouterr().err
    assert rc == 2 and _one_line(err) and fragment in err, err
    assert not (tmp_path / "w").exists()
  exp_compress.check_teacher(str(checkpoint("x2", 2)))
