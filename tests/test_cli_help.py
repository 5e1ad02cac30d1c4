"""Every command follows one parser convention (memsr_jax/cli.py): `--help` prints the usage and
exits 0, and a flag argparse or absl rejects is one `error:` line on stderr with exit status 2."""
import os
import pathlib
import subprocess
import sys

import pytest

from memsr_jax import cli
from memsr_jax.deploy import export_cli
from memsr_jax.deploy import upscale_cli

REPO = pathlib.Path(__file__).resolve().parents[1]

TOOLS = {  # command → a flag its --help must list
    "train.py": "--workdir",
    "eval.py": "--config",
    "-m memsr_jax.upscale": "--max_memory",
    "-m memsr_jax.export": "--tolerance",
    "-m memsr_jax.import_weights": "--torch_weights",
    "-m memsr_jax.profile": "--hr",
    "-m memsr_jax.tiling_error": "--overlaps",
    "-m memsr_jax.experiments": "--budget",
    "-m memsr_jax.release_check": "--markdown",
    "-m memsr_jax.methods.memsr.convert_error": "--teachers",
}


def _run(command: str, *args):
  env = dict(os.environ, PYTHONPATH=str(REPO), XLA_FLAGS="--xla_force_host_platform_device_count=1")
  p = subprocess.run([sys.executable, *command.split(), *args], cwd=REPO, env=env,
                     capture_output=True, text=True, timeout=300)
  return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("command", list(TOOLS))
def test_help_exits_0(command):
  rc, out, err = _run(command, "--help")
  assert rc == 0, (rc, out[-1000:], err[-2000:])
  assert TOOLS[command] in out and "Traceback" not in out + err, (out[-2000:], err[-2000:])


@pytest.mark.parametrize("command,args,fragment", [
    ("-m memsr_jax.upscale", ["--no_such_flag"], "the following arguments are required"),
    ("-m memsr_jax.profile", ["--no_such_flag"], "unrecognized arguments: --no_such_flag"),
    ("train.py", ["--no_such_flag"], "Unknown command line flag 'no_such_flag'"),
])
def test_flag_errors_are_one_line_exit_2(command, args, fragment):
  rc, out, err = _run(command, *args)
  assert rc == 2 and "Traceback" not in err, (rc, err[-2000:])
  assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and fragment in err, err


@pytest.mark.parametrize("main", [upscale_cli.main, export_cli.main])
def test_argparse_error_in_process(main, capsys):
  with pytest.raises(SystemExit) as e:
    main(["--checkpoint", "a", "--model", "b", "--input", "x", "--output", "y"])
  err = capsys.readouterr().err
  assert e.value.code == 2 and err.count("\n") == 1
  assert err.startswith("error: argument --model: not allowed with argument --checkpoint"), err


def test_parse_scales_and_set():
  assert cli.parse_scales("2,3,4") == [2, 3, 4]
  assert cli.parse_scales("[2, 4]") == [2, 4] and cli.parse_scales("x3") == [3]
  assert cli.parse_scales([3]) == [3]
  assert cli.parse_scales("", allow_empty=True) == []
  for bad, msg in (("2,a", "'a' is not an integer scale"), ("0", "positive"), ("", "positive")):
    with pytest.raises(cli.UsageError, match=msg):
      cli.parse_scales(bad, "--scales")
  assert cli.parse_set_overrides(["depths=[4,4]", "name=x", "n=3"]) == {
      "depths": [4, 4], "name": "x", "n": 3}
  with pytest.raises(cli.UsageError, match="key=value"):
    cli.parse_set_overrides(["depths"])
