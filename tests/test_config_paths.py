"""Configs found by name (utils/config_paths.py), from the checkout or $MEMSR_CONFIG_DIR."""
import pathlib

import pytest

from memsr_jax.utils import config_paths

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_names_resolve_to_the_files_train_py_takes():
  want = REPO / "configs" / "compress" / "edsr_x2.py"
  for name in ("compress/edsr_x2", "compress/edsr_x2.py", "configs/compress/edsr_x2.py"):
    assert config_paths.find_config(name) == want
  assert "eval" in config_paths.available() and "mssr/cpu" in config_paths.available()
  assert config_paths.load_config("edsr/baseline", "x3").scale == 3


def test_unknown_name_lists_the_configs():
  with pytest.raises(FileNotFoundError, match="compress/edsr_x2"):
    config_paths.find_config("compress/nope")


def test_env_var_overrides_the_folder(tmp_path, monkeypatch):
  (tmp_path / "mine.py").write_text(
      "import ml_collections\n\ndef get_config():\n  return ml_collections.ConfigDict({'a': 7})\n")
  monkeypatch.setenv(config_paths.ENV_VAR, str(tmp_path))
  assert config_paths.config_root() == tmp_path
  assert config_paths.load_config("mine").a == 7


def test_config_flag_takes_a_packaged_name(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # no configs/ here: names resolve to the packaged files
  plain = str(REPO / "configs" / "memsr" / "plain.py")
  resolve = config_paths.resolve_config_flag
  assert resolve(["t", "--config", "quickstart", "--workdir", "w"]) == [
      "t", "--config", str(REPO / "configs" / "quickstart.py"), "--workdir", "w"]
  assert resolve(["t", "--config=memsr/plain.py:m,x4"]) == ["t", f"--config={plain}:m,x4"]
  assert resolve(["t", "--config", "memsr/plain:m,x4"]) == ["t", "--config", f"{plain}:m,x4"]
  (tmp_path / "mine.py").write_text("")  # an existing file is kept as given
  assert resolve(["t", "--config", "mine.py"]) == ["t", "--config", "mine.py"]
  assert resolve(["t", "--workdir", "w"]) == ["t", "--workdir", "w"]
  with pytest.raises(FileNotFoundError, match="no packaged config.*quickstart"):
    resolve(["t", "--config=nope"])
