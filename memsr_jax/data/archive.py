"""Extracting a set's images from a downloaded tar or zip archive, checked before and while writing.

Only regular files whose path matches the set's pattern are written, each to `<into>/<group 1>`.
Before anything is written the whole member list is read and the archive is refused (one line,
`ArchiveError`) when: a member's target is absolute or climbs out (`..`); two members land on the
same file (also when they differ only in case); one member's target is another's folder; a name
part is longer than 255 bytes; or the members would expand to more than `max_bytes` or number more
than `max_files` (a decompression bomb). While writing, the bytes are counted again (a header may
understate them), and a damaged archive (truncated, bad CRC) is an `ArchiveError` too. A write
that fails (a full disk) keeps its errno and says how much was written. The caller extracts into a
temporary folder and deletes it on any error, so nothing partial is kept.
"""
import contextlib
import dataclasses
import os
import pathlib
import re
import tarfile
from typing import Callable, Iterator, Optional
import zipfile
import zlib

from memsr_jax.data import download as dl
from memsr_jax.utils.cli import UserError

try:
  import lzma
  _LZMA_ERRORS: tuple = (lzma.LZMAError,)
except ImportError:  # a Python built without lzma reads no .xz anyway
  _LZMA_ERRORS = ()

NAME_MAX = 255
PATH_MAX = 4000
# Errors a damaged or unsupported archive raises while it is read.
READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
               NotImplementedError, *_LZMA_ERRORS)


class ArchiveError(UserError):
  """The archive is damaged, unsafe or not the expected one (nothing was kept)."""


@dataclasses.dataclass(frozen=True)
class Member:
  name: str
  size: int
  open: Callable


@contextlib.contextmanager
def members(archive: pathlib.Path) -> Iterator[list[Member]]:
  """Every regular file of a tar or zip archive (the archive stays open inside the block)."""
  with contextlib.ExitStack() as stack:
    try:
      if zipfile.is_zipfile(archive):
        z = stack.enter_context(zipfile.ZipFile(archive))
        listed = [Member(i.filename, i.file_size, lambda i=i: z.open(i)) for i in z.infolist()
                  if not i.is_dir()]
      else:
        t = stack.enter_context(tarfile.open(archive))
        listed = [Member(m.name, m.size, lambda m=m: t.extractfile(m)) for m in t.getmembers()
                  if m.isfile()]
    except READ_ERRORS as e:
      raise ArchiveError(f"{archive} is not a readable tar or zip archive, or is damaged "
                         f"({type(e).__name__}: {e})") from None
    yield listed


def _safe_relative(path: str) -> Optional[pathlib.PurePosixPath]:
  rel = pathlib.PurePosixPath(path)
  if rel.is_absolute() or ".." in rel.parts or not rel.parts:
    return None
  return rel


def plan(archive: pathlib.Path, listed: list[Member], pattern: str
         ) -> list[tuple[pathlib.PurePosixPath, Member]]:
  """(target path, member) of every member matching `pattern`, checked as the module says."""
  regex = re.compile(pattern)
  targets = []
  for member in listed:
    name = member.name[2:] if member.name.startswith("./") else member.name
    match = regex.match(name) if _safe_relative(name) else None  # no absolute or ../ members
    rel = _safe_relative(match.group(1)) if match else None
    if rel is not None:
      targets.append((rel, member))
  seen: dict[str, str] = {}
  for rel, member in targets:
    if any(len(part.encode()) > NAME_MAX for part in rel.parts):
      raise ArchiveError(f"{archive}: member {member.name[:60]!r}… has a name part longer than "
                         f"{NAME_MAX} bytes, which no file system takes; is it the right archive?")
    key = str(rel).casefold()
    if key in seen:
      raise ArchiveError(f"{archive}: members {seen[key]!r} and {member.name!r} would both be "
                         f"written to {rel}; refusing an archive whose images overwrite each other")
    seen[key] = member.name
  folders = {str(p).casefold(): str(rel) for rel, _ in targets for p in rel.parents}
  clash = next((rel for rel, _ in targets if str(rel).casefold() in folders), None)
  if clash is not None:
    raise ArchiveError(f"{archive}: {clash} is both a file and the folder of "
                       f"{folders[str(clash).casefold()]}; refusing the archive")
  return targets


def _check_size(archive: pathlib.Path, total: int, max_bytes: int) -> None:
  if total > max_bytes:
    raise ArchiveError(f"{archive}: its images would take more than {max_bytes} bytes once "
                       f"extracted ({os.path.getsize(archive)} bytes packed); refusing a likely "
                       "decompression bomb: check the archive's source (docs/DATA.md)")


def _copy(archive: pathlib.Path, member: Member, target: pathlib.Path, done: int,
          max_bytes: int) -> int:
  """Writes one member to `target`; returns `done` plus its size."""
  try:
    src = member.open()
  except READ_ERRORS as e:
    raise ArchiveError(f"{archive}: member {member.name!r} cannot be read ({e}); the archive is "
                       "damaged") from None
  with src, open(target, "wb") as dst:
    while True:
      try:
        chunk = src.read(dl.CHUNK)
      except READ_ERRORS as e:
        raise ArchiveError(f"{archive} is damaged: reading {member.name!r} failed "
                           f"({type(e).__name__}: {e})") from None
      if not chunk:
        return done
      done += len(chunk)
      _check_size(archive, done, max_bytes)
      dst.write(chunk)


def extract(archive: pathlib.Path, pattern: str, into: pathlib.Path, *, max_bytes: int,
            max_files: int) -> int:
  """Writes the archive members matching `pattern` to `into/<group 1>`; returns their count."""
  with members(archive) as listed:
    targets = plan(archive, listed, pattern)
    if len(targets) > max_files:
      raise ArchiveError(f"{archive}: {len(targets)} members match, more than the {max_files} "
                         "expected at most; is it the right archive?")
    _check_size(archive, sum(m.size for _, m in targets), max_bytes)
    done = 0
    for rel, member in targets:
      target = into / rel
      if len(str(target).encode()) > PATH_MAX:
        raise ArchiveError(f"{archive}: the path of member {member.name[:60]!r}… is too long "
                           "to write; is it the right archive?")
      try:
        target.parent.mkdir(parents=True, exist_ok=True)
        done = _copy(archive, member, target, done, max_bytes)
        os.chmod(target, 0o644)
      except OSError as e:
        written = done + (target.stat().st_size if target.is_file() else 0)
        raise dl.write_error(e, target, written) from None
  return len(targets)
