"""A local HTTP server on 127.0.0.1 and tiny archives for the fetch tests (not a test module)."""
import contextlib
import hashlib
import http.server
import io
import tarfile
import threading

import numpy as np
from PIL import Image

from memsr_jax.data import fetch
from memsr_jax.data.sources import SOURCES
from memsr_jax.data.sources import Remote
from memsr_jax.data.sources import Source
from memsr_jax.utils import cli


class _Handler(http.server.BaseHTTPRequestHandler):
  """Serves `server.files` with a strong ETag (from the content); honours Range and If-Range
  unless `server.ignore_range` / `server.ignore_if_range`; a path in `server.truncate` is cut
  after that many bytes once (the connection closes mid-body)."""

  def do_GET(self):  # noqa: N802 (http.server's name)
    srv = self.server
    srv.requests.append((self.path, self.headers.get("Range")))
    body = srv.files.get(self.path)
    if body is None:
      self.send_error(404)
      return
    etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
    start = 0
    rng = self.headers.get("Range")
    if_range = self.headers.get("If-Range")
    if rng and not srv.ignore_range and (if_range in (None, etag) or srv.ignore_if_range):
      start = int(rng.split("=")[1].split("-")[0])
      if start >= len(body):
        self.send_response(416)
        self.send_header("Content-Range", f"bytes */{len(body)}")
        self.send_header("Content-Length", "0")
        self.end_headers()
        return
      self.send_response(206)
      self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
    else:
      self.send_response(200)
    self.send_header("ETag", etag)
    self.send_header("Content-Length", str(len(body) - start))
    self.end_headers()
    cut = srv.truncate.pop(self.path, None)
    self.wfile.write(body[start:cut] if cut is not None else body[start:])
    if cut is not None:
      self.close_connection = True

  def log_message(self, *args):
    del args


@contextlib.contextmanager
def serve():
  """The server, with `files` (path → bytes), `requests` (path, Range) and the switches above."""
  srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
  srv.files, srv.requests, srv.truncate = {}, [], {}
  srv.ignore_range = srv.ignore_if_range = False
  thread = threading.Thread(target=srv.serve_forever, daemon=True)
  thread.start()
  srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
  try:
    yield srv
  finally:
    srv.shutdown()
    srv.server_close()


def png(size: int, seed: int) -> bytes:
  rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), np.uint8)
  buf = io.BytesIO()
  Image.fromarray(rgb).save(buf, format="PNG")
  return buf.getvalue()


def tar(files: dict[str, bytes]) -> bytes:
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w") as t:
    for name, data in files.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      t.addfile(info, io.BytesIO(data))
  return buf.getvalue()


def benchmark_tar() -> bytes:
  files = {}
  for folder, names in (("Set5", ["baby", "bird", "butterfly", "head", "woman"]),
                        ("Set14", [f"img{i:02d}" for i in range(14)])):
    for i, n in enumerate(names):
      files[f"benchmark/{folder}/HR/{n}.png"] = png(24, i)
      files[f"benchmark/{folder}/LR_bicubic/X2/{n}x2.png"] = png(12, 100 + i)
  files["benchmark/readme.txt"] = b"not an image"
  return tar(files)


def point_sources(server, monkeypatch):
  """SOURCES entries pointing at the local server (same layout rules as the real ones)."""
  server.files["/benchmark.tar"] = benchmark_tar()
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


def run(argv, capsys):
  rc = cli.run(fetch.main, argv)
  out, err = capsys.readouterr()
  return rc, out, err


def bmp(size: int, seed: int) -> bytes:
  rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), np.uint8)
  buf = io.BytesIO()
  Image.fromarray(rgb).save(buf, format="BMP")
  return buf.getvalue()
