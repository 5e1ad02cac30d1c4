"""Where every dataset and weight file comes from: one table, read by `memsr_jax.data.fetch`.

Each entry names the canonical public download (the source the papers and the reference
implementations point to), the sha256 of that download when we know it, and which files of the
archive go where under the data dir, in the layout `memsr_jax.data.folders` reads.

Checksums: only the IMDN weight files carry a sha256 here. They were computed from the copies this
project evaluates with (they reproduce the published IMDN PSNR/SSIM, tests/test_imdn_parity.py),
not from a fresh download, since the machine this was written on has no outside network. None of
the dataset archives has a checksum published by its authors, and we could not download them to
compute one: those entries have `sha256=None`, and a fetch says so and records the hash it got
(`<data_dir>/downloads/<file>.sha256`) so that a later fetch of the same file is checked against
it. docs/DATA.md lists the same table for people.
"""
import dataclasses
from typing import Optional
import urllib.parse

# The EDSR authors' benchmark pack: Set5, Set14, B100, Urban100 as HR + MATLAB LR_bicubic/X2-4.
EDSR_BENCHMARK_URL = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"
DIV2K_URL = "http://data.vision.ee.ethz.ch/cvl/DIV2K/"
# SRCNN's training code ships the 91 training images of Yang et al. (T91) as t*.bmp / tt*.bmp.
SRCNN_TRAIN_URL = "http://mmlab.ie.cuhk.edu.hk/projects/SRCNN/SRCNN_train.zip"
# Berkeley Segmentation Dataset 300; its 200 training images are the SR literature's "BSD200".
BSDS300_URL = "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/BSDS300-images.tgz"
IMDN_URL = "https://github.com/Zheng222/IMDN/raw/master/checkpoints/"
MANGA109_SITE = "http://www.manga109.org/en/download.html"

UNVERIFIED = ("no published checksum, and none computed here (no network where this was "
              "written): the hash of the first download is recorded and checked afterwards")


@dataclasses.dataclass(frozen=True)
class Remote:
  """One file to download: `url`, and its sha256 when known (None: unknown, see module doc)."""
  url: str
  sha256: Optional[str] = None
  checksum_source: str = UNVERIFIED

  @property
  def filename(self) -> str:
    """The last part of the URL's path, as written (no query, no percent-decoding)."""
    return urllib.parse.urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1]


@dataclasses.dataclass(frozen=True)
class Source:
  """A fetchable name.

  kind "images": `remote` is an archive; each member whose path matches `members` (a regex whose
  group 1 is the path to keep) is written to `<data_dir>/<dest>/<group 1>`; afterwards the loaders
  must find `expect` images under the name (`folders.resolve`). kind "files": each remote is a
  file written to `<data_dir>/<dest>/<its file name>`. `remote=None`: not publicly downloadable;
  `manual` says how to get it (a copy can still be fetched with `--url`).
  """
  name: str
  kind: str
  what: str
  dest: str
  remotes: tuple[Remote, ...] = ()
  members: str = ""
  expect: int = 0
  manual: str = ""
  citation: str = ""


def _benchmark(name: str, folder: str, expect: int, citation: str) -> Source:
  return Source(name, "images", f"{folder} benchmark, HR + LR_bicubic X2-X4 (EDSR pack)",
                f"benchmark/{folder}", (Remote(EDSR_BENCHMARK_URL),),
                members=rf"^benchmark/{folder}/((?:HR|LR_bicubic)/.+\.png)$", expect=expect,
                citation=citation)


def _imdn(scale: int, sha256: str) -> Remote:
  return Remote(f"{IMDN_URL}IMDN_x{scale}.pth", sha256,
                "computed from the copies evaluated in this project (they reproduce the "
                "published IMDN results); the upstream repository publishes no checksum")


SOURCES: dict[str, Source] = {s.name: s for s in (
    _benchmark("set5", "Set5", 5, "Bevilacqua et al., BMVC 2012"),
    _benchmark("set14", "Set14", 14, "Zeyde et al., Curves and Surfaces 2010"),
    _benchmark("b100", "B100", 100, "Martin et al., ICCV 2001 (BSDS300 test split)"),
    _benchmark("urban100", "Urban100", 100, "Huang et al., CVPR 2015"),
    Source("manga109", "images", "Manga109, 109 HR images", "Manga109",
           members=r"(?i)^(?:.*/)?manga109/(?:hr/)?([^/]+\.(?:png|jpg|bmp))$", expect=109,
           manual=("Manga109 is distributed by its owners on request, for academic use only: "
                   f"apply at {MANGA109_SITE}, then put the 109 HR images in "
                   "<data_dir>/Manga109/ (or fetch your copy with --url URL)"),
           citation="Matsui et al., Multimedia Tools and Applications 2017"),
    Source("div2k", "images", "DIV2K train HR, 800 images (3.5 GB)", "DIV2K/DIV2K_train_HR",
           (Remote(DIV2K_URL + "DIV2K_train_HR.zip"),),
           members=r"^DIV2K_train_HR/([^/]+\.png)$", expect=800,
           citation="Agustsson and Timofte, CVPRW 2017"),
    Source("div2k_val", "images", "DIV2K validation HR, 100 images (0.4 GB)",
           "DIV2K/DIV2K_valid_HR", (Remote(DIV2K_URL + "DIV2K_valid_HR.zip"),),
           members=r"^DIV2K_valid_HR/([^/]+\.png)$", expect=100,
           citation="Agustsson and Timofte, CVPRW 2017"),
    Source("t91", "images", "T91, 91 training images (SRCNN training code)", "T91",
           (Remote(SRCNN_TRAIN_URL),), members=r"^(?:.*/)?(t+\d+\.bmp)$", expect=91,
           citation="Yang et al., TIP 2010"),
    Source("bsd200", "images", "BSD200, the 200 BSDS300 training images", "BSD200",
           (Remote(BSDS300_URL),), members=r"^BSDS300/images/train/([^/]+\.jpg)$", expect=200,
           citation="Martin et al., ICCV 2001"),
    Source("imdn", "files", "official IMDN weights x2, x3, x4 (PyTorch .pth)", "weights/imdn",
           (_imdn(2, "740b39653592bd3f49955a21cd9e16f2d37f2c413368cc09327601b8fbe42ce1"),
            _imdn(3, "11b1716a19bc16e5e353e1db798d476169338e631eb170c82d765559888cb028"),
            _imdn(4, "e660c38221147217a136debeb99eb304d62d9c0f73ac421ed66281b619719714")),
           citation="Hui et al., ACM MM 2019"),
)}
