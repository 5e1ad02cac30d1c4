"""Executes notebooks/walkthrough.ipynb end to end (tiny CPU settings) and checks what it shows.

It runs as in a fresh runtime: outside any checkout, with memsr_jax installed (pip install --target
of a copy of the sources, the dependencies from this environment), and without a workdir of its
own, so the temporary folder it makes must be gone when it ends.
"""
import importlib.util
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "walkthrough.ipynb"
GENERATOR = REPO / "notebooks" / "make_walkthrough.py"
TIMEOUT_S = 900  # per cell; the whole notebook takes ~2-4 min on a loaded 2-core CPU


def _kernel_manager(kernel_dir: pathlib.Path):
  """A kernel running this interpreter (so the notebook sees the test's environment)."""
  from jupyter_client.kernelspec import KernelSpecManager
  from jupyter_client.manager import KernelManager
  spec_dir = kernel_dir / "memsr_nb_test"
  spec_dir.mkdir(parents=True)
  (spec_dir / "kernel.json").write_text(json.dumps({
      "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
      "display_name": "memsr_jax test kernel", "language": "python"}))
  ksm = KernelSpecManager(kernel_dirs=[str(kernel_dir)])
  return KernelManager(kernel_name="memsr_nb_test", kernel_spec_manager=ksm)


def _repo_files() -> set:
  """Where the notebook could leave files: notebooks/, and runs/ or workdirs at the top level."""
  files = {p for p in (REPO / "notebooks").rglob("*") if "__pycache__" not in p.parts}
  return files | {p for p in REPO.iterdir() if p.name.startswith(("runs", "memsr_walkthrough"))}


def _install(tmp_path: pathlib.Path) -> pathlib.Path:
  """memsr_jax installed from a copy of the sources into a folder of its own (no dependencies)."""
  src = tmp_path / "src"
  for name in ("memsr_jax", "configs"):
    shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
  for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
    shutil.copy(REPO / name, src / name)
  site = tmp_path / "site"
  subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                  "--no-build-isolation", "--target", str(site), str(src)],
                 check=True, capture_output=True, timeout=600)
  return site


def _text_outputs(nb) -> str:
  parts = []
  for cell in nb.cells:
    for out in cell.get("outputs", []):
      if out.get("output_type") == "stream":
        parts.append(out["text"])
      elif "data" in out and "text/plain" in out["data"]:
        parts.append(out["data"]["text/plain"])
  return "\n".join(parts)


def test_notebook_is_saved_without_outputs_and_matches_its_generator():
  nbformat = pytest.importorskip("nbformat")
  nb = nbformat.read(str(NOTEBOOK), as_version=4)
  nbformat.validate(nb)
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert code, "the walkthrough has no code cells"
  assert all(not c.outputs and c.execution_count is None for c in code), (
      "save notebooks/walkthrough.ipynb without outputs (python notebooks/make_walkthrough.py)")
  spec = importlib.util.spec_from_file_location("make_walkthrough", GENERATOR)
  gen = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(gen)
  want = [(c.cell_type, c.source) for c in gen.build().cells]
  assert [(c.cell_type, c.source) for c in nb.cells] == want, (
      "notebooks/walkthrough.ipynb differs from notebooks/make_walkthrough.py: edit the generator "
      "and run `python notebooks/make_walkthrough.py`")


@pytest.mark.slow
def test_walkthrough_runs(tmp_path, monkeypatch):
  pytest.importorskip("ipykernel")
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  site = _install(tmp_path)
  outside = tmp_path / "outside"  # no checkout at or above it
  outside.mkdir()
  temp = tmp_path / "temp"  # where the notebook's own temporary workdir goes
  temp.mkdir()
  monkeypatch.setenv("PYTHONPATH", str(site))
  monkeypatch.setenv("TMPDIR", str(temp))
  monkeypatch.delenv("MEMSR_NB_WORKDIR", raising=False)
  monkeypatch.setenv("MEMSR_NB_TINY", "1")
  monkeypatch.setenv("JAX_PLATFORMS", os.environ.get("JAX_PLATFORMS", "cpu"))
  # Kernel connection files and IPython's profile/history in tmp, not in the user's home.
  monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter_runtime"))
  monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
  before = _repo_files()

  nb = nbformat.read(str(NOTEBOOK), as_version=4)
  client = nbclient.NotebookClient(nb, timeout=TIMEOUT_S, km=_kernel_manager(tmp_path / "kernels"),
                                   resources={"metadata": {"path": str(outside)}})
  try:
    client.execute()  # raises CellExecutionError (with the cell's traceback) on any error
  finally:
    nbformat.write(nb, str(tmp_path / "executed.ipynb"))  # for a look after a failure

  text = _text_outputs(nb)
  assert f"memsr_jax installed at {site / 'memsr_jax'}" in text  # not a checkout
  assert "settings: TINY" in text
  assert "max |plain - residual|" in text and "Y-PSNR" in text
  assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
             for c in nb.cells for o in c.get("outputs", [])), "no figure was shown"

  line = next(x for x in text.splitlines() if x.startswith("SUMMARY "))
  summary = json.loads(line[len("SUMMARY "):])
  assert f"removed {temp}/memsr_walkthrough_" in text  # its workdir was a temporary folder …
  left = [p.name for p in temp.iterdir() if p.name.startswith("memsr_walkthrough_")]
  assert left == [], f"the notebook left its temporary folder behind: {left}"  # … and is gone
  # The converted plain teacher computes the residual teacher's function (fp32 rounding only).
  # (literal form: the +C copies cost float32 bits, docs/MEMSR.md measures up to 1.3e-3; the
  # offset-folded form stays at the fp32 rounding level of the residual teacher itself.)
  assert summary["convert_max_abs_diff"] <= 2e-3
  assert summary["convert_folded_max_abs_diff"] <= 1e-3
  ev = summary["eval"]
  assert set(ev) == {"bicubic", "teacher (residual)", "student (winning init)",
                     "student (distilled)"}
  assert all(r["n_images"] == 2 for r in ev.values())
  assert 28.0 < ev["bicubic"]["psnr"] < 40.0  # skimage_val ×2 bicubic: a sanity anchor
  student = ev["student (distilled)"]["psnr"]
  # A few hundred tiny steps: well above a broken model (< 20 dB), and training from the winning
  # init must have improved it (31.3 vs 28.2 dB when written).
  assert math.isfinite(student) and student > 25.0
  assert student > ev["student (winning init)"]["psnr"]
  prof = {r["model"]: r for r in summary["profile"]}
  assert prof["plain student"]["params"] < prof["teacher (residual)"]["params"]
  assert prof["plain student"]["gmacs"] < prof["teacher (residual)"]["gmacs"]
  # Masked tiling is exact for plain nets: the tiled PNG equals the whole-image forward (±1 level
  # where float summation order flips a rounding).
  assert summary["upscale"]["n_tiles"] > 1 and summary["upscale"]["tiled_vs_whole_max_diff"] <= 1
  assert summary["files"] == {"student_model": True, "upscaled_png": True}
  if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("jax2onnx"):
    # Section 7: verified ONNX export, and ORT's tiled upscale = JAX's whole image (±1 level).
    assert summary["onnx"]["max_abs_diff"] <= 1e-3
    assert summary["onnx"]["ort_tiled_vs_jax_whole_max_diff"] <= 1

  new = sorted(str(p.relative_to(REPO)) for p in _repo_files() - before)
  assert not new, f"running the notebook left files in the repository: {new}"
