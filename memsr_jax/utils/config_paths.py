"""Config files found by name: `find_config("compress/edsr_x2")` → the file train.py takes.

The configs are Python scripts in the repository's top-level `configs/` folder (`python train.py
--config configs/x.py` keeps working). Where they are looked up, first hit wins:
  1. $MEMSR_CONFIG_DIR, when set;
  2. the package `memsr_jax.configs` (an installed wheel maps `configs/` there,
     `importlib.resources`);
  3. the source checkout's `configs/` beside the `memsr_jax/` folder (a documented fallback for
     running from a clone without installing).
"""
import importlib.resources
import importlib.util
import os
import pathlib

import ml_collections

CONFIG_PACKAGE = "memsr_jax.configs"
ENV_VAR = "MEMSR_CONFIG_DIR"
_CHECKOUT_CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs"


def config_root() -> pathlib.Path:
  """The folder the configs are read from (see the module docstring for the order)."""
  if os.environ.get(ENV_VAR):
    return pathlib.Path(os.environ[ENV_VAR]).expanduser()
  try:
    root = pathlib.Path(str(importlib.resources.files(CONFIG_PACKAGE)))
    if root.is_dir():
      return root
  except (ModuleNotFoundError, TypeError):
    pass
  return _CHECKOUT_CONFIGS


def available() -> list[str]:
  """Every config name ("eval", "compress/edsr_x2", …)."""
  root = config_root()
  return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.py")
                if p.name != "__init__.py")


def find_config(name: str) -> pathlib.Path:
  """The config file of `name`: "compress/edsr_x2", "compress/edsr_x2.py" or
  "configs/compress/edsr_x2.py" (the form train.py's --config takes). FileNotFoundError names the
  configs there are."""
  rel = pathlib.PurePosixPath(str(name).replace(os.sep, "/"))
  if rel.parts and rel.parts[0] == "configs":
    rel = pathlib.PurePosixPath(*rel.parts[1:])
  if rel.suffix != ".py":
    rel = rel.with_name(rel.name + ".py")
  path = config_root() / rel
  if not path.is_file():
    raise FileNotFoundError(f"no config {name!r} in {config_root()}; there are: {available()}")
  return path


def load_config(name: str, *args) -> ml_collections.ConfigDict:
  """`get_config(*args)` of the config `name` (loaded by path, as config_flags does: config files
  are scripts, not modules of the package)."""
  path = find_config(name)
  spec = importlib.util.spec_from_file_location(f"memsr_config_{path.stem}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(*args)


def _config_value_index(argv: list[str]) -> int | None:
  """Where the value of --config sits in argv (None: no --config)."""
  for i, arg in enumerate(argv):
    if arg == "--":
      return None
    if arg in ("--config", "-config") and i + 1 < len(argv):
      return i + 1
    if arg.startswith(("--config=", "-config=")):
      return i
  return None


def resolve_config_flag(argv: list[str]) -> list[str]:
  """argv with a `--config NAME[:ARGS]` that is no file replaced by the packaged config of that
  name (`quickstart`, `memsr/plain.py:m,x4`), so that an installed package trains by config name.
  A path that exists is kept as given. FileNotFoundError when it is neither a file nor a name."""
  i = _config_value_index(argv)
  if i is None:
    return argv
  prefix, value = ("", argv[i]) if not argv[i].startswith("-") else argv[i].split("=", 1)
  prefix = prefix + "=" if prefix else ""
  path, sep, args = value.partition(":")
  if not path or pathlib.Path(path).expanduser().is_file():
    return argv
  try:
    found = find_config(path)
  except FileNotFoundError:
    raise FileNotFoundError(f"--config {value}: no such file, and no packaged config of that "
                            f"name; packaged configs: {', '.join(available())}") from None
  return [*argv[:i], f"{prefix}{found}{sep}{args}", *argv[i + 1:]]
