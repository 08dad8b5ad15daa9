"""`yntymak sync` against the real HQ server (`yntymak hq serve`), run as a subprocess on
127.0.0.1 with port 0: the same bundles and receipts as the USB path, nothing lost or doubled.

A few tests talk to a tiny hostile server of their own (http.server in a thread) for what the
real one never does: an endless answer, a message full of escape sequences, 503 forever.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .helpers import Field, collect_in, device_id, english_words, rows, snapshot, write_answers, yn

SERVING = re.compile(r"Serving HQ on (https?://\S+)")
START_TIMEOUT = 30.0  # seconds for the server to print its address


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not take loopback traffic (httpx honours NO_PROXY)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


class Server:
    """`yntymak --home HOME hq serve --bind 127.0.0.1:PORT` as a subprocess."""

    def __init__(self, home: Path, log_dir: Path) -> None:
        self.home = home
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.port = 0
        self.starts = 0

    def start(self, port: int = 0, *args: str) -> str:
        assert self.proc is None
        self.starts += 1
        out = self.log_dir / f"serve-{self.starts}.out"
        err = self.log_dir / f"serve-{self.starts}.err"
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"}
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "yntymak_cli",
                    "--home",
                    str(self.home),
                    "hq",
                    "serve",
                    "--bind",
                    f"127.0.0.1:{port}",
                    *args,
                ],
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = SERVING.search(out.read_text(encoding="utf-8", errors="replace"))
            if found:
                self.url = found.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
                return self.url
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"hq serve did not start: {err.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def server(field: Field, tmp_path: Path) -> Iterator[Server]:
    """The real HQ server of the `field` fixture's HQ home, stopped (or killed) afterwards."""
    s = Server(field.hq, tmp_path)
    try:
        s.start()
        yield s
    finally:
        s.stop()


def outbox(home: Path) -> list[str]:
    folder = home / "outbox"
    return sorted(p.name for p in folder.glob("*.ykb")) if folder.is_dir() else []


def summary(out: str) -> str:
    (line,) = [ln for ln in out.splitlines() if ln.startswith("Synced with HQ:")]
    return line


def hq_submissions(f: Field) -> list[dict[str, Any]]:
    return rows(f.hq, "SELECT uuid, revision, status FROM submissions ORDER BY uuid")


# -- two laptops, edits and voids: HQ as after the same bundles from files ------------------


@pytest.mark.slow
def test_two_laptops_sync_edit_void_and_hq_equals_file_import(
    field: Field, server: Server, monkeypatch: pytest.MonkeyPatch, twin: Any
) -> None:
    f = field
    import yntymak_cli.sync.http as http_mod

    # Every bundle that goes over the wire, kept for the comparison HQ (sync removes its
    # outbox copy once HQ acknowledged it).
    sent_dir = f.tmp / "sent"
    sent_dir.mkdir()
    original = http_mod._chunks

    def keep(path: Path, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        shutil.copy(path, sent_dir / path.name)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(http_mod, "_chunks", keep)

    a1 = collect_in(f.a, f.tmp, "Ак-Суу")
    a2 = collect_in(f.a, f.tmp, "Кара-Суу")
    b1 = collect_in(f.b, f.tmp, "Ат-Башы")
    out = yn(f.a, "sync", server.url)
    assert summary(out) == (
        "Synced with HQ: 1 bundle(s) sent, 2 revision(s) acknowledged, 0 refused, 0 HQ decision(s)."
    )
    assert summary(yn(f.b, "sync", server.url)).startswith("Synced with HQ: 1 bundle(s) sent")
    assert outbox(f.a) == outbox(f.b) == []  # acknowledged: the database can make them again

    edited = write_answers(f.tmp / "edit.yaml", "Жаңы-Айыл")
    yn(f.a, "submissions", "edit", a1, "--answers", edited, "--enumerator", "aida")
    yn(f.a, "submissions", "void", a2, "--reason", "duplicate")
    yn(f.b, "submissions", "void", b1, "--reason", "test")
    out = yn(f.a, "sync", server.url)
    assert summary(out) == (
        # The edit's new revision, and the void of a revision HQ already held.
        "Synced with HQ: 1 bundle(s) sent, 1 revision(s) acknowledged, 1 void(s), 0 refused, "
        "0 HQ decision(s)."
    ), out
    yn(f.b, "sync", server.url)
    # Nothing left to send: a sync with nothing new sends nothing.
    assert summary(yn(f.a, "sync", server.url)).startswith("Synced with HQ: 0 bundle(s) sent")
    assert "Nothing to send" in yn(f.a, "bundle", "create", "-o", f.tmp / "none")

    assert hq_submissions(f) == sorted(
        [
            {"uuid": a1, "revision": 2, "status": "final"},
            {"uuid": a2, "revision": 1, "status": "void"},
            {"uuid": b1, "revision": 1, "status": "void"},
        ],
        key=lambda r: r["uuid"],
    )

    # A second HQ with the same keys and devices imports the same bundles from files.
    hq2 = f.tmp / "hq2"
    env = twin(hq2)
    sent = sorted(sent_dir.glob("*.ykb"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    assert len(sent) == 4
    receipts2 = f.tmp / "receipts2"
    yn(hq2, "hq", "import", *sent, "--receipts", receipts2, env=env)
    over_http, from_files = snapshot(f.hq), snapshot(hq2)
    for table in ("forms", "submissions", "revisions", "hq_bundles"):
        assert over_http[table] == from_files[table], table


# -- where the URL comes from ---------------------------------------------------------------


@pytest.mark.slow
def test_url_from_config_and_from_trust_hq(field: Field, server: Server, tmp_path: Path) -> None:
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    collect_in(f.b, f.tmp, "Ат-Башы")
    assert "hq_url = " in yn(f.a, "config", "set", "hq_url", server.url + "/")
    shown = yn(f.a, "config", "show")
    assert re.search(rf"^hq_url\s+{re.escape(server.url)}\s", shown, re.M), shown
    assert "1 bundle(s) sent" in summary(yn(f.a, "sync"))

    out = yn(f.b, "keys", "trust-hq", f.tmp / "hq.pub", "--url", server.url)
    assert f"hq_url = {server.url}: saved" in out
    assert "1 bundle(s) sent" in summary(yn(f.b, "sync"))

    # The URL on the command line wins over the remembered one (a dead port here).
    yn(f.a, "config", "set", "hq_url", "http://127.0.0.1:9")
    collect_in(f.a, f.tmp, "Кара-Суу")
    assert "1 bundle(s) sent" in summary(yn(f.a, "sync", server.url))

    # No URL anywhere: says where to give it; a bad one is refused before anything is done.
    yn(f.a, "config", "unset", "hq_url")
    assert "yntymak config set hq_url URL" in yn(f.a, "sync", code=2)
    assert "not an HQ address" in yn(f.a, "config", "set", "hq_url", "ftp://hq", code=2)
    assert "not an HQ address" in yn(f.a, "sync", "hq.example.org", code=2)
    bad = yn(f.b, "keys", "trust-hq", f.tmp / "hq.pub", "--url", "http://u:p@hq", code=2)
    assert "not an HQ address" in bad


# -- nothing lost: a lost receipt, a server that is down --------------------------------------


@pytest.mark.slow
def test_a_receipt_lost_on_the_way_is_recovered_by_the_next_sync(
    field: Field, server: Server
) -> None:
    import httpx

    f = field
    uuid = collect_in(f.a, f.tmp, "Ак-Суу")
    # A bundle in the outbox that reached HQ, whose answer never came back.
    yn(f.a, "bundle", "create", "-o", f.a / "outbox")
    (name,) = outbox(f.a)
    data = (f.a / "outbox" / name).read_bytes()
    headers = {"Content-Type": "application/octet-stream", "X-Yntymak-Device": device_id(f.a)}
    with httpx.Client(trust_env=False) as client:
        first = client.post(f"{server.url}/api/v1/bundles", content=data, headers=headers)
    assert first.status_code == 200 and first.content[:3] == b"YKR"
    assert hq_submissions(f) == [{"uuid": uuid, "revision": 1, "status": "final"}]
    assert rows(f.a, "SELECT synced_at FROM revisions") == [{"synced_at": None}]

    out = yn(f.a, "sync", server.url)
    assert summary(out).startswith("Synced with HQ: 1 bundle(s) sent, 1 revision(s) acknowledged")
    assert outbox(f.a) == []
    assert rows(f.a, "SELECT synced_at IS NOT NULL AS acked FROM revisions") == [{"acked": 1}]
    # HQ holds it exactly once, from one bundle.
    assert hq_submissions(f) == [{"uuid": uuid, "revision": 1, "status": "final"}]
    assert len(rows(f.hq, "SELECT * FROM hq_bundles")) == 1


@pytest.mark.slow
def test_server_down_gives_up_in_time_and_the_next_sync_finishes(
    field: Field, server: Server
) -> None:
    f = field
    url, port = server.url, server.port
    server.stop()
    uuid = collect_in(f.a, f.tmp, "Ак-Суу")
    started = time.monotonic()
    out = yn(f.a, "sync", url, "--timeout", "1", code=1)
    assert time.monotonic() - started < 15
    (line,) = out.strip().splitlines()
    assert line.startswith(f"Error: HQ at {url} did not answer within 1 s"), line
    assert "nothing is lost: run `yntymak sync` again" in line
    assert len(outbox(f.a)) == 1  # made and kept: it goes on the next run

    server.start(port)
    out = yn(f.a, "sync", url)
    assert summary(out).startswith("Synced with HQ: 1 bundle(s) sent, 1 revision(s) acknowledged")
    assert outbox(f.a) == []
    assert hq_submissions(f) == [{"uuid": uuid, "revision": 1, "status": "final"}]
    assert len(rows(f.hq, "SELECT * FROM hq_bundles")) == 1  # the same bundle, not a new one


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["ru", "ky"])
def test_a_laptop_hq_does_not_know_is_refused_in_its_language(
    lang: str, field: Field, server: Server
) -> None:
    f = field
    stranger = f.tmp / "c"
    yn(stranger, "keys", "trust-hq", f.tmp / "hq.pub")
    collect_in(stranger, f.tmp, "Ак-Суу")
    out = yn(stranger, "sync", server.url, code=2, env={"YNTYMAK_LANG": lang})
    (line,) = out.strip().splitlines()
    device = device_id(stranger)
    assert device in line and server.url in line
    assert not english_words(line, allow={device, "device.pub", "HTTP"}), line
    assert len(outbox(stranger)) == 1  # kept: sent again once HQ enrols the laptop
    assert hq_submissions(f) == []
    # Enrolled at last: the same bundle goes through.
    yn(stranger, "keys", "export", "-o", f.tmp / "c.pub")
    yn(f.hq, "hq", "enroll", f.tmp / "c.pub", "--name", "Cholpon")
    assert "1 bundle(s) sent" in summary(yn(stranger, "sync", server.url))


@pytest.mark.slow
def test_a_bundle_sealed_to_a_previous_hq_does_not_block_sync(field: Field, server: Server) -> None:
    """After `keys trust-hq --replace`, an outbox bundle made for the old HQ is left where it
    is (the new HQ cannot read it) and its records travel in a new bundle."""
    f = field
    old_hq = f.tmp / "old-hq"
    yn(old_hq, "hq", "init", "-o", f.tmp / "old-hq.pub")
    laptop = f.tmp / "c"
    yn(laptop, "keys", "trust-hq", f.tmp / "old-hq.pub")
    uuid = collect_in(laptop, f.tmp, "Ак-Суу")
    yn(laptop, "bundle", "create", "-o", laptop / "outbox")
    (stale,) = outbox(laptop)
    yn(laptop, "keys", "trust-hq", f.tmp / "hq.pub", "--replace")
    yn(laptop, "keys", "export", "-o", f.tmp / "c.pub")
    yn(f.hq, "hq", "enroll", f.tmp / "c.pub", "--name", "Cholpon")
    out = yn(laptop, "sync", server.url)
    assert summary(out).startswith("Synced with HQ: 1 bundle(s) sent, 1 revision(s) acknowledged")
    assert out.count("sealed to an HQ this laptop no longer trusts") == 1, out
    assert outbox(laptop) == [stale]  # left in place, never deleted
    assert hq_submissions(f) == [{"uuid": uuid, "revision": 1, "status": "final"}]
    # The next run says so again, sends nothing, and does not fail.
    assert summary(yn(laptop, "sync", server.url)).startswith("Synced with HQ: 0 bundle(s)")


# -- TLS ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tls_is_verified_and_ca_trusts_hqs_own_certificate(field: Field, tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    s = Server(field.hq, tmp_path)
    try:
        url = s.start(0, "--certfile", str(cert), "--keyfile", str(key))
        assert url.startswith("https://")
        collect_in(field.a, field.tmp, "Ак-Суу")
        out = yn(field.a, "sync", url, "--timeout", "5", code=1)
        assert "cannot be verified" in out and "--ca FILE" in out
        assert "1 bundle(s) sent" in summary(yn(field.a, "sync", url, "--ca", cert))
        missing = yn(field.a, "sync", url, "--ca", tmp_path / "none.pem", code=2)
        assert "cannot read the certificate" in missing
    finally:
        s.stop()


# -- HQ's decisions ---------------------------------------------------------------------------


@pytest.mark.slow
def test_decisions_made_at_hq_arrive_with_the_next_sync(field: Field, server: Server) -> None:
    f = field
    uuid = collect_in(f.a, f.tmp, "Ак-Суу")
    yn(f.a, "sync", server.url)
    yn(f.hq, "hq", "review", "reject", uuid, "--comment", "Q5 is empty: ask again")
    out = yn(f.a, "sync", server.url)
    assert summary(out) == (
        "Synced with HQ: 0 bundle(s) sent, 0 revision(s) acknowledged, 0 refused, 1 HQ decision(s)."
    )
    assert "HQ review: 1 decision(s): 1 rejected." in out
    assert "yntymak inbox" in out
    inbox = yn(f.a, "inbox")
    assert uuid[:8] in inbox and "Q5 is empty: ask again" in inbox
    # Held now: the next sync does not announce it again.
    out = yn(f.a, "sync", server.url)
    assert summary(out).endswith("0 HQ decision(s).") and "HQ review" not in out
    # Fixed and sent: HQ has the new revision.
    edited = write_answers(f.tmp / "edit.yaml", "Жаңы-Айыл")
    yn(f.a, "submissions", "edit", uuid, "--answers", edited, "--enumerator", "aida")
    assert "1 revision(s) acknowledged" in summary(yn(f.a, "sync", server.url))
    assert hq_submissions(f) == [{"uuid": uuid, "revision": 2, "status": "final"}]


# -- a hostile or broken server -------------------------------------------------------------


def _fake_hq(answer: Callable[[BaseHTTPRequestHandler], None]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            answer(self)

        def do_GET(self) -> None:  # noqa: N802
            answer(self)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture
def fake_hq() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Callable[[BaseHTTPRequestHandler], None]) -> str:
        httpd, url = _fake_hq(answer)
        servers.append(httpd)
        return url

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_an_answer_longer_than_any_receipt_is_not_read(field: Field, fake_hq) -> None:
    def endless(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(40 * 1024 * 1024 * 1024))
        h.end_headers()

    collect_in(field.a, field.tmp, "Ак-Суу")
    out = yn(field.a, "sync", fake_hq(endless), code=2)
    assert "which is no receipt; nothing applied" in out
    assert rows(field.a, "SELECT synced_at FROM revisions") == [{"synced_at": None}]


def test_hq_text_is_printed_plain(field: Field, fake_hq) -> None:
    def refuse(h: BaseHTTPRequestHandler) -> None:
        body = json.dumps({"error": "\x1b[31mweird", "message": "go \x1b]0;away\x07 [red]x"})
        h.send_response(400)
        h.send_header("Content-Type", "application/json")
        h.end_headers()
        h.wfile.write(body.encode())

    collect_in(field.a, field.tmp, "Ак-Суу")
    out = yn(field.a, "sync", fake_hq(refuse), code=2)
    assert "\x1b" not in out and "\x07" not in out
    assert "HTTP 400, ^[[31mweird: go ^[]0;away^G [red]x" in out


def test_5xx_is_retried_until_the_timeout(
    field: Field, fake_hq, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second attempt must come however slow the machine: the first retry waits at most
    0.1 s here (not up to 1 s), and the deadline leaves seconds for the first attempt."""
    from yntymak_cli.sync import http as http_mod

    monkeypatch.setattr(http_mod, "BACKOFF_BASE", 0.05)
    calls: list[str] = []

    def busy(h: BaseHTTPRequestHandler) -> None:
        calls.append(h.path)
        h.send_response(503)
        h.send_header("Retry-After", "0")
        h.send_header("Content-Length", "0")
        h.end_headers()

    collect_in(field.a, field.tmp, "Ак-Суу")
    url = fake_hq(busy)
    out = yn(field.a, "sync", url, "--timeout", "3", code=1)
    assert f"HQ at {url} did not answer within 3 s (HQ answered HTTP 503)" in out
    assert len(calls) >= 2 and set(calls) == {"/api/v1/bundles"}
    assert len(outbox(field.a)) == 1


def test_plain_http_is_insecure_only_off_this_machine() -> None:
    from yntymak_cli.sync.http import is_insecure

    assert not is_insecure("http://127.0.0.1:8080")
    assert not is_insecure("http://localhost:8080")
    assert not is_insecure("http://[::1]:8080")
    assert not is_insecure("https://hq.example.org")
    assert is_insecure("http://hq.example.org")
    assert is_insecure("http://10.0.0.5:8080")


@pytest.mark.parametrize("part", ["headers", "body"])
def test_timeout_bounds_a_server_that_trickles(field: Field, fake_hq, part: str) -> None:
    """httpx's timeouts are per read: a byte every 0.1 s would never trip them. --timeout
    bounds the whole request, headers or body."""

    def trickle(h: BaseHTTPRequestHandler) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\nX-Slow: " + b"x" * 100
        try:
            if part == "headers":
                for byte in head:
                    h.wfile.write(bytes([byte]))
                    h.wfile.flush()
                    time.sleep(0.1)
            h.wfile.write(head + b"\r\n\r\n")
            for _ in range(200):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.1)
        except OSError:  # the laptop gave up and closed
            pass

    collect_in(field.a, field.tmp, "Ак-Суу")
    url = fake_hq(trickle)
    started = time.monotonic()
    out = yn(field.a, "sync", url, "--timeout", "1.5", code=1)
    assert time.monotonic() - started < 5, out
    assert f"HQ at {url} did not answer within 1.5 s" in out
    assert len(outbox(field.a)) == 1


def test_backoff_is_capped_however_many_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from yntymak_cli.sync import http as http_mod

    waits: list[float] = []
    hq = http_mod._Hq("http://127.0.0.1:9", "a" * 16, timeout=3600, ca=None, sleep=waits.append)
    calls = iter(range(2000))

    def once(*args: Any) -> tuple[int, httpx.Headers, bytes]:
        if next(calls) < 1500:
            raise httpx.ConnectError("refused")
        return 200, httpx.Headers(), b"ok"

    monkeypatch.setattr(hq, "_once", once)
    with hq:
        assert hq.request("GET", "/healthz") == (200, b"ok")
    assert len(waits) == 1500 and max(waits) <= http_mod.BACKOFF_CAP
