"""Training pipeline: determinism, alignment, augmentation, resume, sharding, size checks."""
import json

import numpy as np
import pytest

from memsr_jax.data import pipeline

FLIPS = [(h, v, t) for h in (0, 1) for v in (0, 1) for t in (0, 1)]


def undo_flips(a, hflip, vflip, transpose):
  """Inverse of RandomPatch's augmentation (h-flip, then v-flip, then transpose)."""
  a = a.transpose(1, 0, 2) if transpose else a
  a = a[::-1] if vflip else a
  return a[:, ::-1] if hflip else a


def coordinate_source(sizes, scale):
  """LR pixel (y, x) of image k holds (y, x, k); HR is LR upsampled by pixel repetition, so an HR
  patch is aligned with its LR patch exactly when it equals the LR patch repeated s×s."""
  items = []
  for k, (h, w) in enumerate(sizes):
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    lr = np.stack([yy, xx, np.full_like(yy, k)], -1).astype(np.uint8)
    hr = lr.repeat(scale, 0).repeat(scale, 1)
    items.append({"lr": lr, "hr": hr, "name": f"img{k}"})
  return items


SIZES = [(20, 24), (17, 30), (26, 19), (22, 22), (18, 25)]


def loader(seed=0, scale=2, patch=6, batch=4, source=None, **kw):
  source = coordinate_source(SIZES, scale) if source is None else source
  return pipeline.make_train_loader("synthetic", None, scale, patch, batch, seed, source=source,
                                    **kw)


def take(it, n):
  return [next(it) for _ in range(n)]


def assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["lr"], y["lr"])
    np.testing.assert_array_equal(x["hr"], y["hr"])


def test_batch_shapes_and_dtypes():
  batch = next(loader(scale=3, patch=5, batch=3))
  assert set(batch) == {"lr", "hr"}
  assert batch["lr"].shape == (3, 5, 5, 3) and batch["lr"].dtype == np.uint8
  assert batch["hr"].shape == (3, 15, 15, 3) and batch["hr"].dtype == np.uint8


def test_same_seed_same_batches_other_seed_differs():
  a, b = take(loader(seed=7), 3), take(loader(seed=7), 3)
  assert_batches_equal(a, b)
  c = take(loader(seed=8), 3)
  assert any(not np.array_equal(x["lr"], y["lr"]) for x, y in zip(a, c))


def test_batches_do_not_depend_on_threads():
  a = take(loader(seed=3, num_threads=0), 4)
  b = take(loader(seed=3, num_threads=3), 4)
  assert_batches_equal(a, b)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_hr_patch_aligned_with_lr_patch(scale):
  for batch in take(loader(seed=1, scale=scale, patch=5, batch=8), 4):
    expected_hr = batch["lr"].repeat(scale, 1).repeat(scale, 2)
    np.testing.assert_array_equal(batch["hr"], expected_hr)


def locate(patch, image):
  """[(flips, y0, x0)] such that patch == flips(image[y0:y0+p, x0:x0+p])."""
  found = []
  for key in FLIPS:
    original = undo_flips(patch, *key)
    y0, x0 = int(original[0, 0, 0]), int(original[0, 0, 1])
    crop = image[y0:y0 + patch.shape[0], x0:x0 + patch.shape[1]]
    if np.array_equal(crop, original):
      found.append((key, y0, x0))
  return found


def test_lr_patches_are_crops_under_all_eight_flips_and_transposes():
  source = coordinate_source(SIZES, 2)
  seen = set()
  for batch in take(loader(seed=2, source=source, batch=16), 8):
    for patch in batch["lr"]:
      found = locate(patch, source[int(patch[0, 0, 2])]["lr"])
      assert len(found) == 1, "an LR patch is not a flipped/transposed crop of its image"
      seen.add(found[0][0])
  assert seen == set(FLIPS), f"only these (hflip, vflip, transpose) variants occurred: {seen}"


def test_patch_positions_reach_every_offset():
  source = coordinate_source([(8, 10)], 2)  # patch 6: y0 in 0..2, x0 in 0..4
  positions = set()
  for batch in take(loader(seed=0, source=source, batch=32), 4):
    for patch in batch["lr"]:
      (_, y0, x0), = locate(patch, source[0]["lr"])
      positions.add((y0, x0))
  assert positions == {(y, x) for y in range(3) for x in range(5)}


def test_every_image_once_per_epoch():
  source = coordinate_source(SIZES, 2)
  it = loader(seed=4, source=source, batch=5)
  assert it.examples_per_epoch == len(SIZES) and it.steps_per_epoch == 1
  epochs = [next(it)["lr"][:, 0, 0, 2].tolist() for _ in range(3)]
  for ids in epochs:
    assert sorted(ids) == list(range(len(SIZES)))
  assert epochs[0] != epochs[1] or epochs[1] != epochs[2]  # reshuffled (1/120² chance to fail)


def test_state_round_trip_resumes_exactly():
  it = loader(seed=5)
  take(it, 2)
  state = json.loads(json.dumps(it.get_state()))
  expected = take(it, 2)
  fresh = loader(seed=5)
  fresh.set_state(state)
  assert_batches_equal(take(fresh, 2), expected)
  assert fresh.get_state()["batches"] == 4


def test_set_state_rejects_a_different_stream():
  state = loader(seed=5).get_state()
  with pytest.raises(ValueError, match="seed: saved 5, now 6"):
    loader(seed=6).set_state(state)


def test_process_shards_split_the_global_stream():
  single = take(loader(seed=9, batch=8), 3)
  shards = [take(loader(seed=9, batch=4, process_index=p, process_count=2), 3) for p in (0, 1)]
  for k in range(3):
    for p in (0, 1):
      np.testing.assert_array_equal(shards[p][k]["lr"], single[k]["lr"][p::2])
      np.testing.assert_array_equal(shards[p][k]["hr"], single[k]["hr"][p::2])
    assert not np.array_equal(shards[0][k]["lr"], shards[1][k]["lr"])
  with pytest.raises(ValueError, match="process_index"):
    loader(process_index=2, process_count=2)


def test_state_restores_on_every_host_and_other_host_counts():
  single = loader(seed=9, batch=8)
  take(single, 2)
  state = single.get_state()
  expected = next(single)
  for p in (0, 1):  # both hosts restore the state one host saved
    shard = loader(seed=9, batch=4, process_index=p, process_count=2)
    shard.set_state(state)
    np.testing.assert_array_equal(next(shard)["hr"], expected["hr"][p::2])
  with pytest.raises(ValueError, match="global_batch_size: saved 8, now 4"):
    loader(seed=9, batch=4).set_state(state)


def test_too_small_images_error_names_them():
  sizes = SIZES + [(5, 40), (40, 4)]
  source = coordinate_source(sizes, 2)
  source[5]["name"], source[6]["name"] = "tiny_a", "tiny_b"
  with pytest.raises(ValueError, match=r"2 of 7 images.*12x12 pixels.*tiny_a \(LR 5x40\).*tiny_b"):
    loader(source=source)
  with pytest.warns(UserWarning, match="tiny_a"):
    it = loader(source=source, skip_small=True)
  assert it.examples_per_epoch == len(SIZES)
  assert np.all(next(it)["lr"][..., 2] < len(SIZES))


def test_hr_that_is_not_scale_times_lr_is_an_error():
  source = coordinate_source(SIZES, 2)
  source[0]["hr"] = source[0]["hr"][:-1]
  it = loader(source=source, batch=len(SIZES))
  with pytest.raises(ValueError, match=r"img0.*is not 2x its LR"):
    next(it)


def test_folder_source_cached_and_uncached_agree(tmp_path):
  from memsr_jax.image.io import write_png
  rng = np.random.default_rng(0)
  for k, (h, w) in enumerate([(24, 30), (26, 22), (32, 32)]):
    write_png(tmp_path / f"im{k}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
  kw = dict(data_root=None, scale=2, lr_patch=6, batch_size=3, seed=0)
  cached = take(pipeline.make_train_loader(str(tmp_path), **kw), 2)
  uncached = take(pipeline.make_train_loader(str(tmp_path), cache=False, **kw), 2)
  assert_batches_equal(cached, uncached)
  with pytest.raises(ValueError, match=r"im1 \(LR 13x11\)"):
    pipeline.make_train_loader(str(tmp_path), **(kw | {"lr_patch": 12}), cache=False)


def _png_header_only(path, width, height):
  """A PNG with a valid IHDR of the given size and no pixel data."""
  import struct
  import zlib
  body = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
  path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + body +
                   struct.pack(">I", zlib.crc32(b"IHDR" + body)))


@pytest.mark.parametrize("bad", ["empty", "over_limit"])
def test_an_unreadable_training_image_is_one_error_naming_it(tmp_path, bad):
  from memsr_jax.image.io import ImageReadError
  from memsr_jax.image.io import write_png
  write_png(tmp_path / "ok.png", np.zeros((24, 24, 3), np.uint8))
  if bad == "empty":
    (tmp_path / "bad.png").write_bytes(b"")
  else:
    _png_header_only(tmp_path / "bad.png", 70000, 70000)  # 4.9 GP, over image.io.MAX_PIXELS
  kw = dict(data_root=None, scale=2, lr_patch=6, batch_size=2, seed=0)
  for cache in (True, False):
    with pytest.raises(ImageReadError, match="bad.png") as e:
      pipeline.make_train_loader(str(tmp_path), cache=cache, **kw)
    assert "\n" not in str(e.value)


def test_training_image_sizes_are_read_past_pillows_bomb_limit(tmp_path, monkeypatch):
  from PIL import Image

  from memsr_jax.image.io import write_png
  write_png(tmp_path / "a.png", np.zeros((24, 30, 3), np.uint8))
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # 720 px > 2 × 50: Pillow alone refuses
  source = pipeline.FolderSource(str(tmp_path), None, 2)
  assert source.lr_sizes == [(12, 15)]


def test_t91_reports_its_small_image(shared_dir):
  # cache=False checks sizes from file headers, so this does not decode T91.
  with pytest.raises(ValueError, match=r"t20 \(LR 39x39\)"):
    pipeline.make_train_loader("t91", str(shared_dir / "datasets"), 2, 48, 16, 0, cache=False)


@pytest.mark.slow
def test_worker_processes_give_the_same_batches():
  it = loader(seed=3, num_workers=2)
  try:
    with_workers = take(it, 4)
  finally:
    it.close()
  assert_batches_equal(with_workers, take(loader(seed=3), 4))
  assert type(with_workers[0]["lr"]) is np.ndarray


def test_augment_false_gives_plain_crops():
  source = coordinate_source(SIZES, 2)
  for patch in next(loader(seed=2, source=source, batch=32, augment=False))["lr"]:
    assert [key for key, _, _ in locate(patch, source[int(patch[0, 0, 2])]["lr"])] == [(0, 0, 0)]


def test_repeat_per_image_makes_longer_epochs():
  source = coordinate_source(SIZES, 2)
  it = loader(seed=4, source=source, batch=5, repeat_per_image=3)
  assert it.examples_per_epoch == 3 * len(SIZES) and it.steps_per_epoch == 3
  ids = np.concatenate([next(it)["lr"][:, 0, 0, 2] for _ in range(3)])
  assert np.bincount(ids, minlength=len(SIZES)).tolist() == [3] * len(SIZES)


def test_plus_joins_datasets(tmp_path):
  from memsr_jax.image.io import write_png
  rng = np.random.default_rng(0)
  for folder, n in (("a", 2), ("b", 3)):
    for k in range(n):
      write_png(tmp_path / folder / f"{folder}{k}.png",
                rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
  it = pipeline.make_train_loader(f"{tmp_path / 'a'}+{tmp_path / 'b'}", None, 2, 6, 5, 0,
                                  cache=False)
  assert it.examples_per_epoch == 5
  with pytest.raises(ValueError, match=r"b2 \(LR 10x12\)"):
    pipeline.make_train_loader(f"{tmp_path / 'a'}+{tmp_path / 'b'}", None, 2, 11, 5, 0)
