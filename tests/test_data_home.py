"""The data home (memsr_jax/data/home.py): where it is, and weights found in it by relative path."""
import pathlib

import pytest

from memsr_jax.data import home


def test_env_then_xdg_then_home_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("HOME", str(tmp_path / "h"))
  monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
  monkeypatch.delenv(home.ENV, raising=False)
  assert home.data_home() == tmp_path / "h" / ".cache" / "memsr_jax"
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert home.data_home() == tmp_path / "xdg" / "memsr_jax"
  monkeypatch.setenv(home.ENV, str(tmp_path / "d"))
  assert home.data_home() == tmp_path / "d"
  assert home.weights_dir() == tmp_path / "d" / "weights"


def test_weights_as_given_else_in_the_home_else_the_fetch_command(tmp_path, monkeypatch):
  monkeypatch.setenv(home.ENV, str(tmp_path / "d"))
  monkeypatch.chdir(tmp_path)
  with pytest.raises(FileNotFoundError, match=r"imdn/IMDN_x2.pth \(nor .*d/weights/imdn/IMDN_x2"
                     r".pth\) does not exist; fetch it with `memsr-fetch imdn`"):
    home.find_weights("imdn/IMDN_x2.pth", home.weights_fetch_name("imdn/IMDN_x2.pth"))
  in_home = tmp_path / "d" / "weights" / "imdn" / "IMDN_x2.pth"
  in_home.parent.mkdir(parents=True)
  in_home.write_bytes(b"w")
  assert home.find_weights("imdn/IMDN_x2.pth") == in_home
  local = pathlib.Path("imdn") / "IMDN_x2.pth"  # a file at the given path wins
  local.parent.mkdir()
  local.write_bytes(b"mine")
  assert home.find_weights("imdn/IMDN_x2.pth") == local
  with pytest.raises(FileNotFoundError, match="/abs/none.pth does not exist$"):
    home.find_weights("/abs/none.pth")
