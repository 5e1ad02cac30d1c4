"""Dataset names → folders → (LR, HR) pairs, with clear errors for bad layouts and files."""
import numpy as np
import pytest

from memsr_jax.data import folders
from memsr_jax.image import bicubic
from memsr_jax.image import io as image_io
from memsr_jax.utils import cli


def _write(path, h=12, w=18, seed=0):
  img = np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)
  image_io.write_png(path, img)
  return img


@pytest.mark.parametrize("name,layout", [
    ("set5", "Set5"), ("set5", "set5/HR"), ("set5", "SET5/GTmod12"),
    ("set14", "benchmark/Set14/HR"),
    ("b100", "BSD100"), ("b100", "B100/HR"), ("urban100", "urban100"), ("manga109", "Manga109/HR"),
    ("div2k", "DIV2K/DIV2K_train_HR"), ("div2k", "DIV2K_train_HR"),
    ("div2k_val", "DIV2K/DIV2K_valid_HR"), ("flickr2k", "Flickr2K/Flickr2K_HR"),
    ("t91", "T91"), ("bsd200", "BSD200")])
def test_resolve_common_layouts(tmp_path, name, layout):
  _write(tmp_path / layout / "img.png")
  assert folders.resolve(name, str(tmp_path)) == tmp_path / layout
  assert folders.resolve(name.upper(), str(tmp_path)) == tmp_path / layout


def test_resolve_a_path_and_errors(tmp_path, monkeypatch):
  monkeypatch.delenv(folders.DATA_DIR_ENV, raising=False)  # a machine's own data root (GPU box)
  _write(tmp_path / "mine" / "a.png")
  assert folders.resolve(str(tmp_path / "mine"), None) == tmp_path / "mine"
  assert folders.resolve("mine", str(tmp_path)) == tmp_path / "mine"
  with pytest.raises(ValueError, match="unknown dataset 'sett5'.*set5, set14"):
    folders.resolve("sett5", str(tmp_path))
  with pytest.raises(FileNotFoundError, match="'set5' not found under data root.*memsr-fetch set5"
                     ".*data_dir"):
    folders.resolve("set5", str(tmp_path))
  monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no data root given: the per-user cache
  monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
  cache = tmp_path / "home" / ".cache" / "memsr_jax"
  with pytest.raises(FileNotFoundError, match=f"not found under data root {cache}"):
    folders.resolve("set5", None)
  _write(cache / "benchmark" / "Set5" / "HR" / "a.png")  # where `memsr-fetch set5` puts it
  assert folders.resolve("set5", None) == cache / "benchmark" / "Set5" / "HR"
  with pytest.raises(FileNotFoundError, match="does not exist"):
    folders.resolve(str(tmp_path / "missing"), None)


def test_empty_folder_is_a_clear_error(tmp_path):
  (tmp_path / "Set5").mkdir()
  (tmp_path / "Set5" / "readme.txt").write_text("x")
  with pytest.raises(FileNotFoundError, match="holds no images"):
    folders.resolve("set5", str(tmp_path))
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="no images"):
    folders.list_pairs(str(tmp_path / "empty"), None, 2)


def test_list_pairs_sorted_and_bicubic_lr(tmp_path):
  for i, name in enumerate(["b", "a", "c"]):
    _write(tmp_path / "Set5" / f"{name}.png", 13, 17, seed=i)
  pairs = folders.list_pairs("set5", str(tmp_path), 2)
  assert [p.name for p in pairs] == ["a", "b", "c"]
  assert all(p.lr_path is None for p in pairs)
  lr, hr = folders.load_pair(pairs[0], 2)
  full = image_io.read_image(tmp_path / "Set5" / "a.png")
  np.testing.assert_array_equal(hr, full[:12, :16])
  np.testing.assert_array_equal(lr, bicubic.bicubic_downscale(full[:12, :16], 2))


def test_div2k_layout_uses_shipped_lr(tmp_path):
  root = tmp_path / "DIV2K"
  hr = _write(root / "DIV2K_train_HR" / "0001.png", 12, 18)
  lr_file = _write(root / "DIV2K_train_LR_bicubic" / "X3" / "0001x3.png", 4, 6, seed=5)
  _write(root / "DIV2K_train_HR" / "0002.png", 12, 18, seed=2)  # no LR file: bicubic
  pairs = folders.list_pairs("div2k", str(tmp_path), 3)
  assert pairs[0].lr_path == root / "DIV2K_train_LR_bicubic" / "X3" / "0001x3.png"
  assert pairs[1].lr_path is None
  lr, got_hr = folders.load_pair(pairs[0], 3)
  np.testing.assert_array_equal(lr, lr_file)
  np.testing.assert_array_equal(got_hr, hr)
  assert folders.list_pairs("div2k", str(tmp_path), 2)[0].lr_path is None  # no X2 folder
  assert folders.list_pairs("div2k", str(tmp_path), 3, use_lr_files=False)[0].lr_path is None


def test_wrong_size_lr_file_is_a_clear_error(tmp_path):
  _write(tmp_path / "Set5" / "HR" / "x.png", 12, 18)
  _write(tmp_path / "Set5" / "LR_bicubic" / "X2" / "xx2.png", 6, 8)
  (pair,) = folders.list_pairs("set5", str(tmp_path), 2)
  with pytest.raises(ValueError, match="xx2.png is 6x8.*needs 6x9 at ×2"):
    folders.load_pair(pair, 2)


def test_df2k_combines_div2k_and_flickr2k(tmp_path):
  _write(tmp_path / "DIV2K_train_HR" / "0001.png")
  _write(tmp_path / "Flickr2K" / "Flickr2K_HR" / "000001.png")
  pairs = folders.list_pairs("df2k", str(tmp_path), 2)
  assert [p.name for p in pairs] == ["000001", "0001"]
  assert {p.hr_path.parent.name for p in pairs} == {"DIV2K_train_HR", "Flickr2K_HR"}
  with pytest.raises(FileNotFoundError, match="use list_pairs"):
    folders.resolve("df2k", str(tmp_path))


def test_image_smaller_than_scale(tmp_path):
  _write(tmp_path / "tiny" / "t.png", 2, 9)
  (pair,) = folders.list_pairs(str(tmp_path / "tiny"), None, 3)
  with pytest.raises(ValueError, match="smaller than the scale 3"):
    folders.load_pair(pair, 3)


def test_truncated_and_non_image_files_fail_on_load(tmp_path):
  _write(tmp_path / "d" / "good.png")
  data = (tmp_path / "d" / "good.png").read_bytes()
  (tmp_path / "d" / "cut.png").write_bytes(data[:60])
  (tmp_path / "d" / "text.jpg").write_text("hello")
  (tmp_path / "d" / "notes.txt").write_text("ignored: not an image extension")
  pairs = folders.list_pairs(str(tmp_path / "d"), None, 2)
  assert [p.name for p in pairs] == ["cut", "good", "text"]
  for pair in pairs:
    if pair.name == "good":
      folders.load_pair(pair, 2)
    else:
      with pytest.raises(image_io.ImageReadError, match=pair.name):
        folders.load_pair(pair, 2)


@pytest.mark.parametrize("name", ["skimage_train", "skimage_val"])
def test_skimage_sets_are_colour_photos(name):
  pairs = folders.list_pairs(name, None, 4)
  assert len(pairs) >= 2
  for pair in pairs:
    img = image_io.read_image(pair.hr_path)
    assert min(img.shape[:2]) >= 256
    assert np.abs(img[..., 0].astype(int) - img[..., 2]).mean() > 1  # not grey
  train = {p.name for p in folders.list_pairs("skimage_train", None, 4)}
  val = {p.name for p in folders.list_pairs("skimage_val", None, 4)}
  assert not train & val


def test_shared_set5_resolves(shared_dir):
  pairs = folders.list_pairs("set5", str(shared_dir / "datasets"), 4)
  assert [p.name for p in pairs] == ["baby", "bird", "butterfly", "head", "woman"]
  lr, hr = folders.load_pair(pairs[0], 4)
  assert hr.shape == (512, 512, 3) and lr.shape == (128, 128, 3)


def test_errors_name_the_data_root_setting_that_exists(tmp_path, monkeypatch):
  monkeypatch.delenv(folders.DATA_DIR_ENV, raising=False)
  for root in (None, str(tmp_path)):
    with pytest.raises(FileNotFoundError) as e:
      folders.resolve("set5", root)
    assert "--config.data.root" in str(e.value) and "eval.py's --config.data_dir" in str(e.value)
    with pytest.raises(FileNotFoundError) as e:
      folders.resolve("set5", root, root_flags="--data_dir")
    assert "set --data_dir to the folder" in str(e.value) and "config." not in str(e.value)
  from memsr_jax.experiments import runner
  with pytest.raises(cli.UserError) as e:
    runner.check_data(str(tmp_path))
  assert "config." not in str(e.value) and "--data_dir" in str(e.value)
