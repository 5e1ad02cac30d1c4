"""Models whose weights hold NaN (a diverged training run), as a checkpoint and as an ONNX file."""
import numpy as np

EDSR_KW = dict(scale=2, n_feats=4, n_resblocks=1)


def nan_checkpoint(path, bad: float = np.nan):
  """A model checkpoint of a tiny ×2 EDSR whose biases are all `bad` → its path."""
  import jax

  from memsr_jax import checkpoints
  from memsr_jax.models import registry
  model = registry.build_model("edsr_mini", **EDSR_KW)
  params = registry.random_params(model, 0)
  params = jax.tree_util.tree_map_with_path(
      lambda k, a: np.full_like(a, bad) if "bias" in jax.tree_util.keystr(k) else a, params)
  checkpoints.save_model_checkpoint(path, "edsr_mini", EDSR_KW, params, {"step": 9})
  return path


def nan_onnx(path, bad: float = np.nan):
  """A ×2 ONNX SR graph (onnx_graphs.sr_graph) whose first conv weight holds one `bad` value."""
  import onnx
  from onnx import numpy_helper
  import onnx_graphs
  model = onnx.load_from_string(onnx_graphs.sr_graph())
  w = model.graph.initializer[0]
  a = numpy_helper.to_array(w).copy()
  a.flat[0] = bad
  w.CopyFrom(numpy_helper.from_array(a, w.name))
  path.write_bytes(model.SerializeToString())
  return path
