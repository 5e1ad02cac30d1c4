"""Where things are inside a workdir and a model checkpoint folder, and the metadata found there.

  <workdir>/checkpoints/<step>/{state,export,extras_<name>,meta}/   training checkpoints
  <workdir>/checkpoints_corrupt/<step>_<time>/                      steps set aside as unreadable
  <workdir>/model/{params,meta,<extra items>}/                     the deployable model
A model checkpoint folder written elsewhere (import_weights --out) has the layout of `model/`.
Every `meta` item is a JSON file `meta/metadata`.
"""
import json
import os
import pathlib

CKPT_DIR = "checkpoints"
CORRUPT_DIR = "checkpoints_corrupt"
MODEL_DIR = "model"  # a workdir's exported deployable model (written by methods / at the end)
EXTRAS_PREFIX = "extras_"
META_FILE = pathlib.Path("meta") / "metadata"


def read_meta(folder: str | os.PathLike) -> dict:
  """The JSON `meta` item of a step folder or a model checkpoint folder."""
  return json.loads((pathlib.Path(folder) / META_FILE).read_text())


def is_model_folder(path: pathlib.Path) -> bool:
  return (path / "params").is_dir() and (path / "meta").is_dir()


def model_folder(path: str | os.PathLike) -> pathlib.Path:
  """A model checkpoint folder, or the `model/` folder inside a workdir."""
  path = pathlib.Path(path).absolute()
  if (path / MODEL_DIR / "meta").is_dir():
    return path / MODEL_DIR
  return path


def step_folders(path: str | os.PathLike) -> list[pathlib.Path]:
  """The step folders of a training workdir (or of its `checkpoints/` folder), oldest first."""
  path = pathlib.Path(path)
  ckpts = path / CKPT_DIR if (path / CKPT_DIR).is_dir() else path
  if not ckpts.is_dir():
    return []
  return sorted((p for p in ckpts.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def declared_scale(path: str | os.PathLike) -> int | None:
  """The scale a model checkpoint or training workdir declares in its metadata, read without
  Orbax (None when no metadata file can be read; loading the checkpoint reports why)."""
  path = pathlib.Path(path)
  folders = [path / MODEL_DIR, path] + list(reversed(step_folders(path)))
  for folder in folders:
    try:
      return int(read_meta(folder)["scale"])
    except (OSError, ValueError, KeyError, TypeError):
      continue
  return None
