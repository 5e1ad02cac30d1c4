"""docs/EXPERIMENTS.md's results section is what the committed results files render, and the
committed files are what the doc says (budget, claims)."""
import importlib.util
import json
import pathlib

import pytest

from memsr_jax.experiments import claims
from memsr_jax.experiments import specs

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "render_experiments.py"
_spec = importlib.util.spec_from_file_location("render_experiments", _PATH)
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)


def test_results_section_equals_the_rendered_files():
  doc = render.DOC.read_text()
  assert render.replace_block(doc, render.render()) == doc, (
      "docs/EXPERIMENTS.md differs from benchmarks/results/experiments/: run "
      "python benchmarks/render_experiments.py")
  assert "earlier form" not in doc


def test_rendered_commands_name_no_machine_paths():
  cmd = ("python -m memsr_jax.experiments memsr_x4 --budget cpu --workdir /x/runs/W --data_dir "
         "../shared/datasets --weights_dir /y/weights --sets set5,set14")
  assert render.portable_command(cmd) == (
      "python -m memsr_jax.experiments memsr_x4 --budget cpu --workdir W --sets set5,set14")


@pytest.mark.parametrize("name", specs.NAMES)
def test_committed_results_follow_the_rules(name):
  path = render.RESULTS / f"{name}.json"
  if not path.is_file():
    pytest.skip(f"{path.name} not committed")
  res = json.loads(path.read_text())
  assert res["experiment"] == name and res["budget"] == "cpu"
  for c in res["claims"]:
    assert c["kind"] in claims.KINDS and c["verdict"] in (
        claims.HOLDS, claims.FAILS, claims.INCONCLUSIVE, claims.NOT_JUDGED)
    if c["kind"] == "absolute" and c["verdict"] != claims.NOT_JUDGED:
      assert c["converged"]  # no unconverged absolute claim is judged
    if c["kind"] == "relative" and c["verdict"] != claims.NOT_JUDGED:
      assert c["seeds"] >= claims.MIN_SEEDS


def test_render_replaces_only_the_marked_block(tmp_path):
  doc = f"intro\n{render.BEGIN}\nold\n{render.END}\noutro\n"
  new = render.replace_block(doc, "new")
  assert new.startswith("intro\n") and new.endswith(f"{render.END}\noutro\n") and "old" not in new
  with pytest.raises(ValueError, match="markers"):
    render.replace_block("no markers", "x")
  assert "not run" in render.render(tmp_path)  # an empty results folder says so per experiment
