"""Dataset names → folders of HR images (and LR images where a dataset ships them).

A dataset is named (`set5`, `div2k`, …) or given as a folder path. Named datasets are looked up
under a data root, accepting the usual folder spellings case-insensitively (`Set5`, `Set5/HR`,
`Set5/GTmod12`, `BSD100`, `DIV2K/DIV2K_train_HR`, EDSR's `benchmark/Set5/HR`, …).

LR images come from the dataset when it ships MATLAB-made bicubic LR in one of the standard
layouts, else `load_pair` makes them from the mod-cropped HR with `bicubic_downscale`:
- DIV2K / Flickr2K: `<X>_HR/0001.png` ↔ `<X>_LR_bicubic/X2/0001x2.png`;
- EDSR benchmark: `<set>/HR/baby.png` ↔ `<set>/LR_bicubic/X2/babyx2.png`.

Two sets need no download: `skimage_train` and `skimage_val` are colour photos bundled with
scikit-image (for smoke runs and tests only; they are not an SR benchmark).
"""
import dataclasses
import os
import pathlib
from typing import Optional, Sequence

import numpy as np

from memsr_jax.data import home
from memsr_jax.data.sources import SOURCES
from memsr_jax.image.bicubic import bicubic_downscale
from memsr_jax.image.io import IMAGE_EXTENSIONS
from memsr_jax.image.io import ImageReadError
from memsr_jax.image.io import mod_crop
from memsr_jax.image.io import read_image
from memsr_jax.utils import cli

DATA_DIR_ENV = home.ENV
# Where each command takes the data root from (named in the errors of `resolve`).
ROOT_FLAGS = (f"train.py's --config.data.root (--config.val.root for validation), eval.py's "
              f"--config.data_dir, or ${DATA_DIR_ENV}")

# name -> folder spellings tried under the data root (and under <root>/benchmark, <root>/datasets);
# each spelling is tried as is and with /HR, /GTmod12, /original appended.
_ALIASES: dict[str, tuple[str, ...]] = {
  "set5": ("Set5",),
  "set14": ("Set14",),
  "b100": ("B100", "BSD100", "BSDS100"),
  "urban100": ("Urban100",),
  "manga109": ("Manga109",),
  "div2k_val": ("DIV2K/DIV2K_valid_HR", "DIV2K_valid_HR", "DIV2K/valid/HR", "DIV2K_val"),
  "div2k": ("DIV2K/DIV2K_train_HR", "DIV2K_train_HR", "DIV2K/train/HR", "DIV2K_train"),
  "flickr2k": ("Flickr2K/Flickr2K_HR", "Flickr2K_HR", "Flickr2K"),
  "t91": ("T91", "91-image", "91images"),
  "bsd200": ("BSD200", "BSDS200"),
  # A merged DF2K folder when the user has one; otherwise df2k is div2k + flickr2k.
  "df2k": ("DF2K/DF2K_HR", "DF2K_HR", "DF2K"),
}
_COMPOSITES: dict[str, tuple[str, ...]] = {"df2k": ("div2k", "flickr2k")}
_HR_SUBFOLDERS = ("HR", "GTmod12", "original", "")
_SEARCH_PREFIXES = ("", "benchmark", "datasets")

# Colour photos in skimage/data (checked to be bundled with scikit-image 0.26, no download).
# The two motorcycle views are a stereo pair, so both stay on the training side.
_SKIMAGE_SETS: dict[str, tuple[str, ...]] = {
  "skimage_train": ("astronaut.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png",
                    "motorcycle_right.png", "retina.jpg", "rocket.jpg"),
  "skimage_val": ("chelsea.png", "coffee.png"),
}

BENCHMARKS = ("set5", "set14", "b100", "urban100", "manga109", "div2k_val")
TRAINING_SETS = ("div2k", "flickr2k", "df2k", "t91", "bsd200")
KNOWN_NAMES = BENCHMARKS + TRAINING_SETS + tuple(_SKIMAGE_SETS)


class DatasetNotFoundError(cli.UserError, FileNotFoundError):
  """A dataset's folder or images are not where they were looked for."""


class DatasetError(cli.UserError, ValueError):
  """A dataset name nobody knows, or images that do not fit the protocol (size, names)."""


@dataclasses.dataclass(frozen=True)
class ImagePair:
  name: str
  hr_path: pathlib.Path
  lr_path: Optional[pathlib.Path] = None


def _is_image(path: pathlib.Path) -> bool:
  return (path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
          and not path.name.startswith("."))


def _image_files(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(p for p in folder.iterdir() if _is_image(p))


def _child_ci(folder: pathlib.Path, name: str) -> Optional[pathlib.Path]:
  """The sub-folder of `folder` called `name`, ignoring case (exact spelling preferred)."""
  exact = folder / name
  if exact.is_dir():
    return exact
  if not folder.is_dir():
    return None
  for child in sorted(folder.iterdir()):
    if child.is_dir() and child.name.lower() == name.lower():
      return child
  return None


def _find_ci(root: pathlib.Path, relative: str) -> Optional[pathlib.Path]:
  folder = root
  for part in pathlib.PurePosixPath(relative).parts:
    folder = _child_ci(folder, part)
    if folder is None:
      return None
  return folder


def _skimage_dir() -> pathlib.Path:
  # Lazy: scikit-image is slow to import and only the bundled skimage_* sets need it.
  import skimage.data  # slow import, only for the skimage_val set
  return pathlib.Path(skimage.data.__file__).parent


def _data_root(data_root: Optional[str]) -> pathlib.Path:
  """data_root when given, else the data home ($MEMSR_DATA_DIR or the per-user cache)."""
  return pathlib.Path(data_root).expanduser() if data_root else home.data_home()


def _fetch_hint(name: str) -> str:
  return f"; {home.fetch_hint(name)}" if name in SOURCES and SOURCES[name].remotes else ""


def _looks_like_path(name: str) -> bool:
  return os.sep in name or "/" in name or name.startswith((".", "~"))


def _resolve_named(name: str, root: pathlib.Path,
                   root_flags: str = ROOT_FLAGS) -> pathlib.Path:
  tried, empty = [], []
  for prefix in _SEARCH_PREFIXES:
    base_root = _find_ci(root, prefix) if prefix else root
    if base_root is None:
      continue
    for alias in _ALIASES[name]:
      for sub in _HR_SUBFOLDERS:
        rel = f"{alias}/{sub}" if sub else alias
        tried.append(str(base_root / rel))
        folder = _find_ci(base_root, rel)
        if folder is None:
          continue
        if _image_files(folder):
          return folder
        empty.append(str(folder))
  if empty:
    raise DatasetNotFoundError(f"dataset {name!r}: found {empty[0]} but it holds no images "
                               f"({', '.join(IMAGE_EXTENSIONS)}); put the HR images there")
  raise DatasetNotFoundError(
      f"dataset {name!r} not found under data root {root}{_fetch_hint(name)}; or put its HR "
      f"images in {root / _ALIASES[name][0]}, or set {root_flags} to the folder that holds it "
      f"(looked for, ignoring case: {', '.join(tried[:4])}{', …' if len(tried) > 4 else ''})")


def resolve(name_or_path: str, data_root: Optional[str],
            root_flags: str = ROOT_FLAGS) -> pathlib.Path:
  """The folder of HR images for a dataset name or path (`root_flags`: where the caller's user
  sets the data root, for the errors).

  For `skimage_train`/`skimage_val` this is scikit-image's data folder, which holds other files
  too: use `list_pairs` to get a set's images. `df2k` resolves only to a merged DF2K folder;
  without one, `list_pairs` combines div2k and flickr2k.

  Raises:
    DatasetError (a ValueError): an unknown name (the message lists the known ones).
    DatasetNotFoundError (a FileNotFoundError): the dataset's folder is not where it was looked
      for. Both are `cli.UserError`s.
  """
  key = name_or_path.strip()
  if key.lower() in _SKIMAGE_SETS:
    return _skimage_dir()
  root = _data_root(data_root)
  if key.lower() in _ALIASES:  # names win over same-named folders in the working directory
    try:
      return _resolve_named(key.lower(), root, root_flags)
    except FileNotFoundError:
      if key.lower() in _COMPOSITES:
        parts = " + ".join(_COMPOSITES[key.lower()])
        raise DatasetNotFoundError(f"no merged {key} folder under {root}; {key} is {parts}: use "
                                   "list_pairs, which combines them") from None
      raise
  path = pathlib.Path(key).expanduser()
  if path.is_dir():
    return path
  if _looks_like_path(key):
    raise DatasetNotFoundError(f"dataset folder {path} does not exist")
  if (root / key).is_dir():
    return root / key
  raise DatasetError(f"unknown dataset {key!r}: use one of {', '.join(KNOWN_NAMES)} "
                     "or the path of a folder of HR images")


def _lr_folder(hr_folder: pathlib.Path, scale: int) -> Optional[pathlib.Path]:
  """The folder of MATLAB bicubic LR images that ships beside an HR folder, if any."""
  candidates = []
  if hr_folder.name.lower().endswith("_hr"):  # DIV2K_train_HR -> DIV2K_train_LR_bicubic
    candidates.append((hr_folder.parent, hr_folder.name[:-3] + "_LR_bicubic"))
  if hr_folder.name.lower() == "hr":  # benchmark/Set5/HR -> benchmark/Set5/LR_bicubic
    candidates.append((hr_folder.parent, "LR_bicubic"))
  for parent, name in candidates:
    lr_root = _child_ci(parent, name)
    if lr_root is not None:
      folder = _child_ci(lr_root, f"X{scale}")
      if folder is not None:
        return folder
  return None


def _lr_file(lr_folder: Optional[pathlib.Path], hr_path: pathlib.Path,
             scale: int) -> Optional[pathlib.Path]:
  if lr_folder is None:
    return None
  for stem in (f"{hr_path.stem}x{scale}", f"{hr_path.stem}X{scale}", hr_path.stem):
    for ext in (hr_path.suffix, ".png"):
      candidate = lr_folder / f"{stem}{ext}"
      if candidate.is_file():
        return candidate
  return None


def _pairs_in(folder: pathlib.Path, files: Sequence[pathlib.Path], scale: int,
              use_lr_files: bool) -> list[ImagePair]:
  lr_folder = _lr_folder(folder, scale) if use_lr_files else None
  return [ImagePair(p.stem, p, _lr_file(lr_folder, p, scale)) for p in files]


def list_pairs(name_or_path: str, data_root: Optional[str], scale: int,
               use_lr_files: bool = True) -> list[ImagePair]:
  """The (name, HR path, LR path or None) of every image of a dataset, sorted by name.

  Args:
    name_or_path: a dataset name (see KNOWN_NAMES) or a folder of HR images.
    data_root: where named datasets live (None: the data home, memsr_jax/data/home.py).
    scale: picks the shipped LR folder (X{scale}) when the dataset has one.
    use_lr_files: False ignores shipped LR images (LR is then always bicubic of the HR).
  """
  key = name_or_path.strip().lower()
  if key in _SKIMAGE_SETS:
    folder = _skimage_dir()
    files = [folder / f for f in _SKIMAGE_SETS[key]]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
      raise DatasetNotFoundError(f"scikit-image sample images missing: {missing}; reinstall "
                                 "scikit-image")
    pairs = _pairs_in(folder, files, scale, use_lr_files=False)
  elif key in _COMPOSITES and not _has_merged_folder(key, data_root):
    pairs = []
    for part in _COMPOSITES[key]:
      pairs.extend(list_pairs(part, data_root, scale, use_lr_files))
  else:
    folder = resolve(name_or_path, data_root)
    files = _image_files(folder)
    if not files:
      raise DatasetNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    pairs = _pairs_in(folder, files, scale, use_lr_files)
  pairs.sort(key=lambda p: p.name)
  names = [p.name for p in pairs]
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise DatasetError(f"dataset {name_or_path!r} has several images named {duplicates[:5]} "
                       "(e.g. a.png and a.jpg); keep one file per name")
  return pairs


def _has_merged_folder(name: str, data_root: Optional[str]) -> bool:
  try:
    _resolve_named(name, _data_root(data_root))
    return True
  except FileNotFoundError:
    return False


def load_pair(pair: ImagePair, scale: int) -> tuple[np.ndarray, np.ndarray]:
  """(LR, HR) uint8 RGB: HR mod-cropped to `scale`; LR from its file or bicubic of the HR.

  Raises:
    ImageReadError: a file cannot be read.
    DatasetError: the image is smaller than the scale, or the LR file's size is not HR / scale.
  """
  hr = read_image(pair.hr_path)
  h, w = hr.shape[:2]
  if h < scale or w < scale:
    raise DatasetError(f"{pair.hr_path}: image of size {h}x{w} is smaller than the scale {scale}; "
                       "remove it from the dataset")
  hr = mod_crop(hr, scale)
  expected = (hr.shape[0] // scale, hr.shape[1] // scale)
  if pair.lr_path is None:
    return bicubic_downscale(hr, scale), hr
  lr = read_image(pair.lr_path)
  if lr.shape[:2] != expected:
    raise DatasetError(
        f"LR file {pair.lr_path} is {lr.shape[0]}x{lr.shape[1]} but its HR {pair.hr_path} "
        f"({h}x{w}, mod-cropped to {hr.shape[0]}x{hr.shape[1]}) needs {expected[0]}x{expected[1]} "
        f"at ×{scale}; fix or delete the LR file (LR is then made from the HR)")
  return lr, hr


__all__ = ["DatasetError", "DatasetNotFoundError", "ImagePair", "ImageReadError", "KNOWN_NAMES",
           "BENCHMARKS", "TRAINING_SETS", "resolve", "list_pairs", "load_pair"]
