"""utils.console: our lines on stderr, progress that cooperates with tqdm, quiet libraries."""
import logging
import re
import subprocess
import sys
import textwrap

import pytest

from memsr_jax.utils import console


@pytest.fixture(autouse=True)
def _restore_logging():
  names = (console.OUR_LOGGER,) + console.NOISY_LOGGERS
  saved = {n: (logging.getLogger(n).level, logging.getLogger(n).propagate,
               list(logging.getLogger(n).handlers)) for n in names}
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr("warnings.filters", list(__import__("warnings").filters))
    mp.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    yield
  for n, (level, propagate, handlers) in saved.items():
    lg = logging.getLogger(n)
    lg.setLevel(level)
    lg.propagate = propagate
    lg.handlers[:] = handlers


def test_say_and_our_logs_go_to_stderr(capsys):
  console.setup()
  console.say("hello")
  logging.getLogger("memsr_jax.some.module").info("our info")
  logging.getLogger("memsr_jax.x").warning("careful")
  out, err = capsys.readouterr()
  assert out == ""
  assert err.splitlines() == ["hello", "our info", "warning: careful"]


def test_third_party_info_and_warnings_hidden_unless_verbose():
  console.setup(verbose=False)
  for name in ("absl", "orbax.checkpoint.checkpoint_manager", "onnx_ir.serde",
               "jax._src.xla_bridge"):
    lg = logging.getLogger(name)
    assert not lg.isEnabledFor(logging.WARNING), name
    assert lg.isEnabledFor(logging.ERROR), name  # errors still show
  console.setup(verbose=True)
  for name in ("absl", "orbax.checkpoint", "onnx_ir.serde", "jax._src.xla_bridge"):
    assert logging.getLogger(name).isEnabledFor(logging.INFO), name


_SCRIPT = textwrap.dedent("""
  import logging, sys, warnings
  from absl import logging as absl_logging
  from memsr_jax.utils import console
  console.setup(verbose="--verbose" in sys.argv)
  absl_logging.warning("Given directory is read only=/x")     # orbax logs through absl
  logging.getLogger("orbax.checkpoint").info("restore_concurrent_bytes 89.4 GiB")
  logging.getLogger("onnx_ir.serde").warning("Skipping serialization")
  logging.getLogger("jax._src.xla_bridge").warning("Unable to initialize backend 'tpu'")
  warnings.warn_explicit("deprecated thing", DeprecationWarning, "x.py", 1, module="orbax.x")
  logging.getLogger("orbax.checkpoint").error("a real failure")
  console.say("our line")
  print("result on stdout")
""")


@pytest.mark.parametrize("verbose", [False, True])
def test_real_process_output(verbose):
  args = [sys.executable, "-c", _SCRIPT] + (["--verbose"] if verbose else [])
  p = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True)
  assert p.stdout == "result on stdout\n"
  err = p.stderr
  assert "our line" in err and "a real failure" in err
  noise = ("read only", "restore_concurrent_bytes", "Skipping serialization",
           "Unable to initialize backend")
  if verbose:
    assert all(n in err for n in noise), err
  else:
    assert not any(n in err for n in noise), err
    assert len(err.strip().splitlines()) == 2, err


def test_say_while_a_bar_is_open_prints_above_the_bar(capsys):
  console.setup()
  with console.progress(10, desc="train", unit="step", tty=True) as p:
    p.update(3)
    console.say("validation 33.1 dB")
    logging.getLogger("memsr_jax.train").info("saved a checkpoint")
    p.update(7)
  err = capsys.readouterr().err
  # tqdm.write clears the bar line first, so each message starts a line of its own.
  assert re.search(r"(^|[\r\n])validation 33\.1 dB\n", err), repr(err)
  assert re.search(r"(^|[\r\n])saved a checkpoint\n", err), repr(err)
  assert "10/10" in err
  assert console._bars == []


def test_plain_progress_lines_without_a_terminal(capsys):
  with console.progress(4, desc="eval", unit="image", tty=False, min_interval=0.0) as p:
    p.set_postfix(psnr="30.1")
    p.update(2)
    console.say("a message")
    p.update(2)
  err = capsys.readouterr().err.splitlines()
  # Two images within microseconds: no time left to speak of; the last line has none.
  assert err == ["eval: 2/4 image, psnr 30.1, eta 0:00:00", "a message",
                 "eval: 4/4 image, psnr 30.1"]


def test_plain_progress_is_rate_limited_and_can_be_disabled(capsys):
  with console.progress(100, desc="x", tty=False, min_interval=3600) as p:
    for _ in range(100):
      p.update()
  assert capsys.readouterr().err.splitlines() == ["x: 100/100 it"]
  with console.progress(5, enabled=False, tty=True) as p:
    p.update(5)
  assert capsys.readouterr().err == ""


def test_verbose_in_argv():
  assert console.verbose_in_argv(["prog", "--verbose"])
  assert console.verbose_in_argv(["prog", "--verbose=true"])
  assert not console.verbose_in_argv(["prog", "--verbose=false", "--x"])
