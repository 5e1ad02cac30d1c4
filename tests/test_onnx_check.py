"""ONNX models are checked once, up front: metadata parses, the graph fits it, and the stated
receptive radius is not smaller than the graph's (else "exact" tiles would silently differ)."""
import pytest

ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime not installed")
pytest.importorskip("onnx", reason="onnx not installed")

import onnx_graphs  # noqa: E402

from memsr_jax.deploy import onnx_check  # noqa: E402


def _session(data: bytes):
  return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def _meta(data: bytes) -> dict:
  props = _session(data).get_modelmeta().custom_metadata_map
  return {k[len("memsr_jax."):]: v for k, v in props.items() if k.startswith("memsr_jax.")}


def _nhwc_run(sess):
  return lambda x: sess.run(None, {"lr": x})[0]


@pytest.mark.parametrize("field,value,fragment", [
    ("scale", "0", "memsr_jax.scale='0' is not an integer >= 1"),
    ("scale", "abc", "memsr_jax.scale='abc'"),
    ("scale", "2.5", "memsr_jax.scale='2.5'"),
    ("layout", "NWHC", "memsr_jax.layout='NWHC'"),
    ("receptive_radius", "-3", "memsr_jax.receptive_radius='-3' is not an integer >= 0"),
    ("receptive_radius", "x", "memsr_jax.receptive_radius='x'"),
])
def test_bad_metadata_names_the_file_and_field(field, value, fragment):
  meta = _meta(onnx_graphs.sr_graph(meta={field: value}))
  with pytest.raises(onnx_check.OnnxModelError, match=fragment) as e:
    onnx_check.parse_metadata(meta, "m.onnx")
  assert str(e.value).startswith("m.onnx")


def test_good_metadata_parses():
  meta = _meta(onnx_graphs.sr_graph(n_convs=3, scale=2))
  assert onnx_check.parse_metadata(meta, "m.onnx") == (2, "NHWC", 3)
  meta["receptive_radius"] = ""
  assert onnx_check.parse_metadata(meta, "m.onnx") == (2, "NHWC", None)


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(input_type="int64"), r"is tensor\(int64\), not float32"),
    (dict(layout="NHWC", declared_layout="NCHW"), "layout=NHWC does not fit the graph"),
    (dict(layout="NCHW", declared_layout="NHWC"), "layout=NCHW does not fit the graph"),
    (dict(shuffle=False), "is not a ×2 super-resolution model"),
    (dict(meta={"scale": "3"}), "is not a ×3 super-resolution model"),
])
def test_graphs_that_do_not_fit_their_metadata_are_refused(kwargs, fragment):
  data = onnx_graphs.sr_graph(scale=2, **kwargs)
  scale, layout, _ = onnx_check.parse_metadata(_meta(data), "m.onnx")
  with pytest.raises(onnx_check.OnnxModelError, match=fragment):
    onnx_check.check_graph(_session(data), "m.onnx", scale, layout)


def test_a_fitting_graph_passes_in_both_layouts():
  for layout in ("NHWC", "NCHW"):
    data = onnx_graphs.sr_graph(scale=3, layout=layout)
    onnx_check.check_graph(_session(data), "m.onnx", 3, layout)


@pytest.mark.parametrize("n_convs,scale", [(1, 2), (3, 2), (4, 3)])
def test_the_measured_spread_is_the_graph_radius(n_convs, scale):
  sess = _session(onnx_graphs.sr_graph(n_convs=n_convs, scale=scale))
  assert onnx_check.measured_spread(_nhwc_run(sess), scale, n_convs) == n_convs
  assert onnx_check.measured_spread(_nhwc_run(sess), scale, 0) == min(n_convs, 6)


def test_a_radius_that_lies_is_refused_and_the_truth_passes():
  sess = _session(onnx_graphs.sr_graph(n_convs=3, scale=2, meta={"receptive_radius": "0"}))
  with pytest.raises(onnx_check.OnnxModelError,
                     match=r"m.onnx: metadata memsr_jax.receptive_radius=0 is wrong.* 3 LR"):
    onnx_check.check_receptive_radius(_nhwc_run(sess), "m.onnx", 2, 0)
  with pytest.raises(onnx_check.OnnxModelError, match="receptive_radius=2 is wrong"):
    onnx_check.check_receptive_radius(_nhwc_run(sess), "m.onnx", 2, 2)
  onnx_check.check_receptive_radius(_nhwc_run(sess), "m.onnx", 2, 3)
  onnx_check.check_receptive_radius(_nhwc_run(sess), "m.onnx", 2, 5)  # too large: only slower
