"""Configs found by name (memsr_jax/config_paths.py), from the checkout or $MEMSR_CONFIG_DIR."""
import pathlib

import pytest

from memsr_jax import config_paths

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
