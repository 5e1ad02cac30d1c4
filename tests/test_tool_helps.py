"""Every `python -m memsr_jax.<tool>`: each flag has a help line, and every example its --help
shows parses (flags that exist, values they accept). The examples are parsed, not run: the tool's
argparse parser is stopped right after a successful parse. The examples a test can feed cheaply
(`RUNNABLE`) also run, at tiny sizes."""
import argparse
import json
import os
import pathlib
import re
import runpy
import shlex
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tiny_configs

from memsr_jax.train import loop
from memsr_jax.train.supervised import SupervisedTask

REPO = pathlib.Path(__file__).resolve().parents[1]

# runpy re-runs a tool module another test imported; its warning about that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
TOOLS = ("memsr_jax.upscale", "memsr_jax.export", "memsr_jax.import_weights", "memsr_jax.profile",
         "memsr_jax.tiling_error", "memsr_jax.experiments",
         "memsr_jax.release_check", "memsr_jax.methods.memsr.convert_error",
         "memsr_jax.data.fetch", "memsr_jax.plot")


class _Parsed(Exception):
  def __init__(self, parser):
    super().__init__("parsed")
    self.parser = parser


PROBE = "--probe-the-parser"  # stops before parsing: the parser itself is what is wanted


@pytest.fixture
def stop_after_parse(monkeypatch):
  original = argparse.ArgumentParser.parse_args

  def parse_args(self, args=None, namespace=None):
    if args is None:
      args = sys.argv[1:]
    if list(args) != [PROBE]:
      original(self, args, namespace)  # a bad flag exits here (status 2)
    raise _Parsed(self)

  monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)


def _run(tool, argv, monkeypatch):
  monkeypatch.setattr(sys, "argv", [tool, *argv])
  runpy.run_module(tool, run_name="__main__", alter_sys=False)


def _help(tool, monkeypatch, capsys) -> str:
  with pytest.raises(SystemExit) as e:
    _run(tool, ["--help"], monkeypatch)
  assert e.value.code in (0, None)
  return capsys.readouterr().out


def examples(help_text: str, tool: str) -> list[list[str]]:
  """The argv of every `python -m <tool> …` example in a help text (continuations joined;
  comments and `…`/`...` placeholders dropped)."""
  lines, out, current = help_text.splitlines(), [], ""
  for line in lines:
    text = line.strip()
    if not current and not text.startswith(f"python -m {tool} "):
      continue
    current += " " + text
    if current.endswith("\\"):
      current = current[:-1]
      continue
    command = re.split(r"\s#\s", current)[0]
    words = [w for w in shlex.split(command) if w not in ("...", "…")]
    if not any("|" in w or w.startswith("[") for w in words):  # a synopsis is no example
      out.append(words[3:])
    current = ""
  return out


@pytest.mark.parametrize("tool", TOOLS)
def test_every_flag_has_help_and_examples_parse(tool, stop_after_parse, monkeypatch, capsys):
  text = _help(tool, monkeypatch, capsys)
  with pytest.raises(_Parsed) as parsed:
    _run(tool, [PROBE], monkeypatch)
  parser = parsed.value.parser
  undocumented = [a.option_strings or [a.dest] for a in parser._actions
                  if not a.help and not isinstance(a, argparse._HelpAction)]
  assert not undocumented, f"{tool}: flags without a help line: {undocumented}"
  for argv in examples(text, tool):
    with pytest.raises(_Parsed):
      _run(tool, argv, monkeypatch)


def test_examples_are_found_and_a_wrong_flag_fails(stop_after_parse, monkeypatch, capsys):
  text = "  python -m memsr_jax.plot a b --out o   # a comment\n  python -m memsr_jax.plot \\\n" \
         "      c --out p ...\n"
  assert examples(text, "memsr_jax.plot") == [["a", "b", "--out", "o"], ["c", "--out", "p"]]
  with pytest.raises(SystemExit) as e:  # the check can fail: a flag that does not exist
    _run("memsr_jax.profile", ["--plot"], monkeypatch)
  assert e.value.code == 2


# Examples that also run here, at tiny sizes, from a scratch folder holding the files they name:
# (tool, which examples, setup(folder)). The others need what a test cannot make cheaply: the
# network (data.fetch), released .pth files (import_weights), minutes of CPU (profile) or an
# exported model (export, upscale --onnx).
def _photo(path):
  path.parent.mkdir(parents=True, exist_ok=True)
  rgb = np.random.default_rng(0).integers(0, 256, (12, 16, 3), np.uint8)
  Image.fromarray(rgb).save(path)


def _upscale_inputs(folder):
  _photo(folder / "folder" / "a.png")
  _photo(folder / "photo.jpg")
  cfg = tiny_configs.tiny_config()
  cfg.total_steps = 1
  loop.train(cfg, folder / "ckpt", SupervisedTask(cfg))


def _plot_inputs(folder):
  rows = [{"step": s, "train/loss": 1.0 / s, "val/val_psnr": 30.0 + s} for s in (1, 2)]
  (folder / "runs" / "quickstart").mkdir(parents=True)
  (folder / "runs" / "quickstart" / "metrics.jsonl").write_text(
      "".join(json.dumps(r) + "\n" for r in rows))


RUNNABLE = [("memsr_jax.upscale", lambda argv: "--onnx" not in argv, _upscale_inputs),
            ("memsr_jax.plot", lambda argv: True, _plot_inputs)]


@pytest.mark.slow
@pytest.mark.parametrize("tool,which,setup", RUNNABLE, ids=[t for t, _, _ in RUNNABLE])
def test_help_examples_run(tool, which, setup, tmp_path, monkeypatch, capsys):
  chosen = [argv for argv in examples(_help(tool, monkeypatch, capsys), tool) if which(argv)]
  assert chosen, f"{tool}: no runnable example in its --help"
  setup(tmp_path)
  env = dict(os.environ, PYTHONPATH=str(REPO))
  for argv in chosen:
    p = subprocess.run([sys.executable, "-m", tool, *argv], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (argv, p.stderr[-3000:])
    out = pathlib.Path(tmp_path, argv[argv.index("--out" if "--out" in argv else "--output") + 1])
    assert out.is_dir() and any(out.iterdir()), (argv, p.stderr[-3000:])
