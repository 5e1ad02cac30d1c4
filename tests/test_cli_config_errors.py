"""Config flag errors of the absl commands (train.py, eval.py) are one clean line: a key typo
names the key and the suggestion without escapes, a missing config file names the file."""
import os
import pathlib
import subprocess
import sys

import pytest

from memsr_jax.utils import cli

REPO = pathlib.Path(__file__).resolve().parents[1]
# A minimal absl command with a config flag, as train.py declares it (no JAX import: fast).
COMMAND = """
from ml_collections import config_flags
from memsr_jax.utils import cli
_CONFIG = config_flags.DEFINE_config_file("config", None, "config", lock_config=True)
def main(argv):
  cli.config_value(_CONFIG)
  print("ran")
cli.run_absl(main)
"""


def _run(*args):
  p = subprocess.run([sys.executable, "-c", COMMAND, *args], capture_output=True,
                     text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))
  return p.returncode, p.stderr


@pytest.fixture(autouse=True)
def _tiny_config(tmp_path, monkeypatch):
  (tmp_path / "tiny.py").write_text("import ml_collections\n\ndef get_config():\n"
                                    "  return ml_collections.ConfigDict({'total_steps': 1})\n")
  monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("args, line", [
    (["--config", "tiny.py", "--config.total_step=5"],
     "error: --config.total_step=5: the config has no key 'total_step' (did you mean "
     "'total_steps'?); check the name against the config file"),
    (["--config", "configs/nope.py"],
     "error: cannot load --config: config file configs/nope.py not found; check the path (the "
     "project's configs are in configs/)"),
])
def test_config_flag_errors_are_one_clean_line(args, line):
  rc, err = _run(*args)
  assert rc == 2 and err == line + "\n", err


def test_the_key_is_read_from_the_wrapped_key_error():
  e = AttributeError(KeyError("'rot'\nDid you mean \"root\" instead of \"rot\"?"))
  assert cli._missing_key(e) == ("rot", " (did you mean 'root'?)")
  assert cli._missing_key(KeyError("'x'")) == ("x", "")
