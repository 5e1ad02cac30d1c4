"""tfds builder for SR pairs: prepare → array_record → read back bit-exactly, without TensorFlow."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from memsr_jax.data import folders
from memsr_jax.data import pipeline
from memsr_jax.data import tfds_sr
from memsr_jax.image.io import write_png

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> pathlib.Path:
  """3 tiny random images; sizes not divisible by 2 or 3, so mod-crop matters."""
  folder = tmp_path_factory.mktemp("sr_imgs") / "tiny_set"
  rng = np.random.default_rng(0)
  for k, (h, w) in enumerate([(31, 40), (25, 35), (44, 29)]):
    write_png(folder / f"img{k}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
  return folder


@pytest.fixture(scope="module")
def prepared(image_folder, tmp_path_factory) -> pathlib.Path:
  out = tmp_path_factory.mktemp("tfds")
  assert tfds_sr.prepare(str(image_folder), None, [2, 3], out) == out
  return out


def test_config_names():
  assert tfds_sr.config_name("div2k", 4) == "div2k_x4"
  assert tfds_sr.config_name("/data/My Set-1/", 2) == "my_set_1_x2"
  with pytest.raises(ValueError, match="scale"):
    tfds_sr.config_name("t91", 1)


def test_layout_is_tfds(prepared, image_folder):
  d = tfds_sr.dataset_dir(str(image_folder), 3, prepared)
  assert d == prepared / "sr_pairs" / "tiny_set_x3" / "1.0.0"
  assert list(d.glob("sr_pairs-train.array_record-*"))
  info = json.loads((d / "dataset_info.json").read_text())
  assert info["name"] == "sr_pairs" and info["configName"] == "tiny_set_x3"
  assert info["splits"][0]["shardLengths"] == ["3"]


@pytest.mark.parametrize("scale", [2, 3])
def test_round_trip_is_bit_exact(prepared, image_folder, scale):
  source = tfds_sr.load_prepared_set(str(image_folder), scale, prepared)
  pairs = folders.list_pairs(str(image_folder), None, scale)
  assert len(source) == len(pairs) == 3 and source.scale == scale
  assert source.names == [p.name for p in pairs]
  for i, pair in enumerate(pairs):
    lr, hr = folders.load_pair(pair, scale)
    item = source[i]
    assert item["name"] == pair.name
    assert item["hr"].dtype == np.uint8 and item["lr"].dtype == np.uint8
    np.testing.assert_array_equal(item["hr"], hr)
    np.testing.assert_array_equal(item["lr"], lr)
    assert source.lr_sizes[i] == lr.shape[:2]


def test_pipeline_from_tfds_equals_pipeline_from_folder(prepared, image_folder):
  kw = dict(data_root=None, scale=2, lr_patch=8, batch_size=3, seed=1)
  from_tfds = pipeline.make_train_loader(str(image_folder), source=str(prepared), **kw)
  from_source = pipeline.make_train_loader(
      str(image_folder), source=tfds_sr.load_prepared_set(str(image_folder), 2, prepared),
      cache=False, **kw)
  from_folder = pipeline.make_train_loader(str(image_folder), **kw)
  for _ in range(2):
    a, b, c = next(from_tfds), next(from_source), next(from_folder)
    for key in ("lr", "hr"):
      np.testing.assert_array_equal(a[key], c[key])
      np.testing.assert_array_equal(b[key], c[key])


def test_missing_prepared_set_says_how_to_prepare(tmp_path):
  with pytest.raises(FileNotFoundError, match="prepare"):
    tfds_sr.load_prepared_set("t91", 2, tmp_path)


def test_prepare_and_read_without_tensorflow(image_folder, tmp_path):
  # A fresh interpreter: nothing else in the test session can have imported TensorFlow there.
  code = f"""
import sys
import tensorflow_datasets as tfds
from memsr_jax.data import tfds_sr
out = tfds_sr.prepare({str(image_folder)!r}, None, [2], {str(tmp_path)!r})
src = tfds_sr.load_prepared_set({str(image_folder)!r}, 2, out)
assert len(src) == 3 and src[2]["hr"].shape == (44, 28, 3), src[2]["hr"].shape
raw = tfds.data_source("sr_pairs/tiny_set_x2", data_dir=out, split="train")
assert len(raw) == 3
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
print("OK")
"""
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stderr[-3000:]
