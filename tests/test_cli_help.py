"""Every command follows one parser convention (utils/cli.py): `--help` prints the usage and
exits 0, and a flag argparse or absl rejects is one `error:` line on stderr with exit status 2."""
import importlib
import os
import pathlib
import re
import subprocess
import sys

import pytest

from memsr_jax.deploy import export_cli
from memsr_jax.deploy import upscale_cli
from memsr_jax.utils import cli

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
    "-m memsr_jax.eval": "--config",
    "-m memsr_jax.tools.train": "--workdir",
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


def _scripts() -> dict[str, str]:
  text = (REPO / "pyproject.toml").read_text()
  block = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
  return dict(re.findall(r'^(memsr-[\w-]+) = "([\w.]+:\w+)"', block, re.M))


def test_every_console_script_is_a_tool_main():
  scripts = _scripts()
  assert {"memsr-train", "memsr-eval", "memsr-fetch", "memsr-upscale", "memsr-export",
          "memsr-plot", "memsr-profile", "memsr-experiments", "memsr-import-weights",
          "memsr-release-check", "memsr-tiling-error", "memsr-qat"} <= set(scripts)
  for name, target in scripts.items():
    module, func = target.split(":")
    assert module.startswith("memsr_jax.tools.") and func == "main", (name, target)
    assert callable(getattr(importlib.import_module(module), func)), name


def test_train_config_by_name_and_a_missing_one():
  rc, out, err = _run("-m memsr_jax.tools.train", "--config", "nope", "--workdir", "w")
  assert rc == 2 and err.startswith("error: --config nope: no such file") and \
      err.count("\n") == 1, err
  rc, out, err = _run("-m memsr_jax.tools.train", "--config", "quickstart", "--help")
  assert rc == 0 and "config.total_steps" in out, (out[-2000:], err[-2000:])


def test_python_m_train_points_at_the_command():
  rc, out, err = _run("-m memsr_jax.train")
  assert rc == 2 and err.startswith("error: ") and "memsr-train" in err and \
      err.count("\n") == 1, err


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
