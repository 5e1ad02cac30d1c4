"""Download datasets and weights by name into the data dir, in the layout the loaders read.

  python -m memsr_jax.data.fetch set5 set14 imdn --data_dir ~/sr_data
  python -m memsr_jax.data.fetch --list

Sources and checksums: memsr_jax/data/sources.py (docs/DATA.md). Archives are kept in
`<data_dir>/downloads/` (several sets come from one archive; delete it when done); an interrupted
download resumes on the next run when the server confirms it is the same file
(memsr_jax.data.download); a set already in place is skipped; a file with the wrong sha256 is
deleted and reported. Fetching is all-or-nothing per set and per weight file: images are extracted
to a temporary folder beside the set's (memsr_jax.data.archive: unsafe, damaged or oversized
archives are refused), counted there, and only then swapped in place of the old folder; a weight
file is downloaded to a temporary name and replaces the old one only once verified, so a failed
fetch, also with --overwrite, leaves what was there. One fetch of a name runs at a time
(`<data_dir>/.fetch-<name>.lock`), and folders a failed fetch created are removed again. An
archive without a published checksum has its sha256 recorded (`<file>.sha256`) once it passed
the checks, and is checked against that record afterwards.
"""
import argparse
import contextlib
import os
import pathlib
import shutil
import sys
from typing import Optional
import urllib.parse

from memsr_jax.data import archive as archives
from memsr_jax.data import download as dl
from memsr_jax.data import folders
from memsr_jax.data import home
from memsr_jax.data import sample
from memsr_jax.data.sources import SOURCES
from memsr_jax.data.sources import Remote
from memsr_jax.data.sources import Source
from memsr_jax.utils import cli
from memsr_jax.utils import console
from memsr_jax.utils import filelock
from memsr_jax.utils import safe_io

# Extracted images may take at most this many times the archive's size (at least the floor), and
# number at most FILES_PER_IMAGE per expected image (HR + LR x2-x4 are 4): more is a bomb.
BOMB_RATIO = 16
BOMB_FLOOR_BYTES = 64 << 20
FILES_PER_IMAGE = 16
# The longest file name a URL may end in: the part, its record and its lock add up to 11 bytes.
MAX_URL_NAME = 244


def _data_dir(value: Optional[str]) -> pathlib.Path:
  root = pathlib.Path(value) if value else home.data_home()
  return root.expanduser().absolute()


def _recorded_path(archive: pathlib.Path) -> pathlib.Path:
  return archive.with_name(archive.name + ".sha256")


def _expected_sha(remote: Remote, archive: pathlib.Path) -> Optional[str]:
  """The published sha256, else the one recorded at the first download (trust on first use)."""
  if remote.sha256:
    return remote.sha256
  recorded = _recorded_path(archive)
  if recorded.is_file():
    return (recorded.read_text().split() or [""])[0]
  return None


def _get(remote: Remote, url: str, dest: pathlib.Path, *, replace: bool, fix: str) -> Optional[str]:
  """Downloads `remote` to `dest` unless a verified copy is there (`replace`: downloads anyway,
  and replaces `dest` only once verified). Returns the sha256 to record once the file has passed
  the caller's checks (no checksum known yet), else None."""
  expected = _expected_sha(remote, dest)
  record = _recorded_path(dest)
  bad_record = ("" if remote.sha256 or expected is None else
                f"; {expected} is the sha256 recorded in {record}: if that record is wrong (a "
                "bad first download, or the source changed), delete it and fetch again")
  if dest.is_file() and not replace:
    digest = dl.sha256_of(dest)
    if expected is None or digest == expected:
      console.say(f"{dest.name}: already downloaded ({dest})")
      return digest if expected is None else None
    raise cli.UserError(f"{dest} exists but its sha256 is not the expected {expected}: {fix}"
                        f"{bad_record}")
  try:
    digest = dl.download(url, dest, expected, label=dest.name)
  except dl.ChecksumError as e:
    if not bad_record:
      raise
    raise dl.ChecksumError(f"{dest.name} from {url} has sha256 {e.digest} (deleted the "
                           f"download){bad_record}", e.digest) from None
  return digest if expected is None else None


def _record(dest: pathlib.Path, digest: str) -> None:
  record = _recorded_path(dest)
  safe_io.atomic_write_text(record, f"{digest}  {dest.name}\n", "recording the sha256 in")
  console.say(f"warning: {dest.name} has no published checksum, so it was not verified; its "
              f"sha256 {digest} is recorded in {record} and checked from now on")


def _present(source: Source, data_dir: pathlib.Path) -> int:
  """How many images the loaders find for the set under data_dir (0: not there)."""
  try:
    return len(folders.list_pairs(source.name, str(data_dir), 2))
  except (FileNotFoundError, ValueError):
    return 0


def _aside(dest: pathlib.Path) -> pathlib.Path:
  return dest.with_name(f".{dest.name}.fetch-old")


def _recover(dest: pathlib.Path) -> None:
  """Finishes a swap a killed fetch left half done: the old set back, or the old copy removed."""
  aside = _aside(dest)
  if not aside.is_dir() or aside.is_symlink():
    return
  if os.path.lexists(dest):
    shutil.rmtree(aside, ignore_errors=True)
  else:
    os.replace(aside, dest)
    console.say(f"{dest}: restored the set a stopped fetch had moved to {aside}")


def _swap(staged: pathlib.Path, dest: pathlib.Path) -> None:
  """Puts the complete `staged` folder at `dest`; the old `dest` goes only once that is done."""
  aside = _aside(dest)
  try:
    if dest.exists():
      os.replace(dest, aside)
    try:
      os.replace(staged, dest)
    except OSError:
      if aside.exists():
        os.replace(aside, dest)
      raise
  except OSError as e:
    raise dl.write_error(e, dest) from None
  shutil.rmtree(aside, ignore_errors=True)


def _install(source: Source, archive: pathlib.Path, dest: pathlib.Path) -> int:
  """Extracts the set into a temporary folder beside `dest`, counts it there, then swaps it in."""
  stage = dest.parent / f".fetch-{source.name}.tmp"
  shutil.rmtree(stage, ignore_errors=True)
  try:
    staged = stage / source.dest
    packed = archive.stat().st_size
    count = archives.extract(archive, source.members, staged,
                             max_bytes=max(BOMB_RATIO * packed, BOMB_FLOOR_BYTES),
                             max_files=FILES_PER_IMAGE * source.expect + 64)
    if count == 0:
      raise archives.ArchiveError(f"{archive} holds no {source.name} images where expected "
                                  f"({source.members}); is it the right archive?")
    found = _present(source, stage)
    if found < source.expect:
      raise archives.ArchiveError(
          f"{source.name}: {archive} holds {count} matching files, in which the loaders find "
          f"{found} of {source.expect} images; the archive differs from the one expected "
          f"(docs/DATA.md), and {dest} was left as it was")
    _swap(staged, dest)
  finally:
    shutil.rmtree(stage, ignore_errors=True)
  return found


def _check_set_folder(source: Source, dest: pathlib.Path, found: int, overwrite: bool) -> None:
  if dest.is_symlink():
    raise cli.UserError(f"{dest} is a symbolic link (to {os.readlink(dest)}); fetch does not "
                        "replace links: remove the link, or fetch into the folder it points to")
  if dest.exists() and not dest.is_dir():
    raise cli.UserError(f"{dest} is a file, not a folder: move it away and fetch again")
  if dest.is_dir() and any(dest.iterdir()) and not overwrite:
    raise cli.UserError(f"{dest} exists but the loaders find {found} of {source.expect} "
                        f"{source.name} images there; pass --overwrite to replace it")


def _fetch_images(source: Source, data_dir: pathlib.Path, url: Optional[str],
                  overwrite: bool) -> None:
  dest = data_dir / source.dest
  _recover(dest)
  found = _present(source, data_dir)
  if found >= source.expect and not overwrite:
    console.say(f"{source.name}: already there ({found} images under {data_dir}); skipping")
    return
  _check_set_folder(source, dest, found, overwrite)
  if not source.remotes and url is None:
    raise cli.UserError(source.manual)
  remote = Remote(url) if url is not None else source.remotes[0]
  archive = data_dir / "downloads" / remote.filename
  had = archive.is_file()
  to_record = _get(remote, url or remote.url, archive, replace=False,
                   fix="delete it and fetch again")
  try:
    found = _install(source, archive, dest)
  except archives.ArchiveError as e:  # the archive's fault (not a full disk, say)
    if remote.sha256:
      raise
    if had:  # unverified, or verified against a record that may come from a bad first download
      record = _recorded_path(archive)
      also = f" and {record}" if record.is_file() else ""
      raise cli.UserError(f"{e} (to download the archive again, delete {archive}{also})") from None
    archive.unlink(missing_ok=True)  # an unverified download that failed its checks
    raise cli.UserError(f"{e} (deleted the download {archive})") from None
  if to_record is not None:
    _record(archive, to_record)
  console.say(f"{source.name}: {found} images in {dest}")


def _fetch_files(source: Source, data_dir: pathlib.Path, url: Optional[str],
                 overwrite: bool) -> None:
  remotes = source.remotes
  if url is not None:
    if len(remotes) != 1:
      raise cli.UserError(f"--url works for a name with one file; {source.name} has "
                          f"{len(remotes)}")
    remotes = (Remote(url, remotes[0].sha256),)
  for remote in remotes:
    dest = data_dir / source.dest / remote.filename
    if os.path.lexists(dest) and not dest.is_file():
      raise cli.UserError(f"{dest} is not a file: move it away and fetch again")
    had = dest.is_file()
    try:
      to_record = _get(remote, remote.url, dest, replace=overwrite,
                       fix="pass --overwrite to replace it with a verified download")
    except cli.UserError as e:
      if not had:
        raise
      raise type(e)(f"{e} ({dest} is kept as it was)") from None
    if to_record is not None:
      _record(dest, to_record)
  console.say(f"{source.name}: {len(remotes)} file(s) in {data_dir / source.dest}")


def check_url(url: str) -> None:
  """Refuses a --url that is not an http(s) address of a file with a usable name."""
  try:
    parts = urllib.parse.urlsplit(url)
    parts.port  # noqa: B018 (raises ValueError for a bad port)
  except ValueError:
    parts = None
  if any(c.isspace() or not c.isprintable() for c in url):
    raise cli.UsageError(f"--url {url!r} holds spaces or control characters: percent-encode "
                         "them (a space is %20)")
  if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
    raise cli.UsageError(f"--url {url!r} is not an http:// or https:// address: give the full "
                         "address of the file")
  name = Remote(url).filename
  if name in ("", ".", ".."):
    raise cli.UsageError(f"--url {url} names no file: give the address of the file itself")
  if len(name.encode()) > MAX_URL_NAME:
    raise cli.UsageError(f"--url: the file name {name[:40]}… is {len(name.encode())} bytes long, "
                         f"more than the {MAX_URL_NAME} a download may have: use a shorter "
                         "address (a mirror)")


def _check_data_dir(data_dir: pathlib.Path, source: Source) -> None:
  """A folder (or one that can be created) whose subfolders fetch needs are not files."""
  existing = next(p for p in (data_dir, *data_dir.parents) if p.exists())
  if not existing.is_dir():
    raise cli.UserError(f"--data_dir {data_dir}: {existing} is a file, not a folder: choose a "
                        "folder")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise cli.UserError(f"--data_dir {data_dir}: {existing} is not writable: choose another "
                        "folder")
  for sub in ("downloads", *pathlib.PurePosixPath(source.dest).parents):
    path = data_dir / sub
    if path.exists() and not path.is_dir():
      raise cli.UserError(f"{path} is a file, but fetch needs a folder there: move it away")


def _new_folders(data_dir: pathlib.Path, source: Source) -> list[pathlib.Path]:
  """The folders a fetch of `source` may create that do not exist yet, deepest first."""
  dest = data_dir / source.dest
  wanted = [data_dir, *data_dir.parents, data_dir / "downloads", dest,
            *(p for p in dest.parents if p.is_relative_to(data_dir))]
  new = {p for p in wanted if not os.path.lexists(p)}
  return sorted(new, key=lambda p: len(p.parts), reverse=True)


def fetch(name: str, data_dir, *, url: Optional[str] = None, overwrite: bool = False) -> None:
  """Fetches one name of SOURCES into data_dir (see the module docstring)."""
  source = SOURCES.get(name.lower())
  if source is None:
    raise cli.UserError(f"unknown name {name!r}: use one of {', '.join(SOURCES)}")
  if url is not None:
    check_url(url)
  data_dir = pathlib.Path(data_dir).expanduser().absolute()
  _check_data_dir(data_dir, source)
  new = _new_folders(data_dir, source)
  try:
    try:
      data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
      raise dl.write_error(e, data_dir) from None
    with filelock.exclusive(data_dir / f".fetch-{source.name}.lock",
                            f"a fetch of {source.name} into {data_dir}"):
      if source.kind == "files":
        _fetch_files(source, data_dir, url, overwrite)
      else:
        _fetch_images(source, data_dir, url, overwrite)
  except BaseException:
    for folder in new:  # what this fetch created and left empty
      with contextlib.suppress(OSError):
        folder.rmdir()
    raise


def _list() -> None:
  for s in SOURCES.values():
    where = ", ".join(r.url for r in s.remotes) or f"on request: {s.manual.split(':')[0]}"
    sums = ("sha256 known" if s.remotes and all(r.sha256 for r in s.remotes) else
            "no published sha256 (recorded at first download)" if s.remotes else "")
    print(f"{s.name:10s} {s.what}\n{'':10s} {where}{'; ' + sums if sums else ''}")


def _parser() -> cli.ArgumentParser:
  p = cli.ArgumentParser(
      prog="python -m memsr_jax.data.fetch",
      description="Download SR datasets and weights from their public sources into the data "
                  "dir, verified, resumable, in the layout the loaders read.",
      epilog="examples:\n  python -m memsr_jax.data.fetch set5 set14 imdn\n"
             "  python -m memsr_jax.data.fetch sample  # photo.png here, to try the upscaler on",
      formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("names", nargs="*", metavar="NAME",
                 help=f"what to fetch: {', '.join(SOURCES)}, or {sample.NAME} ({sample.WHAT})")
  p.add_argument("--data_dir", default=None,
                 help=f"where sets go (default: the data home, ${home.ENV}, else "
                      "~/.cache/memsr_jax); weights go to <data_dir>/weights")
  p.add_argument("--url", default=None,
                 help="download from this URL instead (a mirror, or your own Manga109 copy); "
                      "one NAME only")
  p.add_argument("--overwrite", action="store_true",
                 help="replace a set or file that is already there (only once the new one "
                      "is complete and verified: a failed fetch keeps the old one)")
  p.add_argument("--list", action="store_true", help="list the names and their sources, and exit")
  return p


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  console.setup(args.verbose)
  if args.list:
    _list()
    print(f"{sample.NAME:10s} {sample.WHAT}")
    return 0
  if not args.names:
    raise cli.UserError("give at least one NAME (see --list)")
  if args.url is not None and len(args.names) != 1:
    raise cli.UserError("--url goes with exactly one NAME")
  unknown = [n for n in args.names if n.lower() not in SOURCES and n.lower() != sample.NAME]
  if unknown:
    raise cli.UserError(f"unknown name {unknown[0]!r}: use one of {', '.join(SOURCES)}, "
                        f"{sample.NAME}")
  if sample.NAME in (n.lower() for n in args.names):
    sample.write(sample.DEFAULT_OUT, overwrite=args.overwrite)
    args.names = [n for n in args.names if n.lower() != sample.NAME]
  data_dir = _data_dir(args.data_dir)
  if args.names:
    console.say(f"data home: {data_dir}")
  for name in args.names:
    fetch(name, data_dir, url=args.url, overwrite=args.overwrite)
  return 0


if __name__ == "__main__":
  sys.exit(cli.run(main))
