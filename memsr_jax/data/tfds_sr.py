"""A TFDS builder for SR training pairs, prepared and read without TensorFlow.

One builder class, `SrPairs` (tfds name `sr_pairs`), with one config per (image set, scale), e.g.
`sr_pairs/t91_x2`. Each example holds the mod-cropped HR image, its LR image (made by
`memsr_jax.data.folders.load_pair`: the folder's own LR file when it has one, else MATLAB-exact
bicubic) and the image name. Data are written as array_record, so `tfds.data_source` /
`builder.as_data_source()` give random access with no TensorFlow:

- Images are stored as `tfds.features.Image` PNG bytes that *we* encode with Pillow (tfds only needs
  TensorFlow to encode NumPy arrays; bytes pass through untouched). PNG is lossless, so a prepared
  set round-trips bit-exactly.
- Examples are written in generation order (`disable_shuffling`), and the dataset's
  `metadata.json` lists names and LR sizes in that order, so a training pipeline can check patch
  sizes without decoding every image.

Layout under `out_dir` (a normal tfds `data_dir`):
`out_dir/sr_pairs/<set>_x<scale>/1.0.0/{dataset_info.json, features.json, metadata.json,
sr_pairs-train.array_record-00000-of-0000N}`.
"""
import io
import json
import os
import pathlib
import re
from typing import Any, Iterable, Optional

import numpy as np
from PIL import Image

from memsr_jax.data import folders

PathLike = str | os.PathLike

DATASET_NAME = "sr_pairs"
VERSION = "1.0.0"
SPLIT = "train"
SUPPORTED_SCALES = (2, 3, 4)

_MANUAL_INSTRUCTIONS = """\
SR sets cannot be downloaded here: pass `data_root=` (a folder holding DIV2K/, Flickr2K/, T91/, …)
or a folder path as the set name. `memsr_jax.data.folders.list_pairs` resolves names to files."""


def config_name(name: str, scale: int) -> str:
  """The tfds config name for an image set (a known name or a folder path) at one scale."""
  if not isinstance(scale, int) or scale < 2:
    raise ValueError(f"scale must be an integer ≥ 2 (usually 2, 3 or 4), got {scale!r}")
  base = os.path.basename(os.path.normpath(os.fspath(name))) or str(name)
  slug = re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_")
  if not slug:
    raise ValueError(f"cannot derive a dataset name from {name!r}; pass a name with letters/digits")
  return f"{slug}_x{scale}"


def dataset_dir(name: str, scale: int, out_dir: PathLike) -> pathlib.Path:
  """Where `prepare` writes `name` at `scale` (the tfds builder directory)."""
  return pathlib.Path(out_dir) / DATASET_NAME / config_name(name, scale) / VERSION


def encode_png(image: np.ndarray) -> bytes:
  """Lossless PNG bytes of an RGB uint8 image (Pillow; compress_level 1 favours write speed)."""
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"expected an RGB uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
  return buffer.getvalue()


def _tfds():
  # Lazy: tfds takes seconds to import and only prepared (tfds) sets need it.
  import tensorflow_datasets as tfds  # optional dependency
  return tfds


def _builder_class():
  """`SrPairs`, defined on first use so importing this module does not import tfds."""
  global _SR_PAIRS
  if _SR_PAIRS is not None:
    return _SR_PAIRS
  tfds = _tfds()
  from etils import epath  # tfds's dependency, lazy with it

  class SrPairsConfig(tfds.core.BuilderConfig):
    """One image set at one scale."""

    def __init__(self, *, dataset: str, scale: int):
      super().__init__(name=config_name(dataset, scale),
                       description=f"(HR, LR x{scale}) pairs of {dataset}")
      self.dataset = dataset
      self.scale = scale

  class SrPairs(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """(HR, LR) pairs of an SR image set, one config per set and scale."""

    VERSION = tfds.core.Version(VERSION)
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_INSTRUCTIONS
    # tfds derives this through `importlib_resources` (not installed) for classes in packages.
    code_path = epath.Path(__file__)

    def __init__(self, *, config, data_root: Optional[PathLike] = None, **kwargs):
      self._data_root = data_root
      super().__init__(config=config, **kwargs)

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self,
          description="Super-resolution (HR, LR) pairs; HR mod-cropped to the scale.",
          features=tfds.features.FeaturesDict({
              "hr": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
              "lr": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
              "name": tfds.features.Text(),
          }),
          disable_shuffling=True,  # record i is the i-th pair: metadata lists stay aligned
          metadata=tfds.core.MetadataDict(),
      )

    def _split_generators(self, dl_manager):
      del dl_manager  # nothing to download: pairs come from local folders
      cfg = self.builder_config
      pairs = list(folders.list_pairs(cfg.dataset, self._data_root, cfg.scale))
      if not pairs:
        raise ValueError(f"no images found for {cfg.dataset!r} under data_root={self._data_root!r}")
      return {SPLIT: self._generate_examples(pairs)}

    def _generate_examples(self, pairs):
      scale = self.builder_config.scale
      names, lr_sizes = [], []
      for i, pair in enumerate(pairs):
        lr, hr = folders.load_pair(pair, scale)
        if hr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
          raise ValueError(f"{pair.name}: HR {hr.shape[:2]} is not {scale}x LR {lr.shape[:2]}")
        names.append(pair.name)
        lr_sizes.append([int(lr.shape[0]), int(lr.shape[1])])
        yield i, {"hr": encode_png(hr), "lr": encode_png(lr), "name": pair.name}
      # Written into metadata.json when the split is finalised (after this generator ends).
      self.info.metadata.update({"scale": scale, "dataset": self.builder_config.dataset,
                                 "names": names, "lr_sizes": lr_sizes})

  _SR_PAIRS = (SrPairs, SrPairsConfig)
  return _SR_PAIRS


_SR_PAIRS = None


def make_builder(name: str, scale: int, out_dir: PathLike, data_root: Optional[PathLike] = None):
  """The tfds builder for `name` at `scale` writing to / reading from `out_dir`."""
  builder_cls, config_cls = _builder_class()
  return builder_cls(config=config_cls(dataset=name, scale=scale), data_root=data_root,
                     data_dir=os.fspath(out_dir))


def prepare(name: str, data_root: Optional[PathLike], scales: Iterable[int] = SUPPORTED_SCALES,
            out_dir: PathLike = "~/tensorflow_datasets") -> pathlib.Path:
  """Writes `name`'s (HR, LR×s) pairs for each scale as array_record; returns `out_dir`.

  `name` is anything `folders.list_pairs` accepts (`div2k`, `t91`, `bsd200`, `set5`, a folder path,
  `skimage_train`, …). Scales already prepared are left alone (delete their folder to redo them).
  Needs no TensorFlow.
  """
  tfds = _tfds()
  out_dir = pathlib.Path(out_dir).expanduser()
  scales = [scales] if isinstance(scales, int) else list(scales)
  for scale in scales:
    builder = make_builder(name, scale, out_dir, data_root)
    builder.download_and_prepare(
        file_format=tfds.core.file_adapters.FileFormat.ARRAY_RECORD,
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return out_dir


class SrSource:
  """Random access to a prepared set: `len(src)`, `src[i] -> {"hr", "lr", "name": str}`.

  Also `names`, `lr_sizes` ([(h, w)], from metadata, no decoding) and `scale`. Picklable, so grain
  worker processes can read it.
  """

  def __init__(self, builder_dir: PathLike):
    self.builder_dir = pathlib.Path(builder_dir)
    meta_path = self.builder_dir / "metadata.json"
    if not (self.builder_dir / "dataset_info.json").is_file() or not meta_path.is_file():
      raise FileNotFoundError(
          f"no prepared SR set at {self.builder_dir}; run "
          "memsr_jax.data.tfds_sr.prepare(name, data_root, scales, out_dir) first")
    meta = json.loads(meta_path.read_text())
    self.scale = int(meta["scale"])
    self.dataset = meta["dataset"]
    self.names = list(meta["names"])
    self.lr_sizes = [tuple(s) for s in meta["lr_sizes"]]
    self._source = None
    if len(self) != len(self.names):
      raise ValueError(f"{self.builder_dir}: {len(self)} records but metadata lists "
                       f"{len(self.names)} names; the folder is inconsistent, prepare it again")

  def _records(self):
    if self._source is None:
      tfds = _tfds()
      builder = tfds.builder_from_directory(os.fspath(self.builder_dir))
      # Images are decoded by us (Pillow) so tfds does not ask for OpenCV.
      skip = tfds.decode.SkipDecoding()
      self._source = builder.as_data_source(split=SPLIT, decoders={"hr": skip, "lr": skip})
    return self._source

  def __len__(self) -> int:
    return len(self._records())

  def __getitem__(self, index: int) -> dict[str, Any]:
    record = self._records()[index]
    name = record["name"]
    name = name.decode("utf-8") if isinstance(name, bytes) else str(name)
    if name != self.names[index]:
      raise ValueError(f"{self.builder_dir}: record {index} is {name!r}, metadata says "
                       f"{self.names[index]!r}; prepare the set again")
    return {"hr": _decode_png(record["hr"]), "lr": _decode_png(record["lr"]), "name": name}

  def __getstate__(self):
    return {k: v for k, v in self.__dict__.items() if k != "_source"} | {"_source": None}

  def __repr__(self) -> str:
    return (f"SrSource({self.dataset!r}, x{self.scale}, {len(self.names)} images, "
            f"{self.builder_dir})")


def _decode_png(data) -> np.ndarray:
  if isinstance(data, np.ndarray):
    data = data.item() if data.ndim == 0 else data.tobytes()
  with Image.open(io.BytesIO(data)) as img:
    image = np.asarray(img.convert("RGB") if img.mode != "RGB" else img)
  return np.ascontiguousarray(image, dtype=np.uint8)


def load_prepared_set(name: str, scale: int, out_dir: PathLike = "~/tensorflow_datasets"
                      ) -> SrSource:
  """Random-access source of a set prepared by `prepare` (reads array_record; no TensorFlow)."""
  return SrSource(dataset_dir(name, scale, pathlib.Path(out_dir).expanduser()))

