"""One convention for every command: a user's mistake is one line on stderr and exit status 2.

  error: <what was wrong>; <what to do>

An internal error (a bug) keeps its traceback. Commands raise `UserError` (or a subclass: the
library's checkpoint, weights and usage errors derive from it) for anything the user can fix, and
their entry point goes through `run` (argparse mains) or `run_absl` (absl mains). `--help` prints
the usage and exits 0 in both styles. Flags and output locations are checked before any computing
(memsr_jax.utils.safe_io). This module imports nothing heavy.

Flags shared by the tools are declared here once, with one meaning each:
  --checkpoint DIR     a model checkpoint or training workdir
  --model NAME         a zoo preset (memsr_jax.models.registry)
  --scale S            the model's scale (required with --model; checked against a checkpoint)
  --set KEY=VALUE      a preset hyperparameter override (`parse_set_overrides`)
  --torch_weights FILE PyTorch weights for --model ({scale} is substituted)
  --onnx FILE          an exported ONNX model (python -m memsr_jax.export)
and lists of scales are read by `parse_scales`.
"""
import argparse
import json
import os
import re
import sys

from absl import app
from absl import flags

from memsr_jax.utils import config_help
from memsr_jax.utils import config_paths
from memsr_jax.utils import console

EXIT_USER_ERROR = 2


class UserError(Exception):
  """A mistake the user can fix (a flag, a path, a file); printed as one line, exit status 2."""


class UsageError(UserError, ValueError):
  """Bad command-line input (a flag's value or a combination of flags)."""


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
  """argparse whose usage errors are one line (argparse prints the whole usage first). Every
  command gets the shared `--verbose` flag; parsing sets up the terminal output (utils.console:
  our lines on stderr, library INFO/WARNING hidden unless --verbose)."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    console.add_verbose_flag(self)

  def parse_known_args(self, args=None, namespace=None):
    namespace, rest = super().parse_known_args(args, namespace)
    console.setup(bool(getattr(namespace, "verbose", False)))
    return namespace, rest

  def error(self, message):
    sys.exit(fail(f"{message} (see {self.prog} --help)"))


# ----------------------------------------------------------------------------- absl commands


HELP_FLAGS = ("--help", "-h", "-?", "--helpshort", "--helpfull")


def _parse_absl_flags(argv):
  """absl's flag parsing with one-line errors (absl prints "FATAL Flags parsing error" + usage;
  ml_collections raises KeyError/AttributeError chains for an unknown --config.<key>). `--help`
  prints the usage and exits 0 (absl's own help flag exits 1)."""
  args = argv[1:argv.index("--")] if "--" in argv else argv[1:]
  asked = [a for a in args if a in HELP_FLAGS]
  if asked:
    app.usage(shorthelp=asked[0] != "--helpfull", writeto_stdout=True)
    if "config" in flags.FLAGS:  # what --config.KEY can override, with the defaults
      default = flags.FLAGS["config"].default_as_str.strip("'\"")
      default = None if default in ("", "None") else default
      print("\n" + config_help.config_keys_help(args, default=default))
    sys.exit(0)
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(fail(e))
  except SyntaxError as e:  # in a --config file
    sys.exit(fail(f"{e.filename} line {e.lineno}: {e.msg}: fix the config file"))
  except (KeyError, AttributeError, TypeError, ValueError) as e:
    key, hint = _missing_key(e)
    bad = [a for a in argv[1:] if a.startswith("--config.") and key in a.split("=", 1)[0]]
    what = bad[0] if bad else " ".join(argv[1:])
    if isinstance(e, (KeyError, AttributeError)):
      sys.exit(fail(f"{what}: the config has no key {key!r}{hint}; check the name against the "
                    "config file"))
    sys.exit(fail(f"{what}: the value does not fit the config ({key})"))


def _missing_key(e: Exception) -> tuple[str, str]:
  """(key, " (did you mean 'k'?)" or "") of ml_collections' error for an unknown --config.KEY:
  its message is the quoted key, then a suggestion on the next line. A KeyError's str() is the
  repr of that message (and an AttributeError may wrap the KeyError), so the text is taken from
  the innermost argument."""
  while e.args and isinstance(e.args[0], Exception):
    e = e.args[0]
  text = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
  first, _, rest = text.partition("\n")
  suggestion = re.search(r'Did you mean "([^"]+)"', rest)
  hint = f" (did you mean {suggestion[1]!r}?)" if suggestion else ""
  return first.strip().strip("'\""), hint


def run_config_tool(main, tool) -> None:
  """`run_absl` for a command with a `--config` flag (memsr-train, memsr-eval): a packaged config
  name (`quickstart`) is resolved to its file first; neither a file nor a name is one line."""
  try:
    sys.argv = config_paths.resolve_config_flag(sys.argv)
  except FileNotFoundError as e:
    sys.exit(fail(e))
  run_absl(main, tool)


def run_absl(main, tool=None) -> None:
  """`app.run(main)` with one-line user errors (flag parsing included); exits like app.run.

  `tool`: the module that declares the command's flags and whose docstring is its usage, when
  that is not the script being run (a console script, or a thin train.py): its flags are listed
  by the short --help as the main module's."""
  if tool is not None:
    _adopt_as_main(tool)

  def wrapped(argv):
    console.setup(flags.FLAGS.verbose)
    try:
      return main(argv)
    except (UserError, app.UsageError) as e:  # absl's UsageError: a main's own argv check
      sys.exit(fail(e))

  if "verbose" not in flags.FLAGS:
    # Declared as the main module's flag, so that the short --help lists it.
    flags.DEFINE_bool("verbose", False, console.VERBOSE_HELP, module_name=sys.argv[0])
  console.setup(console.verbose_in_argv(sys.argv))  # quiet while flags and configs load
  app.run(wrapped, flags_parser=_parse_absl_flags)


def _adopt_as_main(tool) -> None:
  main_module = sys.modules["__main__"]
  if main_module is not tool:
    main_module.__doc__ = tool.__doc__
  for flag in flags.FLAGS.get_flags_for_module(tool.__name__):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def config_value(config_flag, flag_name: str = "config"):
  """The value of an ml_collections config flag; a missing or broken config file is a UserError."""
  try:
    value = config_flag.value
    value.keys()  # a file that failed to load is an error object that raises on first use
    return value
  except (OSError, SyntaxError, ImportError, NameError, AttributeError, TypeError) as e:
    err = e.__cause__ or e  # ml_collections wraps the loading error
    path = getattr(flags.FLAGS[flag_name], "config_filename", None) if flag_name in flags.FLAGS \
        else None
    path = path or ""
    file = path.split(":", 1)[0]  # ml_collections allows "file.py:argument"
    if file and not os.path.isfile(file):
      raise UserError(f"cannot load --{flag_name}: config file {file} not found; check the "
                      "path (the project's configs are in configs/)") from None
    # ml_collections names the file after the flag ("config_config"): name the file instead.
    text = one_line(err).replace(f"config file {flag_name}_config", f"config file {file}")
    raise UserError(f"cannot load --{flag_name}: {text}") from None


def parse_set_overrides(items: list[str]) -> dict:
  """`--set KEY=VALUE` flags → {key: value}, each value read as JSON when it parses (16,
  [4,4,4], true), else kept as a string; a malformed item is a UserError."""
  out = {}
  for item in items:
    if "=" not in item:
      raise UsageError(f"--set expects key=value (value in JSON, e.g. depths=[4,4,4]), "
                      f"got {item!r}")
    k, v = item.split("=", 1)
    try:
      out[k] = json.loads(v)
    except json.JSONDecodeError:
      out[k] = v
  return out



def parse_scales(value, flag: str = "--scales", allow_empty: bool = False) -> list[int]:
  """A list of scales ("2,3,4", "x2", "[2, 4]", a list of ints) as positive ints; "" is the empty
  list where `allow_empty`. A malformed list is a UsageError naming `flag`."""
  items = value if isinstance(value, (list, tuple)) else str(value).replace(" ", "").strip(
      "()[]").split(",")
  scales = []
  for s in (str(v) for v in items if str(v)):
    try:
      scales.append(int(s.lower().lstrip("x")))
    except ValueError:
      raise UsageError(f"{flag} {value!r}: {s!r} is not an integer scale; use e.g. 2,3,4") from None
  if any(s < 1 for s in scales) or not (scales or allow_empty):
    raise UsageError(f"{flag} {value!r}: scales must be positive integers, e.g. 2,3,4")
  return scales


def positive_int(text: str) -> int:
  """argparse type of a count or size that must be >= 1."""
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
  if value < 1:
    raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
  return value


def add_model_source_flags(parser, *, sources=("checkpoint", "model"), required=True,
                           model_help="zoo preset (memsr_jax.models.registry)",
                           torch_weights=True) -> None:
  """Declares the model-source flags a tool takes (`sources`: any of checkpoint, model, onnx;
  mutually exclusive, one required when `required`) plus --scale and, with a --model source,
  --set and --torch_weights (and --param_key)."""
  helps = {"checkpoint": ("DIR", "model checkpoint or training workdir"),
           "model": ("NAME", model_help),
           "onnx": ("FILE", "an exported ONNX model (python -m memsr_jax.export)")}
  group = parser.add_mutually_exclusive_group(required=required)
  for name in sources:
    metavar, text = helps[name]
    group.add_argument(f"--{name}", metavar=metavar, help=text)
  parser.add_argument("--scale", type=positive_int, metavar="S",
                      help="the model's scale (required with --model; checked otherwise)")
  if "model" not in sources:
    return
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="model hyperparameter override for --model (JSON value), repeatable, "
                      "e.g. depths=[4,4,4]")
  if torch_weights:
    parser.add_argument("--torch_weights", metavar="FILE",
                        help="PyTorch .pth for --model ({scale} is substituted)")
    parser.add_argument("--param_key", help="entry of the .pth holding the weights (default: "
                        "params, then params_ema)")
