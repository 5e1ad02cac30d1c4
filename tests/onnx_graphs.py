"""Tiny hand-built ONNX SR graphs (no exporter needed) with chosen, possibly lying, metadata."""
import numpy as np


def sr_graph(n_convs: int = 3, scale: int = 2, layout: str = "NHWC", meta: dict | None = None,
             input_type: str = "float", declared_layout: str | None = None,
             shuffle: bool = True, seed: int = 0) -> bytes:
  """`n_convs` 3×3 convs (receptive radius n_convs) then a depth-to-space ×scale, as ONNX bytes.

  `meta` overrides the memsr_jax.* metadata (values as strings); `declared_layout` the layout the
  graph's input is actually built for; `input_type` "int64" makes the input an int64 tensor;
  `shuffle=False` leaves out the depth-to-space (an output of the input's size: not SR).
  """
  from onnx import TensorProto
  from onnx import helper
  from onnx import numpy_helper
  rng = np.random.default_rng(seed)
  graph_layout = declared_layout or layout
  nodes, inits = [], []
  elem = TensorProto.INT64 if input_type == "int64" else TensorProto.FLOAT
  if graph_layout == "NHWC":
    in_shape = ["N", "H", "W", 3]
    nodes.append(helper.make_node("Transpose", ["lr"], ["x0"], perm=[0, 3, 1, 2]))
  else:
    in_shape = ["N", 3, "H", "W"]
    nodes.append(helper.make_node("Identity", ["lr"], ["x0"]))
  cur = "x0"
  if input_type == "int64":
    nodes.append(helper.make_node("Cast", [cur], ["xf"], to=TensorProto.FLOAT))
    cur = "xf"
  for i in range(n_convs):
    out_ch = 3 * scale * scale if (i == n_convs - 1 and shuffle) else 3
    w = rng.normal(0, 0.3, (out_ch, 3, 3, 3)).astype(np.float32)
    inits.append(numpy_helper.from_array(w, f"w{i}"))
    nodes.append(helper.make_node("Conv", [cur, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
    cur = f"c{i}"
  if shuffle:
    nodes.append(helper.make_node("DepthToSpace", [cur], ["d"], blocksize=scale, mode="CRD"))
    cur = "d"
  if graph_layout == "NHWC":
    nodes.append(helper.make_node("Transpose", [cur], ["sr"], perm=[0, 2, 3, 1]))
    out_shape = ["N", "H2", "W2", 3]
  else:
    nodes.append(helper.make_node("Identity", [cur], ["sr"]))
    out_shape = ["N", 3, "H2", "W2"]
  graph = helper.make_graph(nodes, "sr", [helper.make_tensor_value_info("lr", elem, in_shape)],
                            [helper.make_tensor_value_info("sr", TensorProto.FLOAT, out_shape)],
                            inits)
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
  model.ir_version = 8
  props = {"scale": str(scale), "layout": layout, "receptive_radius": str(n_convs)}
  props.update(meta or {})
  helper.set_model_props(model, {f"memsr_jax.{k}": v for k, v in props.items()})
  return model.SerializeToString()


def export_tiny_models(models: dict, folder):
  """Exports each zoo preset (name -> kwargs) with small random weights to folder/NAME.onnx."""
  # Imported here: the hand-built graphs above need neither jax nor the exporter.
  import jax

  from memsr_jax.deploy import onnx_export
  from memsr_jax.models import registry
  out = {}
  for name, kw in models.items():
    model = registry.build_model(name, **kw)
    params = jax.tree_util.tree_map(lambda a: a * 0.7,
                                    registry.random_params(model, bias_std=0.05))
    out[name] = folder / f"{name}.onnx"
    onnx_export.export_onnx(model, params, {"model": name}, out[name])
  return out
