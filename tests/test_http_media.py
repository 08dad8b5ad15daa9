"""Bundles with media over HTTP: `yntymak sync` streams the bundle from its file and
`hq serve` streams the body into HQ_HOME/spool, then imports from that file as `hq import`
does. The spool is empty after every outcome: imported, too large, cut off, tampered.

The real server runs as a subprocess (tests/test_http_sync.py's Server), on SQLite and on
PostgreSQL (the `field` fixture)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from .helpers import PG_HOMES, Field, device_id, rows, yn
from .test_http_sync import Server

FORM = """\
id: media_http
version: "1"
title: Photos over HTTP
max_size: 5 MB
questions:
  - name: village
    type: text
    label: Village
  - name: photo
    type: image
    label: Photo
"""
WAIT = 30.0  # seconds a test waits at most for the server to get somewhere (never asserted)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def start(field: Field, tmp_path: Path) -> Iterator:
    """start(*args) -> the real HQ server of the field's HQ home, stopped afterwards."""
    started: list[Server] = []

    def run(*args: str) -> Server:
        logs = tmp_path / f"server-{len(started) + 1}"  # each server its own log files
        logs.mkdir()
        server = Server(field.hq, logs)
        started.append(server)
        server.start(0, *args)
        return server

    yield run
    for server in started:
        server.stop()


def noise_jpeg(size: int) -> bytes:
    """A real JPEG of random pixels, about `size` bytes (noise hardly compresses)."""
    side = max(16, int((size / 0.9) ** 0.5))
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def collect_photos(home: Path, folder: Path, n: int, size: int) -> dict[str, bytes]:
    """n submissions with a photo of about `size` bytes each: {file name: its bytes}
    (photos without a location are kept byte for byte)."""
    folder.mkdir(parents=True, exist_ok=True)
    form = folder / "form.yaml"
    form.write_text(FORM, encoding="utf-8")
    photos, lines = {}, []
    for i in range(n):
        name = f"IMG_{i:03d}.jpg"
        photos[name] = noise_jpeg(size)
        (folder / name).write_bytes(photos[name])
        lines.append(json.dumps({"village": f"v{i}", "photo": name}))
    (folder / "all.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    yn(home, "collect", form, "--answers", folder / "all.jsonl", "--enumerator", "aida")
    return photos


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spooled(hq: Path) -> list[str]:
    folder = hq / "spool"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def until(check, what: str) -> None:
    """Wait for `check()` to hold (the server works at its own pace); fail after WAIT s."""
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting for {what}")
        time.sleep(0.05)


def hq_media_files(hq: Path) -> list[Path]:
    root = hq / "media"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def nothing_imported(hq: Path) -> None:
    assert hq_media_files(hq) == []
    assert rows(hq, "SELECT COUNT(*) AS n FROM hq_media")[0]["n"] == 0
    assert rows(hq, "SELECT COUNT(*) AS n FROM submissions")[0]["n"] == 0
    assert rows(hq, "SELECT COUNT(*) AS n FROM hq_bundles")[0]["n"] == 0


def post(server: Server, content, device: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/bundles",
        content=content,
        headers={"X-Yntymak-Device": device, "Content-Type": "application/octet-stream", **headers},
        timeout=WAIT,
    )


def head(server: Server, device: str, length: int) -> bytes:
    return (
        f"POST /api/v1/bundles HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/octet-stream\r\nX-Yntymak-Device: {device}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode("ascii")


# -- the round trip --------------------------------------------------------------------------


@pytest.mark.slow
def test_photos_sync_to_hq_with_their_hashes_checked(field: Field, start, tmp_path: Path) -> None:
    """Several photos, each several 1 MiB chunks: the bundle passes through the spool in
    many writes, HQ keeps every file with its hash, and `hq export --media` hands them out."""
    photos = collect_photos(field.a, tmp_path / "photos", 4, 2_500_000)
    hashes = {name: sha(data) for name, data in photos.items()}
    server = start()
    out = yn(field.a, "sync", server.url)
    assert "4 revision(s) acknowledged" in out, out
    kept = rows(field.hq, "SELECT sha256, size FROM hq_media ORDER BY sha256")
    assert kept == sorted(({"sha256": sha(d), "size": len(d)} for d in photos.values()),
                          key=lambda r: r["sha256"])  # fmt: skip
    for digest in hashes.values():
        path = field.hq / "media" / digest[:2] / digest
        assert sha(path.read_bytes()) == digest
    assert len(hq_media_files(field.hq)) == 4  # no temp file beside them
    assert spooled(field.hq) == []
    assert stat.S_IMODE((field.hq / "spool").stat().st_mode) == 0o700
    export = tmp_path / "export"
    yn(field.hq, "hq", "export", "media_http", "-o", export / "data.csv", "--media", export / "m")
    with (export / "data.csv").open(encoding="utf-8") as f:
        links = [row["photo_URL"] for row in csv.DictReader(f)]
    got = {
        Path(link).name: hashlib.sha256((export / link).read_bytes()).hexdigest() for link in links
    }
    assert got == hashes
    # Acknowledged: the outbox is empty, and a second sync has nothing to send.
    assert not list((field.a / "outbox").glob("*.ykb"))
    assert "4 revision(s)" not in yn(field.a, "sync", server.url)


def peak_rss_mb(pid: int) -> float:
    """VmHWM, the peak resident memory of a running process, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_the_servers_memory_does_not_grow_with_the_bundle(
    field: Field, start, tmp_path: Path
) -> None:
    """A 48 MB bundle: held in memory it raised the server's peak by about twice that;
    streamed to the spool, by a few MB (benchmarks/http_media_bench.py: +12 MB for 990 MB)."""
    if field.hq in PG_HOMES:
        pytest.skip("the body's way to disk is the same on both engines")
    collect_photos(field.a, tmp_path / "photos", 16, 3_000_000)
    server = start("--workers", "1")
    assert server.proc is not None
    # A first, small import loads what every import needs (modules, the database).
    warm = tmp_path / "warm"
    collect_photos(field.b, warm, 1, 100_000)
    assert "1 revision(s) acknowledged" in yn(field.b, "sync", server.url)
    before = peak_rss_mb(server.proc.pid)
    assert "16 revision(s) acknowledged" in yn(field.a, "sync", server.url)
    grown = peak_rss_mb(server.proc.pid) - before
    assert grown < 24, f"the server's peak memory grew by {grown:.0f} MB for a 48 MB bundle"


# -- refusals leave nothing in the spool -------------------------------------------------


@pytest.mark.slow
def test_a_body_over_the_limit_gets_413_and_leaves_no_spool_file(field: Field, start) -> None:
    server = start("--max-bundle", "64000", "--workers", "1")
    a = device_id(field.a)
    # Declared too large: refused before a byte is read, no file made.
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    answer = b""
    with sock:
        sock.sendall(head(server, a, 100_000))
        while not answer.endswith(b"}"):  # head and body may come in two pieces
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b'"too-large"' in answer
    # Chunked (no length said): refused once the bytes pass the limit, the file removed.
    response = post(server, (b"x" * 10_000 for _ in range(10)), a)
    assert (response.status_code, response.json()["error"]) == (413, "too-large")
    assert spooled(field.hq) == []
    nothing_imported(field.hq)


@pytest.mark.slow
def test_a_client_cut_off_mid_upload_leaves_no_spool_file(field: Field, start, tmp_path) -> None:
    server = start("--workers", "1")
    a = device_id(field.a)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    try:
        sock.sendall(head(server, a, 5_000_000) + b"x" * 1_000_000)
        until(lambda: len(spooled(field.hq)) == 1, "the upload's spool file")
        assert stat.S_IMODE((field.hq / "spool" / spooled(field.hq)[0]).stat().st_mode) == 0o600
    finally:
        sock.close()
    until(lambda: spooled(field.hq) == [], "the spool file to go")
    # The server keeps serving: a real sync with a photo goes through.
    assert httpx.get(f"{server.url}/healthz", timeout=WAIT).status_code == 200
    collect_photos(field.a, tmp_path / "photos", 1, 300_000)
    assert "1 revision(s) acknowledged" in yn(field.a, "sync", server.url)
    assert rows(field.hq, "SELECT COUNT(*) AS n FROM hq_media")[0]["n"] == 1
    assert spooled(field.hq) == []


@pytest.mark.slow
def test_a_tampered_media_byte_is_refused_as_hq_import_refuses_it(
    field: Field, start, tmp_path: Path
) -> None:
    collect_photos(field.a, tmp_path / "photos", 2, 1_500_000)
    bundle = field.bundle(field.a)
    data = bytearray(bundle.read_bytes())
    data[-64 - 100] ^= 1  # inside the last photo's last encrypted chunk
    server = start()
    response = post(server, bytes(data), device_id(field.a))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "bad-signature"
    assert spooled(field.hq) == []
    nothing_imported(field.hq)
    # The same file through `hq import`: the same refusal.
    bundle.write_bytes(bytes(data))
    assert "signature" in field.import_(bundle, code=2)
    out = yn(field.hq, "bundle", "verify", bundle, "--json", code=2)
    assert "bad-signature" in out or "signature" in out
    nothing_imported(field.hq)


# -- the laptop's side -----------------------------------------------------------------------


@pytest.fixture
def recording_hq() -> Iterator:
    """start(answer) -> (url, bodies): a fake HQ that reads each upload whole, appends the
    sha256 of its body to `bodies`, then lets answer(handler, n) reply (n: uploads so far)."""
    servers: list[ThreadingHTTPServer] = []

    def start(answer) -> tuple[str, list[str]]:
        bodies: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                left = int(self.headers["Content-Length"])
                digest = hashlib.sha256()
                while left:
                    piece = self.rfile.read(min(left, 65536))
                    digest.update(piece)
                    left -= len(piece)
                bodies.append(digest.hexdigest())
                answer(self, len(bodies))

            def log_message(self, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}", bodies

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def answer_json(h: BaseHTTPRequestHandler, status: int) -> None:
    body = b'{"error": "invalid", "message": "no"}'
    h.send_response(status)
    h.send_header("Retry-After", "0")
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def test_a_retried_upload_sends_the_whole_file_again(field: Field, tmp_path, recording_hq) -> None:
    """503 then a refusal: two uploads, each the outbox file from its first byte (a retry
    re-opens the file; the laptop never holds the bundle whole)."""
    collect_photos(field.a, tmp_path / "photos", 1, 1_200_000)
    url, bodies = recording_hq(lambda h, n: answer_json(h, 503 if n == 1 else 400))
    out = yn(field.a, "sync", url, "--timeout", "60", code=2)
    assert "HTTP 400" in out
    (sent,) = list((field.a / "outbox").glob("*.ykb"))
    assert bodies == [sha(sent.read_bytes())] * 2


def test_hq_importing_a_large_bundle_is_waited_for_not_sent_again(
    field: Field, tmp_path, recording_hq, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HQ answers an upload once it has imported it: with many photos that is longer than
    one socket read may wait (READ_TIMEOUT, 10 s; 0.2 s here). The laptop waits for the
    answer within --timeout instead of sending the whole bundle again."""
    from yntymak_cli.sync import http as http_mod

    monkeypatch.setattr(http_mod, "READ_TIMEOUT", 0.2)

    def slowly(h: BaseHTTPRequestHandler, n: int) -> None:
        time.sleep(1.0)  # "importing"
        answer_json(h, 400)

    collect_photos(field.a, tmp_path / "photos", 1, 300_000)
    url, bodies = recording_hq(slowly)
    out = yn(field.a, "sync", url, "--timeout", "60", code=2)
    assert "HTTP 400" in out
    assert len(bodies) == 1


# -- the spool folder ------------------------------------------------------------------------


def test_the_spool_is_owner_only_and_keeps_only_live_servers_files(tmp_path: Path) -> None:
    from yntymak_cli.server import spool

    folder = tmp_path / "spool"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = folder / f"upload-{gone.stdout.strip()}-abc.part"
    mine = folder / f"upload-{os.getpid()}-def.part"
    other = folder / "notes.txt"
    for path in (dead, mine, other):
        path.write_bytes(b"x")
    # A live PID's file not written for a minute, its lock free: an earlier process with
    # the same PID left it (a restart in a container reuses PIDs).
    reused = folder / "upload-1-old.part"
    reused.write_bytes(b"x")
    old = time.time() - 2 * spool.STALE_SECONDS
    os.utime(reused, (old, old))
    spool.prepare(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(os.listdir(folder)) == sorted([mine.name, other.name])
    # An upload in progress keeps its lock: left alone however old it looks.
    busy = spool.SpoolFile(folder)
    os.utime(busy.path, (old, old))
    spool.prepare(folder)
    assert busy.path.exists()
    busy.remove()
    upload = spool.SpoolFile(folder)
    upload.write(b"abc")
    assert stat.S_IMODE(upload.path.stat().st_mode) == 0o600
    upload.finish()
    assert upload.path.read_bytes() == b"abc"
    upload.remove()
    upload.remove()
    assert not upload.path.exists()
    (tmp_path / "file").write_bytes(b"")
    from yntymak_cli.errors import InvalidInput

    with pytest.raises(InvalidInput, match="cannot keep uploads in"):
        spool.prepare(tmp_path / "file")
