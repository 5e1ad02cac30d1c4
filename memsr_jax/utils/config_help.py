"""The keys of a config file with their defaults, for `train.py --help` and `eval.py --help`.

absl's help lists `--config` but not what it can override; `config_keys_help(argv, default)`
loads the config the command line names (`--config FILE[:ARG]`, else `default`) and lists every
key as `--config.KEY=DEFAULT`.
"""
import importlib.util
import pathlib
from typing import Any, Iterator, Optional

import ml_collections


def flatten(config, prefix: str = "") -> Iterator[tuple[str, Any]]:
  """(dotted key, value) of every leaf of a ConfigDict, in definition order."""
  for key, value in config.items():
    name = f"{prefix}{key}"
    if isinstance(value, (ml_collections.ConfigDict, dict)) and len(value):
      yield from flatten(value, name + ".")
    else:
      yield name, value


def _format(value) -> str:
  if isinstance(value, (ml_collections.ConfigDict, dict)):
    return "{}"
  if isinstance(value, str):
    return repr(value)
  return str(value)


def describe(config, source: str) -> str:
  lines = [f"Keys of {source} (override any with --config.KEY=VALUE; an unknown key is an "
           "error):"]
  lines += [f"  --config.{k}={_format(v)}" for k, v in flatten(config)]
  return "\n".join(lines)


def config_arg(argv: list[str]) -> Optional[str]:
  """The value of `--config` on a command line (None when absent)."""
  for i, arg in enumerate(argv):
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1]
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
  return None


def load(spec: str) -> ml_collections.ConfigDict:
  """`get_config()` of `FILE` or `get_config(ARG)` of `FILE:ARG` (as ml_collections reads it)."""
  path, arg = spec, None
  if ":" in spec and not pathlib.Path(spec).is_file():
    path, arg = spec.rsplit(":", 1)
  module_spec = importlib.util.spec_from_file_location("memsr_help_config", path)
  if module_spec is None or not pathlib.Path(path).is_file():
    raise FileNotFoundError(f"config file {path} not found")
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg is not None else module.get_config()


def config_keys_help(argv: list[str], default: Optional[str] = None) -> str:
  """The key listing for the config on the command line (or `default`); a line saying how to get
  it when no config is given, or why it could not be loaded."""
  spec = config_arg(argv) or default
  if spec is None:
    return "Give --config FILE with --help to list that config's keys and defaults."
  try:
    return describe(load(spec), spec)
  except Exception as e:  # noqa: BLE001  (help must print whatever the config file does)
    return f"(cannot list the keys of {spec}: {type(e).__name__}: {e})"
