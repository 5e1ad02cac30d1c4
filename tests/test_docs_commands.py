"""Every command in README.md and docs/*.md marked runnable runs as written, at tiny sizes.

The marker is the fence's info string: a block opened with ```bash runnable is run, line by line
(backslash continuations joined, comments skipped), in document order, in one scratch folder per
document. The scratch folder looks like a checkout: configs/ is linked, train.py and eval.py copied,
the console scripts of pyproject.toml are on the PATH (the wrappers pip writes), and the data home
($MEMSR_DATA_DIR) holds two tiny images per benchmark set (and the real IMDN weights when this
machine has them). Tiny sizes come from the data, and for training from the overrides in TINY
appended to the command. Setup segments of a `&&` chain (venv creation, `pip install`, the test
command itself) are left out: CI runs those in a fresh venv (.ci/run).

Every ```bash block is fenced with a word after `bash`: `runnable`, or why it is not run here
(`network`, `gpu`, `long`, `synopsis`, …); README.md and docs/ name no path outside the repository.
"""
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

from conftest import REPO
from conftest import SHARED
import numpy as np
from PIL import Image
import pytest

MARKER = "runnable"
DOCS = [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))
SETUP_PREFIXES = ("python3 -m venv", ". .venv/bin/activate", "source .venv/bin/activate",
                  "pip install", "python -m pip install", "python -m pytest")
# Appended to commands that start with these, so that a documented run takes seconds.
_TRAIN_TINY = ["--config.total_steps=2", "--config.log_every=1", "--config.ckpt_every=2",
                        "--config.data.batch_size=2", "--config.val.max_images=1",
                        "--config.val.every_steps=0"]
TINY = {
    "python train.py": _TRAIN_TINY,
    "memsr-train": _TRAIN_TINY,
    "python -m memsr_jax.profile": ["--hr", "64x48", "--no_layerwise"],
}
_FENCE = re.compile(r"^```(\S*)([^\n]*)\n(.*?)^```", re.M | re.S)
_SCRIPT = '''#!{python}
import sys
from {module} import {func}
if __name__ == "__main__":
    sys.exit({func}())
'''


def runnable_blocks(text: str) -> list[str]:
  """The bodies of the fenced blocks whose info string has the word `runnable`."""
  return [m.group(3) for m in _FENCE.finditer(text)
          if MARKER in (m.group(1) + " " + m.group(2)).split()]


def commands(block: str) -> list[str]:
  """One string per command: continuations joined, comment and blank lines dropped."""
  out, current = [], ""
  for line in block.splitlines():
    if not current and (not line.strip() or line.lstrip().startswith("#")):
      continue
    current += line.strip() if current else line.rstrip()
    if current.endswith("\\"):
      current = current[:-1].rstrip() + " "
      continue
    out.append(current.strip())
    current = ""
  if current:
    out.append(current.strip())
  return out


def runnable_part(command: str) -> str:
  """The command without its setup segments (see the module docstring); '' if nothing is left."""
  kept = [s.strip() for s in command.split("&&")
          if not s.strip().startswith(SETUP_PREFIXES)]
  return " && ".join(kept)


def with_tiny_sizes(command: str) -> str:
  for prefix, extra in TINY.items():
    if command.startswith(prefix):
      return command + " " + " ".join(shlex.quote(e) for e in extra)
  return command


def doc_commands(doc: pathlib.Path) -> list[str]:
  return [c for block in runnable_blocks(doc.read_text()) for c in commands(block)]


def bare_bash_blocks(text: str) -> list[str]:
  """The first line of every ```bash block whose fence says nothing about running it."""
  return [m.group(3).split("\n", 1)[0] for m in _FENCE.finditer(text)
          if m.group(1) == "bash" and not m.group(2).strip()]


def console_scripts() -> dict[str, str]:
  """{command: "module:function"} of pyproject.toml's [project.scripts]."""
  block = (REPO / "pyproject.toml").read_text().split("[project.scripts]", 1)[1]
  block = block.split("\n[", 1)[0]
  return dict(re.findall(r'^([\w-]+) = "([\w.:]+)"', block, re.M))


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_docs_stand_alone_and_say_how_each_block_runs(doc):
  text = doc.read_text()
  assert bare_bash_blocks(text) == [], f"{doc.name}: fence these as ```bash runnable or why not"
  assert "../shared" not in text, f"{doc.name} names a path outside the repository"


# ----------------------------------------------------------------------------- the parser


def test_bare_bash_blocks_are_found():
  text = "```bash\nls\n```\n```bash network\npip install x\n```\n```python\nx\n```\n"
  assert bare_bash_blocks(text) == ["ls"]


def test_parser_reads_the_marker_continuations_and_setup_segments():
  text = ("intro\n```bash runnable\n# a comment\npython a.py --x 1 \\\n  --y 2\n\n"
          "python3 -m venv .venv && . .venv/bin/activate && pip install -r r.txt && "
          "python train.py --c q\n```\n```bash\npython not_me.py\n```\n"
          "```python runnable\nprint(1)\n```\n")
  blocks = runnable_blocks(text)
  assert len(blocks) == 2
  cmds = commands(blocks[0])
  assert cmds[0] == "python a.py --x 1 --y 2"
  assert runnable_part(cmds[1]) == "python train.py --c q"
  assert runnable_part("pip install -r requirements-dev.txt && python -m pytest -q") == ""
  assert with_tiny_sizes("python train.py --c q").endswith("--config.val.every_steps=0")


def test_readme_has_runnable_blocks_and_ci_runs_its_test_command():
  readme = doc_commands(REPO / "README.md")
  assert any("python train.py" in c for c in readme) and any("memsr-train" in c for c in readme)
  test_cmds = [s.strip() for c in readme for s in c.split("&&")
               if s.strip().startswith("python -m pytest")]
  assert len(test_cmds) == 1, test_cmds
  ci = (REPO / ".ci" / "run").read_text().splitlines()
  assert ci[-1].strip() == test_cmds[0]  # CI ends with exactly the README's test command


# ----------------------------------------------------------------------------- running them


def _sandbox(tmp_path: pathlib.Path) -> pathlib.Path:
  work = tmp_path / "checkout"
  work.mkdir()
  (work / "configs").symlink_to(REPO / "configs")
  for name in ("train.py", "eval.py"):
    shutil.copy(REPO / name, work / name)
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for command, target in console_scripts().items():
    module, func = target.split(":")
    script = bin_dir / command
    script.write_text(_SCRIPT.format(python=sys.executable, module=module, func=func))
    script.chmod(0o755)
  rng = np.random.default_rng(0)
  for folder in ("Set5", "Set14", "B100", "Urban100", "T91", "BSD200"):
    d = tmp_path / "data" / "datasets" / folder
    d.mkdir(parents=True)
    for i in range(2):
      Image.fromarray(rng.integers(0, 256, (36, 48, 3), np.uint8)).save(d / f"img{i}.png")
  weights = SHARED / "weights"
  if weights.is_dir():
    (tmp_path / "data" / "weights").symlink_to(weights)
  return work


def _needs(command: str) -> str:
  """Why this machine cannot run the command ('' when it can)."""
  import importlib.util
  if ("torch_weights" in command or "import_weights" in command) and \
      importlib.util.find_spec("torch") is None:
    return "torch is not installed"
  if any(m in command for m in ("memsr_jax.export", "onnxruntime", "ort_backend")) and any(
      importlib.util.find_spec(m) is None for m in ("onnxruntime", "jax2onnx")):
    return "the export extra is not installed"
  if "imdn/IMDN_x" in command and not (SHARED / "weights").is_dir():
    return f"no weights in {SHARED}"
  return ""


def _run_doc(doc: pathlib.Path, tmp_path: pathlib.Path) -> None:
  cmds = [runnable_part(c) for c in doc_commands(doc)]
  cmds = [c for c in cmds if c]
  assert cmds, f"{doc.name} has no runnable command"
  work = _sandbox(tmp_path)
  env = dict(os.environ, PYTHONPATH=str(REPO), PATH=f"{work.parent / 'bin'}:"
             f"{pathlib.Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
             XLA_FLAGS="--xla_force_host_platform_device_count=1",
             MEMSR_DATA_DIR=str(work.parent / "data"))
  skipped = []
  for cmd in cmds:
    why = _needs(cmd)
    if why:
      skipped.append(f"{cmd[:60]}… ({why})")
      continue
    p = subprocess.run(with_tiny_sizes(cmd), shell=True, executable="/bin/bash", cwd=work,
                       env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, f"{doc.name}: `{cmd}` exited {p.returncode}:\n{p.stderr[-3000:]}"
  if skipped:
    print("not run here:", *skipped, sep="\n  ")


@pytest.mark.parametrize("doc", [d for d in DOCS if d.name == "DATA.md"], ids=lambda d: d.name)
def test_fast_doc_commands_run(doc, tmp_path):
  _run_doc(doc, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if d.name != "DATA.md" and doc_commands(d)],
                         ids=lambda d: d.name)
def test_doc_commands_run(doc, tmp_path):
  _run_doc(doc, tmp_path)
