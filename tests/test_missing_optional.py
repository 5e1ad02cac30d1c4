"""A missing optional dependency (torch, onnxruntime, jax2onnx) is one line saying what to install,
exit status 2, for the commands that need it. The packages are hidden in a subprocess
(`sys.modules[name] = None` makes their import fail), so this runs whether or not they are here."""
import os
import subprocess
import sys

from conftest import REPO
import numpy as np
from PIL import Image
import pytest

_RUN = ("import runpy, sys; [sys.modules.__setitem__(m, None) for m in {hide!r}]; "
        "sys.argv = {argv!r}; runpy.run_{kind}({target!r}, run_name='__main__')")


def _run(hide, target, argv, kind="module"):
  code = _RUN.format(hide=tuple(hide), argv=[target, *map(str, argv)], kind=kind, target=target)
  env = dict(os.environ, PYTHONPATH=str(REPO), XLA_FLAGS="--xla_force_host_platform_device_count=1")
  p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                     text=True, timeout=300)
  return p.returncode, p.stderr


@pytest.fixture
def photo(tmp_path):
  path = tmp_path / "photo.png"
  Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path)
  return path


@pytest.mark.parametrize("case", ["import_weights", "eval", "export", "upscale_onnx"])
def test_missing_optional_package_is_one_line_exit_2(tmp_path, photo, case):
  fake = tmp_path / "w.pth"
  fake.write_bytes(b"\x80\x02}q\x00.")  # a pickle; never read without torch
  onnx_file = tmp_path / "m.onnx"
  onnx_file.write_bytes(b"not read without onnxruntime")
  if case == "import_weights":
    rc, err = _run(["torch"], "memsr_jax.import_weights",
                   ["--model", "imdn", "--scale", "2", "--torch_weights", fake, "--out",
                    tmp_path / "out"])
    want = 'pip install "memsr_jax[torch]"'
  elif case == "eval":
    rc, err = _run(["torch"], "eval.py", [
        "--config", "configs/eval.py", "--config.model.name=imdn", "--config.scales=2",
        f"--config.model.torch_weights={fake}", f"--config.datasets={tmp_path}",
        f"--config.output_dir={tmp_path / 'eval'}"], kind="path")
    want = 'pip install "memsr_jax[torch]"'
  elif case == "export":
    rc, err = _run(["jax2onnx"], "memsr_jax.export",
                   ["--model", "plain_s", "--scale", "2", "--torch_weights", fake, "--output",
                    tmp_path / "m2.onnx"])
    want = 'pip install "memsr_jax[export]"'
  else:
    rc, err = _run(["onnxruntime"], "memsr_jax.upscale",
                   ["--onnx", onnx_file, "--input", photo, "--output", tmp_path / "up"])
    want = 'pip install "memsr_jax[export]"'
  assert rc == 2, err[-3000:]
  assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err[-3000:]
  assert err.startswith("error: ") and "needs the Python package" in err and want in err, err
