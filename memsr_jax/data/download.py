"""Resumable, verified HTTP downloads that never leave a partial file under the final name.

A download is written to `.<name>.part` beside the target, with `.<name>.part.json` recording the
URL, the server's validator (ETag, else Last-Modified) and the total size. An interrupted download
resumes on the next call only when that record matches: the request carries `Range` and
`If-Range: <validator>`, and the bytes are appended only to a 206 answer whose Content-Range starts
at the part's end and ends at the recorded total, with the same validator. Anything else (no
record, another URL, no validator, a part as long as the file or longer, a server that ignores
Range or sends the file whole because it changed) restarts from zero. When complete, the size and
the sha256 are checked (a mismatch deletes the part and is an error) and the part is renamed to the
final name. One process at a time downloads a target (`.<name>.lock`, memsr_jax.data.filelock).
"""
import errno
import hashlib
import http.client
import json
import os
import pathlib
import re
from typing import Optional
import urllib.error
import urllib.request

from memsr_jax.utils import console
from memsr_jax.utils import filelock
from memsr_jax.utils.cli import UserError

CHUNK = 1 << 20
USER_AGENT = "memsr_jax-fetch"


class DownloadError(UserError):
  """The server could not be reached or the transfer stopped (rerun to resume)."""


class ChecksumError(UserError):
  """The downloaded file's sha256 (`digest`) differs from the expected one (nothing kept)."""

  def __init__(self, message: str, digest: str = ""):
    super().__init__(message)
    self.digest = digest


def part_path(dest) -> pathlib.Path:
  dest = pathlib.Path(dest)
  return dest.with_name(f".{dest.name}.part")


def meta_path(dest) -> pathlib.Path:
  dest = pathlib.Path(dest)
  return dest.with_name(f".{dest.name}.part.json")


def lock_path(dest) -> pathlib.Path:
  dest = pathlib.Path(dest)
  return dest.with_name(f".{dest.name}.lock")


def sha256_of(path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(CHUNK), b""):
      h.update(chunk)
  return h.hexdigest()


def write_error(e: OSError, path: pathlib.Path, written: Optional[int] = None) -> UserError:
  """A failed write as one line that keeps the errno and says how much reached the disk."""
  what = f" after {written} bytes" if written is not None else ""
  todo = ("free disk space there" if e.errno in (errno.ENOSPC, errno.EDQUOT) else
          "make the folder writable or choose another --data_dir")
  return UserError(f"writing {path} failed{what} ([Errno {e.errno}] {e.strerror or e}): {todo}, "
                   "then rerun the same command")


def _open(url: str, dest: pathlib.Path, offset: int, validator: Optional[str], timeout: float):
  request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
  if offset:
    request.add_header("Range", f"bytes={offset}-")
    request.add_header("If-Range", validator)
  try:
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only)
  except urllib.error.HTTPError as e:
    if e.code == 416 and offset:  # the part is as long as the file, or longer: not trusted
      return None
    raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; check the address (docs/DATA.md "
                        "lists the sources), or fetch from a mirror with --url") from None
  except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
    reason = getattr(e, "reason", e)
    raise DownloadError(f"cannot download {url} ({reason}): check the network connection (and "
                        f"https_proxy) and rerun, or put a copy at {dest} (it is checked like "
                        "a download)") from None


def _validator(headers) -> Optional[str]:
  """The If-Range validator of a response: a strong ETag, else Last-Modified, else None."""
  etag = headers.get("ETag")
  if etag and not etag.startswith("W/"):
    return etag
  return headers.get("Last-Modified")


def _read_meta(dest: pathlib.Path, url: str) -> Optional[dict]:
  """The recorded start of the part, if it is for `url` and resumable (a validator and size)."""
  try:
    meta = json.loads(meta_path(dest).read_text())
  except (OSError, ValueError):
    return None
  ok = (isinstance(meta, dict) and meta.get("url") == url and isinstance(meta.get("validator"), str)
        and isinstance(meta.get("total"), int))
  return meta if ok else None


def _continues(response, offset: int, meta: dict) -> bool:
  """Whether a response to a Range request continues the part: same file, same size, from
  `offset` to its end."""
  if response.status != 206 or _validator(response.headers) != meta["validator"]:
    return False
  m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers.get("Content-Range", "").strip())
  total = meta["total"]
  return bool(m) and (int(m[1]), int(m[2]), int(m[3])) == (offset, total - 1, total)


def _total_size(response, start: int) -> Optional[int]:
  length = response.headers.get("Content-Length")
  return start + int(length) if length and length.isdigit() else None


def _read(response, size: int, url: str) -> bytes:
  try:
    return response.read(CHUNK)
  except (http.client.HTTPException, OSError) as e:
    raise DownloadError(f"download of {url} stopped after {size} bytes ({type(e).__name__}); "
                        "rerun the same command to resume") from None


def _copy(response, part: pathlib.Path, start: int, total: Optional[int], label: str,
          url: str) -> int:
  size = start
  try:
    with open(part, "ab" if start else "wb") as f, console.progress(
        total, desc=label, unit="B", initial=start, unit_scale=True) as bar:
      while chunk := _read(response, size, url):
        f.write(chunk)
        size += len(chunk)
        bar.update(len(chunk))
  except OSError as e:
    written = part.stat().st_size if part.is_file() else 0
    raise write_error(e, part, written) from None
  return size


def _start(url: str, dest: pathlib.Path, timeout: float):
  """(response, offset it continues from) for the part of `dest`, resuming where it is safe."""
  part = part_path(dest)
  offset = part.stat().st_size if part.is_file() else 0
  meta = _read_meta(dest, url) if offset else None
  if offset and (meta is None or offset >= meta["total"]):
    console.say(f"{dest.name}: the part left by an earlier run cannot be checked against the "
                "server; downloading it again")
    offset = 0
  response = _open(url, dest, offset, meta and meta["validator"], timeout) if offset else None
  if response is not None and _continues(response, offset, meta):
    console.say(f"{dest.name}: resuming at byte {offset}")
    return response, offset
  if offset:
    console.say(f"{dest.name}: the server's file differs from the part or does not resume; "
                "downloading it again")
  if response is not None and response.status != 200:  # a 200 is the whole file: used as is
    response.close()
    response = None
  if response is None:
    response = _open(url, dest, 0, None, timeout)
  total = _total_size(response, 0)
  validator = _validator(response.headers)
  try:
    if total is not None and validator:
      meta_path(dest).write_text(json.dumps({"url": url, "validator": validator,
                                             "total": total}))
    else:
      meta_path(dest).unlink(missing_ok=True)
  except OSError as e:
    response.close()
    raise write_error(e, meta_path(dest)) from None
  return response, 0


def download(url: str, dest, sha256: Optional[str], *, label: str = "",
             timeout: float = 60.0) -> str:
  """Downloads `url` to `dest` (resuming a part left by an earlier run); returns its sha256.

  Raises:
    DownloadError: unreachable, an HTTP error, or the transfer stopped early (the part is kept, so
      the next call resumes).
    ChecksumError: complete, but the sha256 differs from `sha256` (the part is deleted).
    filelock.Busy: another process is downloading `dest`.
  """
  dest = pathlib.Path(dest)
  dest.parent.mkdir(parents=True, exist_ok=True)
  with filelock.exclusive(lock_path(dest), f"the download of {dest}"):
    return _download(url, dest, sha256, label, timeout)


def _download(url: str, dest: pathlib.Path, sha256: Optional[str], label: str,
              timeout: float) -> str:
  part = part_path(dest)
  response, start = _start(url, dest, timeout)
  with response:
    total = _total_size(response, start)
    size = _copy(response, part, start, total, label or dest.name, url)
  if total is not None and size != total:
    raise DownloadError(f"download of {url} stopped after {size} of {total} bytes; rerun the "
                        "same command to resume")
  digest = sha256_of(part)
  if sha256 is not None and digest != sha256.lower():
    part.unlink(missing_ok=True)
    meta_path(dest).unlink(missing_ok=True)
    raise ChecksumError(f"{dest.name} from {url} has sha256 {digest}, expected {sha256}: "
                        "deleted it; rerun to try again (if it persists, the source changed: "
                        "see docs/DATA.md)", digest)
  try:
    os.chmod(part, 0o644)
    os.replace(part, dest)
  except OSError as e:
    raise write_error(e, dest) from None
  meta_path(dest).unlink(missing_ok=True)
  return digest
