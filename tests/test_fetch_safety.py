"""fetch keeps what the user had, never trusts a bad download, and refuses bad archives and flags
in one line (local HTTP server on 127.0.0.1, tiny archives built here)."""
import errno
import hashlib
import io
import json
import os
import socket
import tarfile
import zipfile

import fetch_server  # tests/ is on sys.path under pytest
import numpy as np
import pytest

from memsr_jax.data import download as dl
from memsr_jax.data import fetch
from memsr_jax.data.sources import SOURCES
from memsr_jax.data.sources import Remote
from memsr_jax.data.sources import Source
from memsr_jax.utils import filelock

SET5 = ["baby", "bird", "butterfly", "head", "woman"]


@pytest.fixture
def server():
  with fetch_server.serve() as srv:
    yield srv


@pytest.fixture
def sources(server, monkeypatch):
  return fetch_server.point_sources(server, monkeypatch)


def _run(argv, capsys):
  return fetch_server.run(argv, capsys)


def _one_error(rc, out, err) -> str:
  """The one `error:` line of a refused fetch (exit 2, no traceback, nothing on stdout)."""
  assert rc == 2 and out == "" and "Traceback" not in err, err
  errors = [line for line in err.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1, err
  return errors[0]


def _files(folder) -> dict:
  return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
          if p.is_file()}


def _offline_url() -> str:
  with socket.socket() as s:  # a port nothing listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  return f"http://127.0.0.1:{port}"


def _set5_tar(names, seed: int = 0) -> bytes:
  files = {}
  for i, n in enumerate(names):
    files[f"benchmark/Set5/HR/{n}.png"] = fetch_server.png(24, seed + i)
    files[f"benchmark/Set5/LR_bicubic/X2/{n}x2.png"] = fetch_server.png(12, seed + 100 + i)
  return fetch_server.tar(files)


def test_overwrite_without_network_keeps_the_weights(tmp_path, server, sources, monkeypatch,
                                                      capsys):
  assert _run(["imdn", "--data_dir", str(tmp_path)], capsys)[0] == 0
  before = _files(tmp_path)
  offline = _offline_url()
  monkeypatch.setitem(SOURCES, "imdn", Source("imdn", "files", "w", "weights/imdn", tuple(
      Remote(f"{offline}/{r.filename}", r.sha256) for r in SOURCES["imdn"].remotes)))
  msg = _one_error(*_run(["imdn", "--overwrite", "--data_dir", str(tmp_path)], capsys))
  assert _files(tmp_path) == before and len(before) == 3
  assert "cannot download" in msg and "check the network connection" in msg
  assert msg.endswith("IMDN_x2.pth is kept as it was)")


def test_offline_fetch_leaves_nothing_new(tmp_path, monkeypatch, capsys):
  real = SOURCES["set5"]
  monkeypatch.setitem(SOURCES, "set5", Source(
      "set5", "images", "", real.dest, (Remote(_offline_url() + "/benchmark.tar"),),
      members=real.members, expect=5))
  empty = tmp_path / "empty"
  empty.mkdir()
  for data_dir in (tmp_path / "new" / "data", empty):
    msg = _one_error(*_run(["set5", "--data_dir", str(data_dir)], capsys))
    assert "or put a copy at" in msg
  assert not (tmp_path / "new").exists() and list(empty.iterdir()) == []


def test_overwrite_from_a_short_archive_keeps_the_set(tmp_path, server, sources, capsys):
  assert _run(["set5", "--data_dir", str(tmp_path)], capsys)[0] == 0
  before = _files(tmp_path / "benchmark")
  server.files["/short.tar"] = _set5_tar(SET5[:2], seed=7)
  msg = _one_error(*_run(["set5", "--overwrite", "--url", server.url + "/short.tar",
                          "--data_dir", str(tmp_path)], capsys))
  assert _files(tmp_path / "benchmark") == before
  assert "find 2 of 5 images" in msg and "left as it was" in msg
  assert not (tmp_path / "downloads" / "short.tar").exists()  # unverified and failed: not kept
  assert not [p for p in tmp_path.rglob(".*")]  # no staging, aside copy, part or lock left

  # A complete replacement does replace the set, whole.
  server.files["/other.tar"] = _set5_tar(SET5, seed=50)
  (tmp_path / "benchmark" / "Set5" / "HR" / "mine.png").write_bytes(b"x")
  assert _run(["set5", "--overwrite", "--url", server.url + "/other.tar", "--data_dir",
               str(tmp_path)], capsys)[0] == 0
  after = _files(tmp_path / "benchmark" / "Set5")
  assert "HR/mine.png" not in after and after["HR/baby.png"] == fetch_server.png(24, 50)
  assert not [p for p in tmp_path.rglob(".*")]


def test_a_swap_stopped_half_way_is_finished_by_the_next_fetch(tmp_path, server, sources,
                                                               capsys):
  assert _run(["set5", "--data_dir", str(tmp_path)], capsys)[0] == 0
  dest = tmp_path / "benchmark" / "Set5"
  before = _files(dest)
  os.replace(dest, dest.with_name(".Set5.fetch-old"))  # killed between the two renames
  assert _run(["set5", "--data_dir", str(tmp_path)], capsys)[0] == 0
  assert _files(dest) == before and not dest.with_name(".Set5.fetch-old").exists()


def test_a_part_longer_than_the_file_is_not_accepted(tmp_path, server, sources):
  body = sources["/IMDN_x2.pth"]
  url = server.url + "/IMDN_x2.pth"
  dest = tmp_path / "IMDN_x2.pth"
  etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
  for meta in (None, {"url": url, "validator": etag, "total": len(body)}):
    dl.part_path(dest).write_bytes(body + b"bytes of some other, longer file")
    if meta:
      dl.meta_path(dest).write_text(json.dumps(meta))
    assert dl.download(url, dest, None) == hashlib.sha256(body).hexdigest()  # no checksum known
    assert dest.read_bytes() == body and server.requests[-1] == ("/IMDN_x2.pth", None)
    assert not dl.part_path(dest).exists() and not dl.meta_path(dest).exists()
    dest.unlink()


@pytest.mark.parametrize("ignore_if_range", [False, True])
def test_a_part_of_another_file_is_not_resumed(tmp_path, server, sources, capsys,
                                               ignore_if_range):
  server.truncate["/benchmark.tar"] = 5000
  msg = _one_error(*_run(["set5", "--data_dir", str(tmp_path)], capsys))
  assert "rerun the same command to resume" in msg
  assert dl.part_path(tmp_path / "downloads" / "benchmark.tar").stat().st_size == 5000
  new = fetch_server.tar({f"benchmark/Set5/HR/{n}.png": fetch_server.png(24, 30 + i)
                          for i, n in enumerate(SET5)})
  server.files["/benchmark.tar"] = new  # the source changed meanwhile
  server.ignore_if_range = ignore_if_range  # then only the 206's ETag tells
  n_requests = len(server.requests)
  rc, _, err = _run(["set5", "--data_dir", str(tmp_path)], capsys)
  assert rc == 0, err
  asked = server.requests[n_requests:]
  assert asked[0] == ("/benchmark.tar", "bytes=5000-")  # If-Range sent with it
  assert len(asked) == (2 if ignore_if_range else 1)  # a 200 answer is the whole file: used
  assert (tmp_path / "downloads" / "benchmark.tar").read_bytes() == new
  record = (tmp_path / "downloads" / "benchmark.tar.sha256").read_text().split()[0]
  assert record == hashlib.sha256(new).hexdigest()


def test_an_archive_whose_images_overwrite_each_other_is_refused(tmp_path, server, capsys):
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as z:
    for i, name in enumerate(["Manga109/HR/a.png", "Manga109/a.png", "x/Manga109/a.png",
                              "Manga109/b.png"]):
      z.writestr(name, fetch_server.png(16, i))
  server.files["/m.zip"] = buf.getvalue()
  msg = _one_error(*_run(["manga109", "--url", server.url + "/m.zip", "--data_dir",
                          str(tmp_path)], capsys))
  assert "would both be written to a.png" in msg
  assert not (tmp_path / "Manga109").exists() and not list(tmp_path.rglob(".fetch-*"))


@pytest.mark.parametrize("names,words", [
    (["benchmark/Set5/HR/a.png", "benchmark/Set5/HR/a.png/b.png"], "both a file and the folder"),
    ([f"benchmark/Set5/HR/{'a' * 300}.png"], "longer than 255 bytes"),
])
def test_unwritable_member_names_are_one_line(tmp_path, server, sources, capsys, names, words):
  server.files["/bad.tar"] = fetch_server.tar({n: fetch_server.png(16, 0) for n in names})
  msg = _one_error(*_run(["set5", "--url", server.url + "/bad.tar", "--data_dir",
                          str(tmp_path)], capsys))
  assert words in msg
  assert not (tmp_path / "benchmark" / "Set5").exists()


def _jpg_tgz() -> bytes:
  files = {f"BSDS300/images/train/{i}.jpg": bytes(np.random.default_rng(i).integers(
      0, 256, 20_000, np.uint8)) for i in range(3)}
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w:gz") as t:
    for name, data in files.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      t.addfile(info, io.BytesIO(data))
  return buf.getvalue()


def _bad_crc_zip() -> bytes:
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as z:  # stored: the member's bytes sit as they are
    z.writestr("SRCNN/t1.bmp", fetch_server.bmp(16, 0))
  data = bytearray(buf.getvalue())
  data[30 + len("SRCNN/t1.bmp") + 100] ^= 0xFF
  return bytes(data)


def _bomb_zip() -> bytes:
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("SRCNN/t1.bmp", bytes(8 << 20))
  return buf.getvalue()


@pytest.mark.parametrize("name,body,words", [
    ("bsd200", _jpg_tgz()[:30_000], "damaged"),  # truncated .tar.gz
    ("t91", _bad_crc_zip(), "damaged"),
    ("t91", _bomb_zip(), "decompression bomb"),
])
def test_damaged_archives_and_bombs_are_one_line_and_not_trusted(tmp_path, server, capsys,
                                                                 monkeypatch, name, body, words):
  monkeypatch.setattr(fetch, "BOMB_FLOOR_BYTES", 1 << 20)
  server.files["/archive.tgz"] = body
  msg = _one_error(*_run([name, "--url", server.url + "/archive.tgz", "--data_dir",
                          str(tmp_path)], capsys))
  assert words in msg and "deleted the download" in msg
  assert not (tmp_path / "downloads" / "archive.tgz.sha256").exists()
  assert _files(tmp_path) == {} and not list(tmp_path.rglob(".fetch-*"))


@pytest.mark.parametrize("url,words", [
    ("notaurl", "is not an http:// or https:// address"),
    ("", "is not an http:// or https:// address"),
    ("ftp://127.0.0.1/benchmark.tar", "is not an http:// or https:// address"),
    ("http://127.0.0.1/", "names no file"),
    ("http://127.0.0.1:abc/x.tar", "is not an http:// or https:// address"),
    ("http://127.0.0.1/a b.tar", "percent-encode"),
    ("http://127.0.0.1/" + "a" * 300 + ".tar", "bytes long"),
])
def test_bad_urls_are_refused_before_any_request(tmp_path, server, sources, capsys, url, words):
  msg = _one_error(*_run(["set5", "--url", url, "--data_dir", str(tmp_path / "d")], capsys))
  assert words in msg and "--url" in msg
  assert server.requests == [] and not (tmp_path / "d").exists()


def test_data_dir_that_is_a_file(tmp_path, server, sources, capsys):
  (tmp_path / "file").write_text("mine")
  for data_dir in (tmp_path / "file", tmp_path / "file" / "sub"):
    msg = _one_error(*_run(["set5", "--data_dir", str(data_dir)], capsys))
    assert "is a file, not a folder" in msg
  assert server.requests == [] and (tmp_path / "file").read_text() == "mine"


def test_a_linked_set_folder_is_refused_before_downloading(tmp_path, server, sources, capsys):
  real = tmp_path / "elsewhere" / "Set5"
  real.mkdir(parents=True)
  (real / "mine.png").write_bytes(b"mine")
  (tmp_path / "d" / "benchmark").mkdir(parents=True)
  (tmp_path / "d" / "benchmark" / "Set5").symlink_to(real)
  msg = _one_error(*_run(["set5", "--overwrite", "--data_dir", str(tmp_path / "d")], capsys))
  assert "symbolic link" in msg
  assert server.requests == [] and _files(real) == {"mine.png": b"mine"}


def test_one_fetch_of_a_set_and_one_download_at_a_time(tmp_path, server, sources, capsys):
  with filelock.exclusive(tmp_path / ".fetch-set5.lock", "a test"):
    msg = _one_error(*_run(["set5", "--data_dir", str(tmp_path)], capsys))
  assert "already under way" in msg and f"pid {os.getpid()}" in msg and server.requests == []
  (tmp_path / "downloads").mkdir()
  with filelock.exclusive(dl.lock_path(tmp_path / "downloads" / "benchmark.tar"), "a test"):
    msg = _one_error(*_run(["set14", "--data_dir", str(tmp_path)], capsys))  # same archive
  assert "already under way" in msg and server.requests == []
  assert _run(["set5", "--data_dir", str(tmp_path)], capsys)[0] == 0
  assert not list(tmp_path.rglob("*.lock"))


class _FullDisk(io.FileIO):
  """A file on a disk that fills up after `room` bytes."""
  room = 150_000

  def write(self, data):
    left = self.room - self.tell()
    if len(data) > left:
      super().write(bytes(data[:left]))
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return super().write(data)


def test_a_full_disk_keeps_the_errno_and_says_what_was_written(tmp_path, server, sources,
                                                               monkeypatch, capsys):
  real_open = open

  def open_on_full_disk(path, mode="r", *args, **kwargs):
    if str(path).endswith(".part"):
      return _FullDisk(path, mode.replace("b", ""))
    return real_open(path, mode, *args, **kwargs)

  monkeypatch.setattr(dl, "open", open_on_full_disk, raising=False)
  msg = _one_error(*_run(["imdn", "--data_dir", str(tmp_path)], capsys))
  assert "after 150000 bytes" in msg and "[Errno 28]" in msg and "free disk space" in msg
  part = dl.part_path(tmp_path / "weights" / "imdn" / "IMDN_x2.pth")
  assert part.stat().st_size == 150_000  # kept: the next run resumes from it


def test_a_full_disk_while_extracting_keeps_nothing_partial(tmp_path, server, sources,
                                                            monkeypatch, capsys):
  real_open = open

  def open_on_full_disk(path, mode="r", *args, **kwargs):
    if ".fetch-set5.tmp" in str(path) and "w" in mode:
      return _FullDisk(path, mode.replace("b", ""))
    return real_open(path, mode, *args, **kwargs)

  monkeypatch.setattr(fetch.archives, "open", open_on_full_disk, raising=False)
  monkeypatch.setattr(_FullDisk, "room", 100)
  msg = _one_error(*_run(["set5", "--data_dir", str(tmp_path)], capsys))
  assert "after 100 bytes" in msg and "[Errno 28]" in msg and "free disk space" in msg
  assert not (tmp_path / "benchmark" / "Set5").exists() and not list(tmp_path.rglob(".fetch-*"))
  assert (tmp_path / "downloads" / "benchmark.tar").is_file()  # the archive is not at fault


def test_a_bad_first_download_is_not_recorded(tmp_path, server, sources, capsys):
  good = server.files["/benchmark.tar"]
  server.files["/benchmark.tar"] = _set5_tar(SET5[:2])
  msg = _one_error(*_run(["set5", "--data_dir", str(tmp_path)], capsys))
  assert "deleted the download" in msg
  assert not (tmp_path / "downloads" / "benchmark.tar.sha256").exists()
  server.files["/benchmark.tar"] = good
  rc, _, err = _run(["set5", "--data_dir", str(tmp_path)], capsys)
  assert rc == 0, err
  record = (tmp_path / "downloads" / "benchmark.tar.sha256").read_text().split()[0]
  assert record == hashlib.sha256(good).hexdigest()


def test_errors_name_the_recorded_checksum_and_what_to_do(tmp_path, server, sources, capsys):
  assert _run(["set5", "--data_dir", str(tmp_path)], capsys)[0] == 0
  archive = tmp_path / "downloads" / "benchmark.tar"
  record = tmp_path / "downloads" / "benchmark.tar.sha256"
  archive.unlink()
  server.files["/benchmark.tar"] = _set5_tar(SET5, seed=60)  # the source changed
  msg = _one_error(*_run(["set14", "--data_dir", str(tmp_path)], capsys))
  assert f"recorded in {record}" in msg and "delete it and fetch again" in msg
  # A damaged archive whose hash was recorded (by an older version): both files are named.
  archive.write_bytes(b"not an archive")
  record.write_text(f"{hashlib.sha256(b'not an archive').hexdigest()}  benchmark.tar\n")
  msg = _one_error(*_run(["set14", "--data_dir", str(tmp_path)], capsys))
  assert f"delete {archive} and {record}" in msg
