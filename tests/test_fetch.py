"""memsr_jax.data.fetch against a local HTTP server on 127.0.0.1 serving fixture archives."""
import hashlib
import http.server
import io
import stat
import tarfile
import threading
import zipfile

import numpy as np
from PIL import Image
import pytest

from memsr_jax import cli
from memsr_jax.data import download as dl
from memsr_jax.data import fetch
from memsr_jax.data import folders
from memsr_jax.data.sources import SOURCES
from memsr_jax.data.sources import Remote
from memsr_jax.data.sources import Source


class _Handler(http.server.BaseHTTPRequestHandler):
  """Serves `server.files`; honours Range unless `server.ignore_range`; a path in
  `server.truncate` is cut after that many bytes once (the connection closes mid-body)."""

  def do_GET(self):  # noqa: N802 (http.server's name)
    srv = self.server
    srv.requests.append((self.path, self.headers.get("Range")))
    body = srv.files.get(self.path)
    if body is None:
      self.send_error(404)
      return
    start = 0
    rng = self.headers.get("Range")
    if rng and not srv.ignore_range:
      start = int(rng.split("=")[1].split("-")[0])
      if start >= len(body):
        self.send_response(416)
        self.end_headers()
        return
      self.send_response(206)
      self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
    else:
      self.send_response(200)
    self.send_header("Content-Length", str(len(body) - start))
    self.end_headers()
    cut = srv.truncate.pop(self.path, None)
    self.wfile.write(body[start:cut] if cut is not None else body[start:])
    if cut is not None:
      self.close_connection = True

  def log_message(self, *args):
    del args


@pytest.fixture
def server():
  srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
  srv.files, srv.requests, srv.truncate, srv.ignore_range = {}, [], {}, False
  thread = threading.Thread(target=srv.serve_forever, daemon=True)
  thread.start()
  srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
  yield srv
  srv.shutdown()
  srv.server_close()


def _png(size: int, seed: int) -> bytes:
  rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), np.uint8)
  buf = io.BytesIO()
  Image.fromarray(rgb).save(buf, format="PNG")
  return buf.getvalue()


def _tar(files: dict[str, bytes]) -> bytes:
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w") as t:
    for name, data in files.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      t.addfile(info, io.BytesIO(data))
  return buf.getvalue()


def _benchmark_tar() -> bytes:
  files = {}
  for folder, names in (("Set5", ["baby", "bird", "butterfly", "head", "woman"]),
                        ("Set14", [f"img{i:02d}" for i in range(14)])):
    for i, n in enumerate(names):
      files[f"benchmark/{folder}/HR/{n}.png"] = _png(24, i)
      files[f"benchmark/{folder}/LR_bicubic/X2/{n}x2.png"] = _png(12, 100 + i)
  files["benchmark/readme.txt"] = b"not an image"
  return _tar(files)


@pytest.fixture
def sources(server, monkeypatch):
  """SOURCES entries pointing at the local server (same layout rules as the real ones)."""
  server.files["/benchmark.tar"] = _benchmark_tar()
  for name in ("set5", "set14"):
    real = SOURCES[name]
    monkeypatch.setitem(SOURCES, name, Source(
        real.name, real.kind, real.what, real.dest, (Remote(server.url + "/benchmark.tar"),),
        members=real.members, expect=real.expect))
  weights = {f"/IMDN_x{s}.pth": bytes(np.random.default_rng(s).integers(0, 256, 300_000,
                                                                       np.uint8))
             for s in (2, 3, 4)}
  server.files.update(weights)
  remotes = tuple(Remote(server.url + p, hashlib.sha256(b).hexdigest()) for p, b in
                  weights.items())
  monkeypatch.setitem(SOURCES, "imdn", Source("imdn", "files", "w", "weights/imdn", remotes))
  return weights


def _run(argv, capsys):
  rc = cli.run(fetch.main, argv)
  out, err = capsys.readouterr()
  return rc, out, err


def test_fetch_sets_into_the_loader_layout_and_skip_when_present(tmp_path, server, sources,
                                                                 capsys):
  rc, _, err = _run(["set5", "--data_dir", str(tmp_path)], capsys)
  assert rc == 0, err
  pairs = folders.list_pairs("set5", str(tmp_path), 2)
  assert [p.name for p in pairs] == ["baby", "bird", "butterfly", "head", "woman"]
  assert all(p.lr_path is not None for p in pairs)  # the shipped LR_bicubic/X2 is used
  assert stat.S_IMODE(pairs[0].hr_path.stat().st_mode) == 0o644
  archive = tmp_path / "downloads" / "benchmark.tar"
  # No published checksum: said so, and the hash it got is recorded.
  assert "no published checksum" in err
  recorded = (tmp_path / "downloads" / "benchmark.tar.sha256").read_text().split()[0]
  assert recorded == hashlib.sha256(server.files["/benchmark.tar"]).hexdigest()
  assert not list(tmp_path.glob(".fetch-*")) and not list(archive.parent.glob(".*.part"))

  # set14 comes from the same archive: no second download.
  n_requests = len(server.requests)
  rc, _, err = _run(["set14", "--data_dir", str(tmp_path)], capsys)
  assert rc == 0, err
  assert len(server.requests) == n_requests
  assert len(folders.list_pairs("set14", str(tmp_path), 2)) == 14

  rc, _, err = _run(["set5", "set14", "--data_dir", str(tmp_path)], capsys)
  assert rc == 0 and err.count("already there") == 2
  assert len(server.requests) == n_requests


def test_weights_verified_and_mode_0644(tmp_path, server, sources, capsys):
  rc, _, err = _run(["imdn", "--data_dir", str(tmp_path)], capsys)
  assert rc == 0, err
  for path, body in sources.items():
    out = tmp_path / "weights" / "imdn" / path.lstrip("/")
    assert out.read_bytes() == body
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
  n_requests = len(server.requests)
  rc, _, err = _run(["imdn", "--data_dir", str(tmp_path)], capsys)
  assert rc == 0 and err.count("already downloaded") == 3 and len(server.requests) == n_requests


def test_checksum_mismatch_is_one_line_and_leaves_nothing(tmp_path, server, sources, capsys,
                                                          monkeypatch):
  wrong = Remote(server.url + "/IMDN_x2.pth", "0" * 64)
  monkeypatch.setitem(SOURCES, "imdn", Source("imdn", "files", "w", "weights/imdn", (wrong,)))
  rc, out, err = _run(["imdn", "--data_dir", str(tmp_path)], capsys)
  assert rc == 2 and out == ""
  errors = [line for line in err.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0]  # after the progress
  assert "sha256" in errors[0] and "0" * 64 in errors[0]
  folder = tmp_path / "weights" / "imdn"
  assert not (folder / "IMDN_x2.pth").exists()
  assert list(folder.iterdir()) == []  # no part file either


def test_resume_after_a_truncated_download(tmp_path, server, sources, capsys):
  body = sources["/IMDN_x3.pth"]
  server.truncate["/IMDN_x3.pth"] = 100_000
  remote = next(r for r in SOURCES["imdn"].remotes if r.url.endswith("x3.pth"))
  dest = tmp_path / "IMDN_x3.pth"
  with pytest.raises(dl.DownloadError, match="rerun the same command to resume"):
    dl.download(remote.url, dest, remote.sha256)
  assert not dest.exists()
  assert dl.part_path(dest).stat().st_size == 100_000
  digest = dl.download(remote.url, dest, remote.sha256)
  assert digest == remote.sha256 and dest.read_bytes() == body
  assert server.requests[-1] == ("/IMDN_x3.pth", "bytes=100000-")
  assert not dl.part_path(dest).exists()


def test_server_without_range_support_restarts_the_download(tmp_path, server, sources):
  server.ignore_range = True
  remote = next(r for r in SOURCES["imdn"].remotes if r.url.endswith("x4.pth"))
  dest = tmp_path / "IMDN_x4.pth"
  dl.part_path(dest).write_bytes(b"stale bytes from an earlier run")
  assert dl.download(remote.url, dest, remote.sha256) == remote.sha256
  assert dest.read_bytes() == sources["/IMDN_x4.pth"]


def test_recorded_checksum_catches_a_changed_archive(tmp_path, server, sources, capsys):
  assert _run(["set5", "--data_dir", str(tmp_path)], capsys)[0] == 0
  archive = tmp_path / "downloads" / "benchmark.tar"
  archive.write_bytes(archive.read_bytes()[:-10] + b"0123456789")
  rc, _, err = _run(["set14", "--data_dir", str(tmp_path)], capsys)
  assert rc == 2 and "not the expected" in err
  assert not (tmp_path / "benchmark" / "Set14").exists()


def test_unreachable_server_and_unknown_names(tmp_path, server, capsys):
  rc, _, err = _run(["set5", "--url", server.url + "/missing.tar", "--data_dir", str(tmp_path)],
                    capsys)
  assert rc == 2 and "HTTP 404" in err
  rc, _, err = _run(["set6", "--data_dir", str(tmp_path)], capsys)
  assert rc == 2 and "unknown name 'set6'" in err
  rc, _, err = _run(["manga109", "--data_dir", str(tmp_path)], capsys)
  assert rc == 2 and "manga109.org" in err


def test_zip_with_url_override_and_unsafe_members(tmp_path, server, capsys):
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as z:
    for i in range(91):
      z.writestr(f"SRCNN/Train/{'t' if i < 66 else 'tt'}{i + 1}.bmp", _bmp(16, i))
    z.writestr("../t999.bmp", _bmp(16, 0))  # outside: never written
  server.files["/mirror/t91.zip"] = buf.getvalue()
  rc, _, err = _run(["t91", "--url", server.url + "/mirror/t91.zip", "--data_dir",
                     str(tmp_path)], capsys)
  assert rc == 0, err
  assert len(folders.list_pairs("t91", str(tmp_path), 2)) == 91
  assert not (tmp_path.parent / "t999.bmp").exists()
  assert "t999.bmp" not in {p.name for p in (tmp_path / "T91").iterdir()}


def _bmp(size: int, seed: int) -> bytes:
  rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), np.uint8)
  buf = io.BytesIO()
  Image.fromarray(rgb).save(buf, format="BMP")
  return buf.getvalue()


def test_the_table_is_complete():
  wanted = {"set5", "set14", "b100", "urban100", "manga109", "div2k", "t91", "bsd200", "imdn"}
  assert wanted <= set(SOURCES)
  for s in SOURCES.values():
    assert s.remotes or s.manual, s.name
    for r in s.remotes:
      assert r.url.startswith(("http://", "https://")) and r.checksum_source
      assert r.sha256 is None or len(r.sha256) == 64
