"""memsr_jax.data.fetch against a local HTTP server on 127.0.0.1 serving fixture archives."""
import hashlib
import io
import json
import stat
import zipfile

import fetch_server  # tests/ is on sys.path under pytest
import pytest

from memsr_jax.data import download as dl
from memsr_jax.data import fetch
from memsr_jax.data import folders
from memsr_jax.data.sources import SOURCES
from memsr_jax.data.sources import Remote
from memsr_jax.data.sources import Source


@pytest.fixture
def server():
  with fetch_server.serve() as srv:
    yield srv


@pytest.fixture
def sources(server, monkeypatch):
  return fetch_server.point_sources(server, monkeypatch)


def test_fetch_sets_into_the_loader_layout_and_skip_when_present(tmp_path, server, sources,
                                                                 capsys):
  rc, _, err = fetch_server.run(["set5", "--data_dir", str(tmp_path)], capsys)
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
  rc, _, err = fetch_server.run(["set14", "--data_dir", str(tmp_path)], capsys)
  assert rc == 0, err
  assert len(server.requests) == n_requests
  assert len(folders.list_pairs("set14", str(tmp_path), 2)) == 14

  rc, _, err = fetch_server.run(["set5", "set14", "--data_dir", str(tmp_path)], capsys)
  assert rc == 0 and err.count("already there") == 2
  assert len(server.requests) == n_requests


def test_weights_verified_and_mode_0644(tmp_path, server, sources, capsys):
  rc, _, err = fetch_server.run(["imdn", "--data_dir", str(tmp_path)], capsys)
  assert rc == 0, err
  for path, body in sources.items():
    out = tmp_path / "weights" / "imdn" / path.lstrip("/")
    assert out.read_bytes() == body
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
  n_requests = len(server.requests)
  rc, _, err = fetch_server.run(["imdn", "--data_dir", str(tmp_path)], capsys)
  assert rc == 0 and err.count("already downloaded") == 3 and len(server.requests) == n_requests


def test_checksum_mismatch_is_one_line_and_leaves_nothing(tmp_path, server, sources, capsys,
                                                          monkeypatch):
  wrong = Remote(server.url + "/IMDN_x2.pth", "0" * 64)
  monkeypatch.setitem(SOURCES, "imdn", Source("imdn", "files", "w", "weights/imdn", (wrong,)))
  rc, out, err = fetch_server.run(["imdn", "--data_dir", str(tmp_path)], capsys)
  assert rc == 2 and out == ""
  errors = [line for line in err.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0]  # after the progress
  assert "sha256" in errors[0] and "0" * 64 in errors[0]
  assert not (tmp_path / "weights").exists()  # no part file, no folder either


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
  body = sources["/IMDN_x4.pth"]
  dl.part_path(dest).write_bytes(body[:1000])
  dl.meta_path(dest).write_text(json.dumps({  # a resumable part: Range is asked for
      "url": remote.url, "validator": f'"{remote.sha256[:16]}"', "total": len(body)}))
  assert dl.download(remote.url, dest, remote.sha256) == remote.sha256
  assert dest.read_bytes() == body
  assert server.requests == [("/IMDN_x4.pth", "bytes=1000-")]  # the 200 answer was the file


def test_recorded_checksum_catches_a_changed_archive(tmp_path, server, sources, capsys):
  assert fetch_server.run(["set5", "--data_dir", str(tmp_path)], capsys)[0] == 0
  archive = tmp_path / "downloads" / "benchmark.tar"
  archive.write_bytes(archive.read_bytes()[:-10] + b"0123456789")
  rc, _, err = fetch_server.run(["set14", "--data_dir", str(tmp_path)], capsys)
  assert rc == 2 and "not the expected" in err
  assert not (tmp_path / "benchmark" / "Set14").exists()


def test_unreachable_server_and_unknown_names(tmp_path, server, capsys):
  rc, _, err = fetch_server.run(["set5", "--url", server.url + "/missing.tar", "--data_dir",
                                 str(tmp_path)], capsys)
  assert rc == 2 and "HTTP 404" in err
  rc, _, err = fetch_server.run(["set6", "--data_dir", str(tmp_path)], capsys)
  assert rc == 2 and "unknown name 'set6'" in err
  rc, _, err = fetch_server.run(["manga109", "--data_dir", str(tmp_path)], capsys)
  assert rc == 2 and "manga109.org" in err


def test_zip_with_url_override_and_unsafe_members(tmp_path, server, capsys):
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as z:
    for i in range(91):
      z.writestr(f"SRCNN/Train/{'t' if i < 66 else 'tt'}{i + 1}.bmp", fetch_server.bmp(16, i))
    z.writestr("../t999.bmp", fetch_server.bmp(16, 0))  # outside: never written
  server.files["/mirror/t91.zip"] = buf.getvalue()
  rc, _, err = fetch_server.run(["t91", "--url", server.url + "/mirror/t91.zip", "--data_dir",
                                 str(tmp_path)], capsys)
  assert rc == 0, err
  assert len(folders.list_pairs("t91", str(tmp_path), 2)) == 91
  assert not (tmp_path.parent / "t999.bmp").exists()
  assert "t999.bmp" not in {p.name for p in (tmp_path / "T91").iterdir()}


def test_the_table_is_complete():
  wanted = {"set5", "set14", "b100", "urban100", "manga109", "div2k", "t91", "bsd200", "imdn"}
  assert wanted <= set(SOURCES)
  for s in SOURCES.values():
    assert s.remotes or s.manual, s.name
    for r in s.remotes:
      assert r.url.startswith(("http://", "https://")) and r.checksum_source
      fetch.check_url(r.url)  # what --url accepts
      assert r.sha256 is None or len(r.sha256) == 64
