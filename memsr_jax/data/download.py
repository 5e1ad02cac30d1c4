"""Resumable, verified HTTP downloads that never leave a partial file under the final name.

A download is written to `.<name>.part` beside the target. If that file is there from an earlier
interrupted run, the download resumes with an HTTP Range request (a server that ignores Range
sends the whole file, which then replaces the part). When complete, the sha256 is checked (a
mismatch deletes the part and is an error) and the part is renamed to the final name.
"""
import hashlib
import http.client
import os
import pathlib
from typing import Optional
import urllib.error
import urllib.request

from memsr_jax import console
from memsr_jax.cli import UserError

CHUNK = 1 << 20
USER_AGENT = "memsr_jax-fetch"


class DownloadError(UserError):
  """The server could not be reached or the transfer stopped (rerun to resume)."""


class ChecksumError(UserError):
  """The downloaded file's sha256 differs from the expected one (nothing kept)."""


def part_path(dest) -> pathlib.Path:
  dest = pathlib.Path(dest)
  return dest.with_name(f".{dest.name}.part")


def sha256_of(path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(CHUNK), b""):
      h.update(chunk)
  return h.hexdigest()


def _open(url: str, offset: int, timeout: float):
  request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
  if offset:
    request.add_header("Range", f"bytes={offset}-")
  try:
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only)
  except urllib.error.HTTPError as e:
    if e.code == 416 and offset:  # the part already holds the whole file
      return None
    raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
  except (urllib.error.URLError, OSError) as e:
    reason = getattr(e, "reason", e)
    raise DownloadError(f"cannot download {url}: {reason}") from None


def _resume_offset(response, offset: int) -> int:
  """The offset the response continues from: `offset` for a matching 206, else 0 (whole file)."""
  if offset and response.status == 206:
    content_range = response.headers.get("Content-Range", "")
    if content_range.startswith(f"bytes {offset}-"):
      return offset
  return 0


def _total_size(response, start: int) -> Optional[int]:
  length = response.headers.get("Content-Length")
  return start + int(length) if length and length.isdigit() else None


def _copy(response, part: pathlib.Path, start: int, total: Optional[int], label: str,
          url: str) -> int:
  size = start
  with open(part, "ab" if start else "wb") as f, console.progress(
      total, desc=label, unit="B", initial=start, unit_scale=True) as bar:
    try:
      for chunk in iter(lambda: response.read(CHUNK), b""):
        f.write(chunk)
        size += len(chunk)
        bar.update(len(chunk))
    except (http.client.HTTPException, OSError) as e:
      raise DownloadError(f"download of {url} stopped after {size} bytes ({type(e).__name__}); "
                          "rerun the same command to resume") from None
  return size


def download(url: str, dest, sha256: Optional[str], *, label: str = "",
             timeout: float = 60.0) -> str:
  """Downloads `url` to `dest` (resuming a part left by an earlier run); returns its sha256.

  Raises:
    DownloadError: unreachable, an HTTP error, or the transfer stopped early (the part is kept, so
      the next call resumes).
    ChecksumError: complete, but the sha256 differs from `sha256` (the part is deleted).
  """
  dest = pathlib.Path(dest)
  dest.parent.mkdir(parents=True, exist_ok=True)
  part = part_path(dest)
  offset = part.stat().st_size if part.is_file() else 0
  response = _open(url, offset, timeout)
  if response is not None:
    with response:
      start = _resume_offset(response, offset)
      if offset:
        console.say(f"{dest.name}: resuming at byte {start}" if start else
                    f"{dest.name}: the server does not resume; downloading it again")
      total = _total_size(response, start)
      size = _copy(response, part, start, total, label or dest.name, url)
    if total is not None and size != total:
      raise DownloadError(f"download of {url} stopped after {size} of {total} bytes; rerun the "
                          "same command to resume")
  digest = sha256_of(part)
  if sha256 is not None and digest != sha256.lower():
    part.unlink(missing_ok=True)
    raise ChecksumError(f"{dest.name} from {url} has sha256 {digest}, expected {sha256}: "
                        "deleted it; rerun to try again (if it persists, the source changed: "
                        "see docs/DATA.md)")
  os.chmod(part, 0o644)
  os.replace(part, dest)
  return digest
