"""Download datasets and weights by name into the data dir, in the layout the loaders read.

  python -m memsr_jax.data.fetch set5 set14 imdn --data_dir ~/sr_data
  python -m memsr_jax.data.fetch --list

Sources and checksums: memsr_jax/data/sources.py (docs/DATA.md). Archives are kept in
`<data_dir>/downloads/` (several sets come from one archive; delete it when done); an interrupted
download resumes on the next run; a set already in place is skipped; a file with the wrong sha256
is deleted and reported. Images are extracted to a temporary folder and moved into place when
complete, so a set's folder holds either nothing or the whole set.
"""
import argparse
import os
import pathlib
import re
import shutil
import sys
import tarfile
from typing import Optional
import zipfile

from memsr_jax import cli
from memsr_jax import console
from memsr_jax.data import download as dl
from memsr_jax.data import folders
from memsr_jax.data import home
from memsr_jax.data import sample
from memsr_jax.data.sources import SOURCES
from memsr_jax.data.sources import Remote
from memsr_jax.data.sources import Source


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
    return recorded.read_text().split()[0]
  return None


def _get(remote: Remote, url: str, dest: pathlib.Path) -> None:
  """Downloads `remote` to `dest` unless a verified copy is there; records unknown checksums."""
  expected = _expected_sha(remote, dest)
  if dest.is_file():
    if expected is None or dl.sha256_of(dest) == expected:
      console.say(f"{dest.name}: already downloaded ({dest})")
      return
    raise cli.UserError(f"{dest} exists but its sha256 is not the expected {expected}: delete it "
                        "and fetch again")
  digest = dl.download(url, dest, expected, label=dest.name)
  if expected is None:
    _recorded_path(dest).write_text(f"{digest}  {dest.name}\n")
    console.say(f"warning: {dest.name} has no published checksum, so it was not verified; its "
                f"sha256 {digest} is recorded in {_recorded_path(dest)} and checked from now on")


def _members(archive: pathlib.Path):
  """(path inside the archive, open-file callable) for every regular file of a tar or zip."""
  if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z:
      for info in z.infolist():
        if not info.is_dir():
          yield info.filename, lambda info=info: z.open(info)
    return
  try:
    with tarfile.open(archive) as t:
      for member in t:
        if member.isfile():
          yield member.name, lambda member=member: t.extractfile(member)
  except tarfile.TarError as e:
    raise cli.UserError(f"{archive} is not a readable tar or zip archive ({e}): delete it and "
                        "fetch again") from None


def _safe_relative(path: str) -> Optional[pathlib.PurePosixPath]:
  rel = pathlib.PurePosixPath(path)
  if rel.is_absolute() or ".." in rel.parts or not rel.parts:
    return None
  return rel


def _extract(archive: pathlib.Path, pattern: str, into: pathlib.Path) -> int:
  """Writes the archive members matching `pattern` to `into/<group 1>`; returns their count."""
  regex = re.compile(pattern)
  count = 0
  for name, open_member in _members(archive):
    name = name[2:] if name.startswith("./") else name
    match = regex.match(name) if _safe_relative(name) else None  # no absolute or ../ members
    rel = _safe_relative(match.group(1)) if match else None
    if rel is None:
      continue
    target = into / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    with open_member() as src, open(target, "wb") as dst:
      shutil.copyfileobj(src, dst)
    os.chmod(target, 0o644)
    count += 1
  return count


def _present(source: Source, data_dir: pathlib.Path) -> int:
  """How many images the loaders find for the set under data_dir (0: not there)."""
  try:
    return len(folders.list_pairs(source.name, str(data_dir), 2))
  except (FileNotFoundError, ValueError):
    return 0


def _fetch_images(source: Source, data_dir: pathlib.Path, url: Optional[str],
                  overwrite: bool) -> None:
  dest = data_dir / source.dest
  found = _present(source, data_dir)
  if found >= source.expect and not overwrite:
    console.say(f"{source.name}: already there ({found} images under {data_dir}); skipping")
    return
  if dest.exists() and any(dest.iterdir()) and not overwrite:
    raise cli.UserError(f"{dest} exists but the loaders find {found} of {source.expect} "
                        f"{source.name} images there; pass --overwrite to replace it")
  if not source.remotes and url is None:
    raise cli.UserError(source.manual)
  remote = Remote(url) if url else source.remotes[0]
  archive = data_dir / "downloads" / remote.filename
  _get(remote, url or remote.url, archive)
  tmp = data_dir / f".fetch-{source.name}.tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    count = _extract(archive, source.members, tmp)
    if count == 0:
      raise cli.UserError(f"{archive} holds no {source.name} images where expected "
                          f"({source.members}); is it the right archive?")
    if dest.exists():
      shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  found = _present(source, data_dir)
  if found < source.expect:
    raise cli.UserError(f"{source.name}: extracted {count} files to {dest} but the loaders find "
                        f"{found} of {source.expect} images; the archive differs from the one "
                        "expected (docs/DATA.md)")
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
    if dest.is_file() and overwrite:
      dest.unlink()
    _get(remote, remote.url, dest)
  console.say(f"{source.name}: {len(remotes)} file(s) in {data_dir / source.dest}")


def fetch(name: str, data_dir, *, url: Optional[str] = None, overwrite: bool = False) -> None:
  """Fetches one name of SOURCES into data_dir (see the module docstring)."""
  source = SOURCES.get(name.lower())
  if source is None:
    raise cli.UserError(f"unknown name {name!r}: use one of {', '.join(SOURCES)}")
  data_dir = pathlib.Path(data_dir)
  data_dir.mkdir(parents=True, exist_ok=True)
  if source.kind == "files":
    _fetch_files(source, data_dir, url, overwrite)
  else:
    _fetch_images(source, data_dir, url, overwrite)


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
                 help="replace a set or file that is already there")
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
  if args.url and len(args.names) != 1:
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
