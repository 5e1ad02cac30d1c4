"""One convention for every command: a user's mistake is one line on stderr and exit status 2.

  error: <what was wrong>; <what to do>

An internal error (a bug) keeps its traceback. Commands raise `UserError` (or a subclass: the
library's checkpoint, weights and usage errors derive from it) for anything the user can fix, and
their entry point goes through `run` (argparse mains) or `run_absl` (absl mains). Flags and output
locations are checked before any computing (memsr_jax.safe_io). This module imports nothing heavy.
"""
import argparse
import json
import logging
import sys

EXIT_USER_ERROR = 2


class UserError(Exception):
  """A mistake the user can fix (a flag, a path, a file); printed as one line, exit status 2."""


def one_line(text) -> str:
  """A message squeezed to one line (library errors sometimes carry newlines or long traces)."""
  lines = [s.strip() for s in str(text).splitlines() if s.strip()]
  out = " ".join(lines) if len(lines) <= 3 else f"{lines[0]} … {lines[-1]}"
  return out if len(out) <= 1000 else out[:997] + "..."


def fail(message) -> int:
  print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
  return EXIT_USER_ERROR


def run(main, argv=None) -> int:
  """Calls an argparse-style `main(argv) -> int | None`; UserError → one line, exit status 2."""
  try:
    return main(argv) or 0
  except UserError as e:
    return fail(e)


class ArgumentParser(argparse.ArgumentParser):
  """argparse whose usage errors are one line (argparse prints the whole usage first)."""

  def error(self, message):
    sys.exit(fail(f"{message} (see {self.prog} --help)"))


# ----------------------------------------------------------------------------- absl commands


def _parse_absl_flags(argv):
  """absl's flag parsing with one-line errors (absl prints "FATAL Flags parsing error" + usage;
  ml_collections raises KeyError/AttributeError chains for an unknown --config.<key>)."""
  from absl import flags
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(fail(e))
  except SyntaxError as e:  # in a --config file
    sys.exit(fail(f"{e.filename} line {e.lineno}: {e.msg}: fix the config file"))
  except (KeyError, AttributeError, TypeError, ValueError) as e:
    key = str(e).strip("'\"")
    bad = [a for a in argv[1:] if a.startswith("--config.") and key in a.split("=", 1)[0]]
    what = bad[0] if bad else " ".join(argv[1:])
    if isinstance(e, (KeyError, AttributeError)):
      sys.exit(fail(f"{what}: the config has no key {key!r}; check the name against the config "
                    "file"))
    sys.exit(fail(f"{what}: the value does not fit the config ({key})"))


def run_absl(main) -> None:
  """`app.run(main)` with one-line user errors (flag parsing included); exits like app.run."""
  from absl import app

  def wrapped(argv):
    try:
      return main(argv)
    except (UserError, app.UsageError) as e:
      sys.exit(fail(e))

  # JAX logs at INFO that it found no TPU on every CPU/GPU machine: noise in a user's terminal.
  logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
  app.run(wrapped, flags_parser=_parse_absl_flags)


def config_value(config_flag, flag_name: str = "config"):
  """The value of an ml_collections config flag; a missing or broken config file is a UserError."""
  try:
    value = config_flag.value
    value.keys()  # a file that failed to load is an error object that raises on first use
    return value
  except (OSError, SyntaxError, ImportError, NameError, AttributeError, TypeError) as e:
    err = e.__cause__ or e  # ml_collections wraps the loading error
    raise UserError(f"cannot load --{flag_name}: {one_line(err)}") from None


def parse_set_overrides(items: list[str]) -> dict:
  """`--set KEY=VALUE` flags → {key: value}, each value read as JSON when it parses (16,
  [4,4,4], true), else kept as a string; a malformed item is a UserError."""
  out = {}
  for item in items:
    if "=" not in item:
      raise UserError(f"--set expects key=value (value in JSON, e.g. depths=[4,4,4]), "
                      f"got {item!r}")
    k, v = item.split("=", 1)
    try:
      out[k] = json.loads(v)
    except json.JSONDecodeError:
      out[k] = v
  return out

