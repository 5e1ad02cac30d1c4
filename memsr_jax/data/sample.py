"""A photo to try the upscaler on: `memsr-fetch sample` writes `photo.png` in the current folder.

It is scikit-image's "Chelsea the cat" (451×300 RGB, CC0: "No copyright restrictions", by Stefan
van der Walt), bundled with scikit-image, a dependency: nothing is downloaded. It is not one of the
scikit-image photos the quickstart trains on (`skimage_train`), so the upscaled result is honest.
"""
import pathlib

from memsr_jax.utils import console
from memsr_jax.utils import safe_io

NAME = "sample"
DEFAULT_OUT = "photo.png"
WHAT = "photo.png in the current folder (scikit-image's Chelsea the cat, CC0), no download"


def source_file() -> pathlib.Path:
  import skimage.data  # slow import, only here
  return pathlib.Path(skimage.data.__file__).parent / "chelsea.png"


def write(out=DEFAULT_OUT, *, overwrite: bool = False) -> pathlib.Path:
  """Writes the sample photo to `out` (an existing different file is replaced only with
  `overwrite`; the same photo already there is left as it is)."""
  data = source_file().read_bytes()
  if pathlib.Path(out).is_file() and pathlib.Path(out).read_bytes() == data:
    console.say(f"{NAME}: already there ({out})")
    return pathlib.Path(out)
  out = safe_io.check_output_file(out, "sample", overwrite=overwrite)
  safe_io.atomic_write_bytes(out, data, "writing the sample photo")
  console.say(f"{NAME}: wrote {out} (Chelsea the cat, CC0, from scikit-image)")
  return out
