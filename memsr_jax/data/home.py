"""The data home: the one folder where datasets and weights live.

  $MEMSR_DATA_DIR            when set;
  $XDG_CACHE_HOME/memsr_jax  else, when XDG_CACHE_HOME is set;
  ~/.cache/memsr_jax         otherwise.

`memsr-fetch NAME` (`python -m memsr_jax.data.fetch NAME`) writes there, and every loader looks
there: datasets under the home itself (`Set5/`, `benchmark/Set5/`, `datasets/Set5/`, … see
memsr_jax/data/folders.py), weights under `<home>/weights/` (`weights/imdn/IMDN_x2.pth`). A path
given explicitly (config.data_dir, --data_dir, an absolute weights path) always wins.
"""
import os
import pathlib
from typing import Optional

ENV = "MEMSR_DATA_DIR"
APP = "memsr_jax"
WEIGHTS = "weights"
FETCH = "memsr-fetch"
FETCH_MODULE = "python -m memsr_jax.data.fetch"


def data_home() -> pathlib.Path:
  """The data home (see the module docstring); not created here."""
  env = os.environ.get(ENV)
  if env:
    return pathlib.Path(env).expanduser()
  cache = os.environ.get("XDG_CACHE_HOME")
  base = pathlib.Path(cache).expanduser() if cache else pathlib.Path.home() / ".cache"
  return base / APP


def weights_dir() -> pathlib.Path:
  return data_home() / WEIGHTS


def fetch_hint(name: str) -> str:
  """How to get `name` into the data home, for "not found" messages."""
  return (f"fetch it with `{FETCH} {name}` (or `{FETCH_MODULE} {name}`) into {data_home()} "
          f"(${ENV} moves it)")


def find_weights(path: str, fetch_name: Optional[str] = None) -> pathlib.Path:
  """A weights file: `path` as given when it exists, else `<data home>/weights/<path>` for a
  relative path (`imdn/IMDN_x2.pth`). FileNotFoundError names both places and the fetch command."""
  given = pathlib.Path(path).expanduser()
  if given.is_file():
    return given
  in_home = weights_dir() / given
  if not given.is_absolute() and in_home.is_file():
    return in_home
  where = str(given) if given.is_absolute() else f"{given} (nor {in_home})"
  hint = f"; {fetch_hint(fetch_name)}" if fetch_name else ""
  raise FileNotFoundError(f"weights file {where} does not exist{hint}")


def weights_fetch_name(path: str) -> Optional[str]:
  """The fetch name a weights path belongs to (`…/imdn/IMDN_x2.pth` → imdn), if any."""
  text = str(path).lower()
  return "imdn" if "imdn" in text else None
