"""release_check reads the authors' option files and fails, naming the key, on an undocumented
difference; the paper configs follow the release or carry a documented reason."""
import pathlib
import shutil
import time

import pytest
import yaml

from memsr_jax.methods.compress import release
from memsr_jax.methods.compress import release_check
from memsr_jax.methods.compress import release_deviations
from memsr_jax.models import registry

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


@pytest.fixture
def release_dir(shared_dir) -> pathlib.Path:
  path = shared_dir / "release" / "SRModelCompression"
  if not (path / "options").is_dir():
    pytest.skip(f"the authors' release option files are not at {path}")
  return path


@pytest.fixture
def release_copy(release_dir, tmp_path) -> pathlib.Path:
  dst = tmp_path / "SRModelCompression"
  shutil.copytree(release_dir, dst)
  for p in dst.rglob("*"):
    p.chmod(0o755 if p.is_dir() else 0o644)  # the shared copy is read-only
  return dst


def _edit(root: pathlib.Path, rel: str, path: str, value) -> None:
  f = root / rel
  data = yaml.safe_load(f.read_text())
  node = data
  *head, last = path.split(".")
  for part in head:
    node = node[part]
  node[last] = value
  f.write_text(yaml.safe_dump(data))


def _run(capsys, *argv) -> tuple[int, str, str]:
  rc = release_check.main(["--configs_dir", str(CONFIGS), *argv])
  out, err = capsys.readouterr()
  return rc, out, err


def test_the_released_files_pass(release_dir, capsys):
  rc, out, err = _run(capsys, "--release_dir", str(release_dir))
  assert rc == 0, err
  for word in ("same", "equivalent", "deviation"):
    assert f"{word}  " in out
  assert "differs" not in out and "missing" not in out


def test_every_value_is_compared(release_dir):
  results = release_check.check(release_dir, CONFIGS)
  for path, rows in results.items():
    keys = {r["key"] for r in rows}
    for k in ("prune.lr", "prune.lambda_", "prune.scheduler.milestones", "prune.ema_decay",
              "prune.loss.eps", "prune.pruned_params", "distill.lr", "distill.betas",
              "distill.weight_decay", "distill.ema_decay", "distill.dis_opt.levels",
              "distill.stu_opt.loss_weight", "distill.gt_size", "distill.batch_size",
              "distill.data", "student.res_scale" if "edsr" in path else "student.embed_dim",
              "eval.weights"):
      assert k in keys, k
    for r in rows:  # a documented row always carries its reason
      assert (r["status"] in ("equivalent", "deviation")) == bool(r["why"]), r


def test_the_ema_warm_up_is_a_listed_deviation(release_dir, monkeypatch):
  """The engine ramps the EMA decay (min(d, (1 + t) / (10 + t))); BasicSR uses d from step 0."""
  for rows in release_check.check(release_dir, CONFIGS).values():
    by = {r["key"]: r for r in rows}
    for phase in ("prune", "distill"):
      r = by[f"{phase}.ema_warmup"]
      assert r["status"] == "deviation" and "warm" in r["why"], r
      assert r["ours"] == "min(ema_decay, (1 + t) / (10 + t))"
  # With the warm-up off ours equals BasicSR's EMA, and the row reads "same".
  real = release_check.load_config

  def no_warmup(path):
    c = real(path)
    c.optim.ema_warmup = False
    return c

  monkeypatch.setattr(release_check, "load_config", no_warmup)
  for rows in release_check.check(release_dir, CONFIGS).values():
    assert {r["key"]: r["status"] for r in rows}["distill.ema_warmup"] == "same"


def test_an_edited_prune_lr_fails_naming_the_key(release_copy, capsys):
  _edit(release_copy, release_check.RELEASE_FILES["edsr_baseline"]["prune"],
        "train.optim_g.lr", 1e-3)
  rc, out, err = _run(capsys, "--release_dir", str(release_copy))
  assert rc == 1
  assert "prune.lr (differs): release 0.001, ours 0.005" in err
  assert "edsr_x2.py" in err and "swinir" not in err


def test_a_changed_documented_value_is_no_longer_accepted(release_copy, capsys):
  """The EDSR distill lr deviation was written for release 1e-7: another release value fails."""
  _edit(release_copy, release_check.RELEASE_FILES["edsr_baseline"]["distill"],
        "train.optim_g.lr", 1e-6)
  rc, _, err = _run(capsys, "--release_dir", str(release_copy))
  assert rc == 1 and "distill.lr (differs): release 1e-06, ours 0.0001" in err


def test_a_removed_value_is_missing(release_copy, capsys):
  f = release_copy / release_check.RELEASE_FILES["swinir_s"]["distill"]
  data = yaml.safe_load(f.read_text())
  del data["train"]["ema_decay"]
  f.write_text(yaml.safe_dump(data))
  rc, _, err = _run(capsys, "--release_dir", str(release_copy))
  assert rc == 1 and "distill.ema_decay (missing): release <missing>, ours 0.999" in err


def test_a_config_edit_is_reported(release_dir):
  c = release_check.load_config(CONFIGS / "compress/edsr_x2.py")
  c.compress.distill.levels = 4
  c.compress.shrink.student_kwargs.res_scale = 1.0
  files = release_check.load_release(release_dir, "edsr_baseline")
  status = {r["key"]: r["status"] for r in release_check.compare(c, files, "edsr_baseline")}
  assert status["distill.dis_opt.levels"] == "differs"
  assert status["student.res_scale"] == "differs"


def test_missing_release_dir_is_one_line_exit_2(tmp_path, capsys):
  rc, _, err = _run(capsys, "--release_dir", str(tmp_path / "nope"))
  assert rc == 2 and err.count("\n") == 1 and "release folder" in err


def _billion_laughs() -> str:
  text, prev = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n', "a"
  for k in "bcdefghi":
    text += f"{k}: &{k} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    prev = k
  return text


@pytest.mark.parametrize("content, fragment", [
    ("a: &a [1, *a]\n", "recursive alias *a"),
    (_billion_laughs(), "more than 100000 values"),
    ("a: 1\nb: caf\xe9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 11)"),
    ("a: " + "[" * 20000 + "]" * 20000 + "\n", "nested more than 64 levels"),
    ("a: [1\n", "not valid YAML"),
])
def test_a_hostile_release_file_is_one_line_exit_2(tmp_path, capsys, content, fragment):
  f = tmp_path / release_check.RELEASE_FILES["edsr_baseline"]["prune"]
  f.parent.mkdir(parents=True)
  f.write_bytes(content if isinstance(content, bytes) else content.encode())
  t0 = time.perf_counter()
  rc, _, err = _run(capsys, "--release_dir", str(tmp_path))
  assert time.perf_counter() - t0 < 20
  assert rc == 2 and err.count("\n") == 1 and err.startswith("error: "), err
  assert fragment in err and str(f) in err, err


def test_default_release_dir_is_in_the_data_home(monkeypatch, tmp_path):
  monkeypatch.delenv("MEMSR_DATA_DIR", raising=False)
  monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
  monkeypatch.setenv("HOME", str(tmp_path))
  assert release_check.default_release_dir() == (
      tmp_path / ".cache" / "memsr_jax" / "release" / "SRModelCompression")
  monkeypatch.setenv("MEMSR_DATA_DIR", "/x")
  assert release_check.default_release_dir() == pathlib.Path("/x/release/SRModelCompression")


def test_apply_writes_the_documented_deviation():
  c = release_check.load_config(CONFIGS / "compress/edsr_x2.py")
  assert c.compress.distill.schedule.lr == release_deviations.DEVIATIONS[
      "distill.lr@edsr_baseline"][1]
  with pytest.raises(ValueError, match="no released recipe"):
    release.apply(c, "imdn")


def test_edsr_mini_matches_the_released_student():
  """EDSRmini: 16 ch, 8 blocks, res_scale 2 in the release's train and test configs."""
  kw = registry.model_kwargs("edsr_mini", scale=2)
  assert (kw["n_feats"], kw["n_resblocks"], kw["res_scale"]) == (16, 8, 2.0)


def test_the_module_entry_runs_the_check(release_dir):
  import subprocess
  import sys
  p = subprocess.run([sys.executable, "-m", "memsr_jax.release_check", "--release_dir",
                      str(release_dir), "--markdown"], cwd=REPO, capture_output=True, text=True,
                     timeout=300)
  assert p.returncode == 0, p.stderr
  assert "| `prune.lr` | 0.005 | 0.005 | same |" in p.stdout
  h = subprocess.run([sys.executable, "-m", "memsr_jax.release_check", "--help"], cwd=REPO,
                     capture_output=True, text=True, timeout=300)
  assert h.returncode == 0 and "--release_dir" in h.stdout


def test_option_files_keep_plain_anchors_and_merge_keys():
  from memsr_jax.interop import option_files
  text = "base: &b {lr: 0.1, steps: [1, 2]}\nprune: {<<: *b, lr: 0.2}\ndistill: *b\n"
  assert option_files.parse_yaml(text) == yaml.safe_load(text)
