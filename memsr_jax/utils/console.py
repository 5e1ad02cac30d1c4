"""What a command shows in the terminal: our lines on stderr, one progress helper, quiet libraries.

- `setup(verbose)`: call once at the start of a command. Our messages (the `memsr_jax` loggers and
  `say`) go to stderr as plain lines; INFO and WARNING records of third-party libraries (absl,
  Orbax, onnx_ir, JAX's backend probing, …) are dropped unless `verbose`; their errors still show.
  Results a command exists for (tables, JSON) stay on stdout, so they can be piped.
- `say(message)`: one line on stderr that never lands inside an active progress bar; `result(text)`:
  a result on stdout.
- `progress(total, …)`: a tqdm bar in a terminal; elsewhere (logs, CI) a plain line at most every
  `min_interval` seconds (with the time left when the total is known) and at the end (unless
  `final_line=False`: the caller prints its own summary, and the bar is cleared at the end).
  While a bar is open, `say` and our log records are printed above it (`tqdm.write`).
- `add_verbose_flag(parser)` / `VERBOSE_HELP`: the one `--verbose` flag every command shares.
"""
import logging
import os
import sys
import time
from typing import Optional
import warnings

from tqdm import tqdm

OUR_LOGGER = "memsr_jax"
# Libraries whose INFO/WARNING records are noise on a successful run (kept with --verbose).
NOISY_LOGGERS = ("absl", "orbax", "onnx_ir", "onnxscript", "jax2onnx", "jax", "jaxlib", "flax",
                 "grain", "etils", "tensorflow_datasets", "tensorboardX", "matplotlib", "PIL",
                 "h5py", "urllib3")
# Modules whose Python warnings (warnings.warn) are noise on a successful run.
NOISY_WARNING_MODULES = r"(absl|orbax|onnx_ir|onnxscript|jax2onnx|jax|flax|grain|etils|" \
                        r"tensorflow_datasets|tensorboardX|torch|onnx|onnxruntime)(\.|$)"
VERBOSE_HELP = "show the INFO and WARNING messages of the libraries used (hidden by default)"

_bars: list["Progress"] = []  # open progress helpers, innermost last


def _write_line(message: str) -> None:
  if any(b.bar is not None for b in _bars):
    tqdm.write(message, file=sys.stderr)
  else:
    print(message, file=sys.stderr, flush=True)


def result(text: str) -> None:
  """Prints a result the command exists for (a table, JSON) on stdout."""
  print(text, flush=True)


def say(message: str) -> None:
  """Prints one of our lines on stderr (above the progress bar when one is open)."""
  _write_line(str(message))


class _OurHandler(logging.Handler):
  """Our log records as plain lines on stderr (`warning: …` for warnings and errors)."""

  def emit(self, record: logging.LogRecord) -> None:
    try:
      text = record.getMessage()
      if record.exc_info and record.levelno >= logging.ERROR:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
      prefix = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
      _write_line(prefix + text)
    except Exception:  # noqa: BLE001  (a broken record must not end the command)
      self.handleError(record)


def setup(verbose: bool = False) -> None:
  """Configures logging and warnings for a command (idempotent; `verbose` may change per call)."""
  ours = logging.getLogger(OUR_LOGGER)
  for h in [h for h in ours.handlers if isinstance(h, _OurHandler)]:
    ours.removeHandler(h)
  ours.addHandler(_OurHandler())
  ours.setLevel(logging.DEBUG if verbose else logging.INFO)
  ours.propagate = False
  third_party = logging.INFO if verbose else logging.ERROR
  for name in NOISY_LOGGERS:
    logging.getLogger(name).setLevel(third_party)
  root = logging.getLogger()
  if verbose and not root.handlers:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s:%(name)s: %(message)s")
  if not verbose:
    # XLA's and TensorFlow's C++ logs (read when the runtime loads; leaves a user's choice alone).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", module=NOISY_WARNING_MODULES)
    for category in (DeprecationWarning, FutureWarning):
      warnings.filterwarnings("ignore", category=category)
  _silence_absl(verbose)


def _silence_absl(verbose: bool) -> None:
  """absl keeps its own verbosity (orbax logs through it); match it to ours when loaded."""
  absl_logging = sys.modules.get("absl.logging")
  if absl_logging is not None:
    absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.ERROR)


def add_verbose_flag(parser) -> None:
  """Adds the shared `--verbose` flag to an argparse parser."""
  parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)


class Progress:
  """Progress of a counted job; see the module docstring. Use `progress(...)` to make one."""

  def __init__(self, total: Optional[int], desc: str, unit: str, initial: int, enabled: bool,
               tty: bool, min_interval: float, unit_scale: bool = False, final_line: bool = True):
    self.total, self.desc, self.unit = total, desc, unit
    self.n = initial
    self.final_line = final_line
    self._t0, self._n0 = time.monotonic(), initial
    self.enabled = enabled
    self.postfix: dict[str, str] = {}
    self.min_interval = min_interval
    self._last_line = time.monotonic()
    self._last_n = initial
    self.bar = None
    if enabled and tty:
      self.bar = tqdm(total=total, initial=initial, desc=desc or None, unit=unit,
                      unit_scale=unit_scale, dynamic_ncols=True, mininterval=1.0,
                      file=sys.stderr, leave=final_line)

  def update(self, n: int = 1) -> None:
    self.n += n
    if self.bar is not None:
      self.bar.update(n)
    elif self.enabled and time.monotonic() - self._last_line >= self.min_interval:
      self._line()

  def set_postfix(self, **values) -> None:
    self.postfix = {k: str(v) for k, v in values.items()}
    if self.bar is not None:
      self.bar.set_postfix(self.postfix, refresh=False)

  def _line(self) -> None:
    self._last_line, self._last_n = time.monotonic(), self.n
    count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
    extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
    head = f"{self.desc}: " if self.desc else ""
    print(f"{head}{count} {self.unit}{extra}{self._eta()}", file=sys.stderr, flush=True)

  def _eta(self) -> str:
    """`, eta 1:02:03` from the mean rate since the start; empty when it cannot be told."""
    done, elapsed = self.n - self._n0, time.monotonic() - self._t0
    if not self.total or self.n >= self.total or done <= 0 or elapsed <= 0:
      return ""
    left = round((self.total - self.n) * elapsed / done)
    return f", eta {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"

  def close(self) -> None:
    if self in _bars:
      _bars.remove(self)
    if self.bar is not None:
      self.bar.close()
      self.bar = None
    elif self.enabled and self.final_line and self.n != self._last_n:  # unless just printed
      self._line()
    self.enabled = False

  def __enter__(self) -> "Progress":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def progress(total: Optional[int], desc: str = "", unit: str = "it", initial: int = 0,
             enabled: bool = True, tty: Optional[bool] = None, min_interval: float = 30.0,
             unit_scale: bool = False, final_line: bool = True) -> Progress:
  """A progress helper (tqdm bar when stderr is a terminal, else periodic plain lines).

  `tty` overrides the terminal check (tests); `enabled=False` shows nothing (other processes of a
  multi-host run, or a config that turns progress off); `unit_scale`: k/M/G prefixes in the bar;
  `final_line=False`: no plain count line at the end, and the bar is cleared when it closes (the
  caller's own line follows).
  """
  if tty is None:
    tty = sys.stderr.isatty()
  p = Progress(total, desc, unit, initial, enabled, tty, min_interval, unit_scale, final_line)
  _bars.append(p)
  return p


def verbose_in_argv(argv) -> bool:
  """Whether `--verbose` is among the command-line arguments (for setup before flag parsing)."""
  return any(a == "--verbose" or a.startswith("--verbose=") and a[10:].lower() in ("1", "true")
             for a in argv)
