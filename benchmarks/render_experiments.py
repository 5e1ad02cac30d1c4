"""docs/EXPERIMENTS.md's results section, rendered from the committed results files.

  python benchmarks/render_experiments.py [--check]

Reads benchmarks/results/experiments/<name>.json (each a results.json of
`python -m memsr_jax.experiments`), renders each as its results.md does (claims table first,
then the rows), and replaces what lies between the two RESULTS markers in docs/EXPERIMENTS.md.
--check: writes nothing; exit status 1 when the document differs from the files.
"""
import argparse
import json
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from memsr_jax.experiments import report  # noqa: E402
from memsr_jax.experiments import specs  # noqa: E402
from memsr_jax.utils import console  # noqa: E402
from memsr_jax.utils import safe_io  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "experiments"
DOC = ROOT / "docs" / "EXPERIMENTS.md"
BEGIN = "<!-- RESULTS: rendered by python benchmarks/render_experiments.py; do not edit -->"
END = "<!-- RESULTS END -->"


def columns(res: dict) -> tuple:
  """The extra columns of a results.json (recorded, else read off its rows)."""
  if res.get("columns") is not None:
    return tuple(res["columns"])
  rows = res.get("rows") or []
  found = [c for c, key in (("sparsity", "sparsity_network"), ("macs", "macs"),
                            ("memory", "memory")) if any(key in r for r in rows)]
  return tuple(found)


def portable_command(command: str) -> str:
  """The experiment's command as a reader reruns it: workdir W, data and weights from the data
  home (the paths of the machine it ran on dropped)."""
  command = re.sub(r"--workdir \S+", "--workdir W", command)
  return re.sub(r" --(data_dir|weights_dir) \S+", "", command)


def render(results_dir: pathlib.Path = RESULTS) -> str:
  """The results section: one block per results file, in the experiments' order."""
  out = []
  for name in specs.NAMES:
    path = results_dir / f"{name}.json"
    if not path.is_file():
      out += [f"### {name}", "", f"No results file ({path.name}): not run at a committed "
              "budget.", ""]
      continue
    res = json.loads(path.read_text())
    md = report.markdown(res, columns(res)).replace(
        f"```\n{res['command']}\n```", f"```bash long\n{portable_command(res['command'])}\n```")
    out += [f"`benchmarks/results/experiments/{path.name}`:", "", md.rstrip(), ""]
  return "\n".join(out)


def replace_block(doc: str, block: str) -> str:
  if BEGIN not in doc or END not in doc:
    raise ValueError(f"{DOC.name} lacks the RESULTS markers")
  head, rest = doc.split(BEGIN, 1)
  _, tail = rest.split(END, 1)
  return f"{head}{BEGIN}\n\n{block}\n{END}{tail}"


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python benchmarks/render_experiments.py",
                              description=__doc__.split("\n\n")[0])
  p.add_argument("--check", action="store_true", help="compare only; exit 1 when they differ")
  args = p.parse_args(argv)
  doc = DOC.read_text()
  new = replace_block(doc, render())
  if args.check:
    if new != doc:
      console.say(f"{DOC} differs from {RESULTS}: run python benchmarks/render_experiments.py")
      return 1
    return 0
  safe_io.atomic_write_text(DOC, new)
  console.say(f"rendered {DOC}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
