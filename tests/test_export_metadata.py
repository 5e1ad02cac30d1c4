"""Exported ONNX files: mode 0644, and metadata that names the weights without a local path."""
import hashlib
import json
import stat

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("jax2onnx")
import onnx  # noqa: E402

from memsr_jax import checkpoints  # noqa: E402
from memsr_jax import export  # noqa: E402
from memsr_jax.deploy import onnx_export  # noqa: E402
from memsr_jax.models import registry  # noqa: E402


def test_export_is_0644_and_records_name_and_hashes_not_paths(tmp_path, capsys):
  kw = dict(scale=2, n_feats=8, n_resblocks=1)
  model = registry.build_model("edsr_mini", **kw)
  params = registry.random_params(model, 0)
  ckpt = tmp_path / "deep" / "folder" / "my_model"
  checkpoints.save_model_checkpoint(ckpt, "edsr_mini", kw, params, {"step": 5})
  out = tmp_path / "m.onnx"
  assert export.main(["--checkpoint", str(ckpt), "--output", str(out)]) == 0
  capsys.readouterr()
  assert stat.S_IMODE(out.stat().st_mode) == 0o644
  props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
  assert props["memsr_jax.source"] == "my_model"
  assert props["memsr_jax.params_sha256"] == onnx_export.params_sha256(params)
  assert not any(str(tmp_path) in v or "/deep/" in v for v in props.values()), props


def test_source_fields_of_a_weights_file_random_weights_and_params_digest(tmp_path):
  w = tmp_path / "sub" / "IMDN_x2.pth"
  w.parent.mkdir()
  w.write_bytes(b"weights bytes")
  assert onnx_export.source_fields(str(w)) == {
      "memsr_jax.source": "IMDN_x2.pth",
      "memsr_jax.source_sha256": hashlib.sha256(b"weights bytes").hexdigest()}
  assert onnx_export.source_fields("random (seed 0)") == {"memsr_jax.source": "random (seed 0)"}
  a = {"conv": {"kernel": [[1.0, 2.0]], "bias": [0.0]}}
  b = json.loads(json.dumps(a))
  b["conv"]["bias"] = [1e-7]
  to_np = lambda t: {"conv": {k: np.asarray(v, np.float32) for k, v in t["conv"].items()}}
  assert onnx_export.params_sha256(to_np(a)) == onnx_export.params_sha256(to_np(a))
  assert onnx_export.params_sha256(to_np(a)) != onnx_export.params_sha256(to_np(b))
