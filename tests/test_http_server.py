"""`yntymak hq serve` (issue 13, server half): the real server as a subprocess on 127.0.0.1
with port 0, genuine bundles, and HQ's database checked after every refusal.

The status page's token rule off loopback is checked in-process (create_app with
public=True): the tests bind loopback only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import httpx
import pytest

from yntymak_cli.server.limits import DeviceLocks, DeviceRate, InFlight, RateLimiter

from .conftest import ROOT
from .helpers import CONTRACT, Field, collect_in, device_id, rows, snapshot, yn

SERVING = re.compile(r"Serving HQ on (https?://\S+)")
# The request limits are kept per server process; on PostgreSQL `--workers 2` (the default)
# is two processes (docs/http-api.md), so the tests of one limit run one process.
ONE_PROCESS = ("--workers", "1")
CHROMIUM = "/usr/bin/chromium"


# -- the server as a subprocess ------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log: Path
    lines: list[str] = dc_field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Any]:
    """start(home, *args) -> Server; every server started is stopped at the end."""
    started: list[Server] = []

    def start(home: Path, *args: str) -> Server:
        log = tmp_path / f"server-{len(started)}.log"
        env = {k: v for k, v in os.environ.items() if k != "YNTYMAK_LANG"}
        with open(log, "w", encoding="utf-8") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "yntymak_cli", "--home", str(home), "hq", "serve"]
                + ["--bind", "127.0.0.1:0", *args],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
            )
        server = Server(proc, "", log)
        started.append(server)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        first = proc.stdout.readline() if ready else ""
        found = SERVING.fullmatch(first.strip())
        assert found, (first, log.read_text(encoding="utf-8"))
        server.url = found.group(1)
        threading.Thread(target=lambda: server.lines.extend(proc.stdout or []), daemon=True).start()
        return server

    yield start
    for server in started:
        server.stop()


def post(server: Server, data: bytes, device: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/bundles",
        content=data,
        headers={"X-Yntymak-Device": device, "Content-Type": "application/octet-stream"},
        timeout=60,
        **kwargs,
    )


def raw_request(server: Server, head: str, parts: list[bytes], pause: float = 0.0) -> tuple:
    """Send a request by hand (a Content-Length that lies, a body that stalls); return
    (status, headers, body) once the server answers and closes."""
    with socket.create_connection(server.address, timeout=30) as sock:
        sock.sendall(head.encode("ascii"))
        for i, part in enumerate(parts):
            if i and pause:
                time.sleep(pause)
            try:
                sock.sendall(part)
            except OSError:  # the server answered and closed first
                break
        if pause:
            time.sleep(pause)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data and b"}" in data:
                break
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


def post_head(server: Server, device: str, length: int) -> str:
    host, port = server.address
    return (
        f"POST /api/v1/bundles HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/octet-stream\r\nX-Yntymak-Device: {device}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )


def other_address(host: str = "127.0.0.2") -> httpx.Client:
    """A client whose requests come from another loopback address (another machine, as
    far as the server's per-address limits can tell)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=host), timeout=60)


def hold(server: Server, head: str, body: bytes = b"") -> socket.socket:
    """A connection that sends `head` and `body`, then nothing: the caller closes it."""
    sock = socket.create_connection(server.address, timeout=30)
    sock.sendall(head.encode("ascii") + body)
    return sock


def hq_counts(home: Path) -> tuple[int, int, int]:
    return (
        rows(home, "SELECT COUNT(*) AS n FROM submissions")[0]["n"],
        rows(home, "SELECT COUNT(*) AS n FROM revisions")[0]["n"],
        rows(home, "SELECT COUNT(*) AS n FROM hq_bundles")[0]["n"],
    )


def _sync_bench() -> Any:
    spec = importlib.util.spec_from_file_location(
        "sync_bench", ROOT / "benchmarks" / "sync_bench.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_devices(hq_home: Path, tmp: Path, n_devices: int, bundles: int, per: int) -> list:
    """Devices made with the library, enrolled with `hq enroll`; each with `bundles` bundle
    files of `per` new submissions. [(device_id, [paths])]."""
    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync import bundle, keys

    insert_synthetic = _sync_bench().insert_synthetic
    form = load_form(CONTRACT).require()
    hq_public = keys.load_hq_identity(hq_home).public()
    out = []
    for i in range(n_devices):
        home = tmp / f"dev{i}"
        home.mkdir()
        device = keys.load_or_create_device_identity(home)
        keys.write_device_public(home / "device.pub", device.public())
        yn(hq_home, "hq", "enroll", home / "device.pub", "--name", f"dev{i}", "--district", "d")
        paths = []
        with Store(home / "yntymak.db") as store:
            for j in range(bundles):
                insert_synthetic(store, form, device.device_id, per, seed=i * 1000 + j)
                created = bundle.create_bundle(store, device, hq_public, home)
                assert created is not None
                paths.append(created.path)
        out.append((device.device_id, paths))
    return out


# -- the API -------------------------------------------------------------------------------


@pytest.mark.slow
def test_post_bundle_receipt_replay_recover_and_decisions(field: Field, servers, tmp_path, twin):
    f = field
    ua = collect_in(f.a, tmp_path, "Кара-Суу")
    collect_in(f.a, tmp_path, "Ош")
    path = f.bundle(f.a)
    data = path.read_bytes()
    a, b = device_id(f.a), device_id(f.b)
    twin_home = tmp_path / "hq-twin"  # the same HQ, to import the same file with `hq import`
    env = twin(twin_home)
    server = servers(f.hq)

    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    response = post(server, data, a)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    receipt = response.content
    yn(twin_home, "hq", "import", path, "--receipts", tmp_path, env=env)
    assert snapshot(f.hq) == snapshot(twin_home)

    again = post(server, data, a)  # a replay: the very same receipt
    assert again.status_code == 200 and again.content == receipt
    assert hq_counts(f.hq) == (2, 2, 1)
    got = httpx.get(f"{server.url}/api/v1/devices/{a}/receipt")  # a receipt lost on the way
    assert got.status_code == 200 and got.content == receipt

    ykr = tmp_path / path.name.replace(".ykb", ".ykr")
    ykr.write_bytes(receipt)
    yn(f.a, "bundle", "ack", ykr)

    missing = httpx.get(f"{server.url}/api/v1/devices/{b}/receipt")
    assert (missing.status_code, missing.json()["error"]) == (404, "no-receipt")
    unknown = httpx.get(f"{server.url}/api/v1/devices/{'a' * 16}/receipt")
    assert (unknown.status_code, unknown.json()["error"]) == (403, "unknown-device")
    bad = httpx.get(f"{server.url}/api/v1/devices/NOT-AN-ID/receipt")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid")

    # Review decisions over HTTP: 204 while there is none, then a receipt the laptop applies.
    assert httpx.get(f"{server.url}/api/v1/devices/{a}/decisions").status_code == 204
    yn(f.hq, "hq", "review", "reject", ua[:8], "--comment", "Q5 is empty", "--reviewer", "Nurlan")
    decisions = httpx.get(f"{server.url}/api/v1/devices/{a}/decisions")
    assert decisions.status_code == 200 and decisions.content[:4] == b"YKR\x02"
    dec_file = tmp_path / "decisions.ykr"
    dec_file.write_bytes(decisions.content)
    yn(f.a, "bundle", "ack", dec_file)
    assert [r["comment"] for r in json.loads(yn(f.a, "inbox", "--json"))] == ["Q5 is empty"]
    assert httpx.get(f"{server.url}/api/v1/devices/{b}/decisions").status_code == 204
    nobody = httpx.get(f"{server.url}/api/v1/devices/{'b' * 16}/decisions")
    assert (nobody.status_code, nobody.json()["error"]) == (403, "unknown-device")
    assert "Traceback" not in server.log.read_text(encoding="utf-8")


@pytest.mark.slow
def test_refusals_leave_hq_unchanged(field: Field, servers, tmp_path):
    f = field
    collect_in(f.a, tmp_path, "Кара-Суу")
    data = f.bundle(f.a).read_bytes()
    a, b = device_id(f.a), device_id(f.b)
    stranger = tmp_path / "c"  # a laptop HQ never enrolled
    yn(stranger, "keys", "trust-hq", tmp_path / "hq.pub")
    collect_in(stranger, tmp_path, "Ат-Башы")
    foreign = f.bundle(stranger).read_bytes()
    limit = 64 * 1024
    assert len(data) < limit
    server = servers(f.hq, "--max-bundle", str(limit), "--upload-timeout", "1", "--rate", "12",
                     *ONE_PROCESS)  # fmt: skip
    before = snapshot(f.hq)

    def refused(response: httpx.Response, status: int, *codes: str) -> None:
        assert response.status_code == status, response.text
        assert response.json()["error"] in codes and response.json()["message"]

    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0x01
    refused(post(server, bytes(tampered), a), 400, "bad-signature", "corrupted")
    refused(post(server, data[:-10], a), 400, "truncated")
    refused(post(server, b"PK\x03\x04 not a bundle", a), 400, "not-a-bundle")
    refused(post(server, foreign, device_id(stranger)), 403, "unknown-device")
    refused(post(server, foreign, a), 400, "wrong-device")
    refused(post(server, data, ""), 400, "invalid")
    # Too large: told from Content-Length before any byte of the body is read...
    status, _, body = raw_request(server, post_head(server, a, 10**9), [])
    assert (status, json.loads(body)["error"]) == (413, "too-large")
    # ...and counted while streaming when no length is given (chunked).
    chunks = (b"x" * 8192 for _ in range(16))
    refused(post(server, chunks, a), 413, "too-large")  # type: ignore[arg-type]
    # A slow upload: half the body, then nothing for longer than --upload-timeout.
    half = len(data) // 2
    status, _, body = raw_request(server, post_head(server, a, len(data)), [data[:half]], 2.0)
    assert (status, json.loads(body)["error"]) == (408, "upload-timeout")
    assert snapshot(f.hq) == before
    # The rate limit per client address (12 a minute): another address's 13th request is
    # refused with Retry-After; this one's is not.
    with other_address() as client:
        for _ in range(12):
            assert client.get(f"{server.url}/api/v1/devices/{b}/receipt").status_code == 404
        limited = client.get(f"{server.url}/api/v1/devices/{b}/receipt")
    refused(limited, 429, "too-many-requests")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # The genuine bundle still goes through (a's lock was released after each refusal).
    assert post(server, data, a).status_code == 200
    assert hq_counts(f.hq) == (1, 1, 1)
    log = server.log.read_text(encoding="utf-8")
    assert "Traceback" not in log and "database is locked" not in log


@pytest.mark.slow
def test_a_stranger_cannot_spend_a_devices_rate(field: Field, servers, tmp_path):
    """Requests naming a device spend the budget of the address they come from, never the
    device's: 60 GETs a minute from elsewhere used to keep the laptop at 429."""
    f = field
    collect_in(f.a, tmp_path, "Кара-Суу")
    data = f.bundle(f.a).read_bytes()
    a = device_id(f.a)
    server = servers(f.hq, "--rate", "9", *ONE_PROCESS)
    with other_address() as stranger:
        answers = [
            stranger.get(f"{server.url}/api/v1/devices/{a}/{what}").status_code
            for what in ("receipt", "decisions") * 30
        ]
    assert answers.count(429) == 60 - 9, answers
    response = post(server, data, a)
    assert response.status_code == 200, response.text
    assert httpx.get(f"{server.url}/api/v1/devices/{a}/receipt").status_code == 200
    assert httpx.get(f"{server.url}/api/v1/devices/{a}/decisions").status_code == 204
    assert hq_counts(f.hq) == (1, 1, 1)


@pytest.mark.slow
def test_a_devices_rate_counts_its_verified_bundles_once_each(field: Field, servers, tmp_path):
    """--device-rate counts only bundles whose signature verified with the enrolled key, and
    each bundle_id once a minute: neither forgeries in the laptop's name nor replays of its
    genuine bundles spend its budget; its own third new bundle of the minute gets 429."""
    f = field
    a = device_id(f.a)
    bundles = []
    for village in ("Кара-Суу", "Ош", "Нарын"):
        collect_in(f.a, tmp_path, village)
        bundles.append(f.bundle(f.a).read_bytes())
    first, second, third = bundles
    server = servers(f.hq, "--device-rate", "2", *ONE_PROCESS)
    # A stranger, from another address, in the laptop's name: the signature flipped.
    forged = bytearray(first)
    forged[-1] ^= 0x01
    with other_address() as stranger:
        for _ in range(10):
            response = stranger.post(
                f"{server.url}/api/v1/bundles",
                content=bytes(forged),
                headers={"X-Yntymak-Device": a},
            )
            assert (response.status_code, response.json()["error"]) == (400, "bad-signature")
    assert hq_counts(f.hq) == (0, 0, 0)
    # The genuine bundle afterwards, and nine replays of it: one unit of the two.
    answers = [post(server, first, a) for _ in range(10)]
    assert [r.status_code for r in answers] == [200] * 10, answers[-1].text
    assert {r.content for r in answers} == {answers[0].content}
    assert post(server, second, a).status_code == 200  # the second unit
    before = snapshot(f.hq)
    limited = post(server, third, a)
    assert (limited.status_code, limited.json()["error"]) == (429, "too-many-requests")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert snapshot(f.hq) == before and hq_counts(f.hq) == (2, 2, 2)
    # Bundles counted this minute still go (a laptop whose receipt was lost sends again).
    again = post(server, first, a)
    assert again.status_code == 200 and again.content == answers[0].content
    assert "Traceback" not in server.log.read_text(encoding="utf-8")


@pytest.mark.slow
def test_an_idle_connection_claiming_a_device_holds_no_lock(field: Field, servers, tmp_path):
    """POST with a device's id and a length, then no byte: that used to hold the device's
    one-upload lock for --upload-timeout (600 s)."""
    f = field
    collect_in(f.a, tmp_path, "Кара-Суу")
    data = f.bundle(f.a).read_bytes()
    a = device_id(f.a)
    server = servers(f.hq)
    idle = [hold(server, post_head(server, a, 1000)) for _ in range(2)]
    try:
        time.sleep(0.3)
        started = time.monotonic()
        response = post(server, data, a)
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < 20
    finally:
        for sock in idle:
            sock.close()
    assert hq_counts(f.hq) == (1, 1, 1)


@pytest.mark.slow
def test_bytes_in_flight_are_capped(field: Field, servers, tmp_path):
    f = field
    collect_in(f.a, tmp_path, "Кара-Суу")
    data = f.bundle(f.a).read_bytes()
    a, b = device_id(f.a), device_id(f.b)
    assert len(data) < 30_000
    server = servers(
        f.hq,
        "--max-bundle",
        "64000",
        "--max-inflight",
        "100000",
        "--upload-timeout",
        "10",
        *ONE_PROCESS,
    )
    # One upload alone may take the whole bundle limit...
    slow = hold(server, post_head(server, b, 60_000), b"x" * 1000)
    try:
        time.sleep(0.5)  # the server has reserved its 60,000 bytes
        # ...a second one that does not fit is told at once, from its Content-Length...
        status, headers, body = raw_request(server, post_head(server, a, 60_000), [])
        assert (status, json.loads(body)["error"]) == (429, "server-busy")
        assert int(headers["retry-after"]) >= 1
        # ...and a chunked one as its bytes come past the budget.
        chunks = (b"y" * 1000 for _ in range(50))
        busy = post(server, chunks, a)  # type: ignore[arg-type]
        assert (busy.status_code, busy.json()["error"]) == (429, "server-busy")
        assert post(server, data, a).status_code == 200  # fits beside the slow one
    finally:
        slow.close()
    assert hq_counts(f.hq) == (1, 1, 1)
    assert "Traceback" not in server.log.read_text(encoding="utf-8")


@pytest.mark.slow
def test_connections_are_capped(field: Field, servers):
    """Connections trickling their headers (uvicorn has no header timeout) fill at most
    --max-connections; past it the server answers 503 at once, and recovers after."""
    server = servers(field.hq, "--max-connections", "3", *ONE_PROCESS)
    host, port = server.address
    idle = [hold(server, f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\nX-A") for _ in range(3)]
    try:
        time.sleep(0.3)
        started = time.monotonic()
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 503
        assert time.monotonic() - started < 5
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


@pytest.mark.slow
def test_fifty_devices_upload_ten_bundles_each_at_once(field: Field, servers, tmp_path):
    start = time.monotonic()
    devices = synthetic_devices(field.hq, tmp_path, 50, 10, 3)
    server = servers(field.hq, "--rate", "1000", "--workers", "2")
    statuses: list[int] = []
    lock = threading.Lock()

    def upload(device: str, paths: list[Path]) -> None:
        with httpx.Client(timeout=60) as client:
            for path in paths:  # oldest first, one at a time, as `yntymak sync` does
                r = client.post(
                    f"{server.url}/api/v1/bundles",
                    content=path.read_bytes(),
                    headers={"X-Yntymak-Device": device},
                )
                with lock:
                    statuses.append(r.status_code)

    uploaded = time.monotonic()
    threads = [threading.Thread(target=upload, args=d) for d in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    took = time.monotonic() - uploaded
    assert statuses == [200] * 500, sorted(set(statuses))
    assert hq_counts(field.hq) == (1500, 1500, 500)  # every submission exactly once
    assert rows(field.hq, "SELECT COUNT(DISTINCT uuid) AS n FROM submissions")[0]["n"] == 1500
    log = server.log.read_text(encoding="utf-8")
    assert "database is locked" not in log and "Traceback" not in log
    assert took < 60 and time.monotonic() - start < 120, took


@pytest.mark.slow
def test_server_killed_during_an_upload_then_restarted(field: Field, servers, tmp_path):
    ((dev, [path]),) = synthetic_devices(field.hq, tmp_path, 1, 1, 8000)
    data = path.read_bytes()
    assert len(data) > 512 * 1024
    before = snapshot(field.hq)
    server = servers(field.hq)
    sent = threading.Event()

    def slow_upload() -> None:
        with socket.create_connection(server.address, timeout=30) as sock:
            sock.sendall(post_head(server, dev, len(data)).encode("ascii"))
            for start in range(0, len(data), 64 * 1024):
                try:
                    sock.sendall(data[start : start + 64 * 1024])
                except OSError:
                    return
                if start >= 256 * 1024:
                    sent.set()
                time.sleep(0.05)

    uploader = threading.Thread(target=slow_upload)
    uploader.start()
    assert sent.wait(30)
    os.kill(server.pid, signal.SIGKILL)
    server.proc.wait(10)
    uploader.join(30)
    assert snapshot(field.hq) == before  # nothing of the cut upload
    again = servers(field.hq)
    response = post(again, data, dev)
    assert response.status_code == 200, response.text
    assert hq_counts(field.hq) == (8000, 8000, 1)
    replay = post(again, data, dev)
    assert replay.status_code == 200 and replay.content == response.content
    assert hq_counts(field.hq) == (8000, 8000, 1)


# -- the status page -----------------------------------------------------------------------


@pytest.mark.slow
def test_page_without_token_only_for_a_loopback_host(field: Field, servers):
    """DNS rebinding (a page elsewhere whose name now points at 127.0.0.1) sends its own
    Host; nginx's default sends its upstream's, which the port need not match."""
    server = servers(field.hq)
    _, port = server.address

    def page(host: str) -> int:
        return httpx.get(f"{server.url}/?lang=en", headers={"Host": host}).status_code

    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LocalHost"):
        assert page(host) == 200, host
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.2"):
        assert page(host) == 403, host
    token = next(m.group(1) for line in server.lines if (m := re.search(r"token=(\S+)", line)))
    assert (
        httpx.get(
            f"{server.url}/?lang=en&token={token}", headers={"Host": "evil.example"}
        ).status_code
        == 200
    )


@pytest.mark.slow
def test_status_page_in_chromium_in_kyrgyz(field: Field, servers, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    f = field
    village, comment = "Секретное-Село-Жооп", "Комментарий-Тайна-42"
    ua = collect_in(f.a, tmp_path, village)
    collect_in(f.a, tmp_path, "Ноокат")
    collect_in(f.b, tmp_path, "Ат-Башы")
    server = servers(f.hq)
    for home in (f.a, f.b):
        assert post(server, f.bundle(home).read_bytes(), device_id(home)).status_code == 200
    yn(f.hq, "hq", "review", "reject", ua[:8], "--comment", comment, "--reviewer", "Nurlan")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    args += ["--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = browser.new_page()
            response = page.goto(f"{server.url}/?lang=ky", timeout=30_000)
            assert response is not None and response.status == 200
            text = page.inner_text("body")
            html = page.content()
            assert page.evaluate("document.documentElement.lang") == "ky"
            assert page.title() == "Борбордук кеңсе: эмнелер келди"
            for word in ("Райондор боюнча анкеталар", "Формалар боюнча анкеталар", "Түзмөктөр"):
                assert word in text
            assert "Жыйынтык: 3 анкета" in text
            district_rows = page.locator("table").nth(0).inner_text()
            assert re.search(r"kara_suu\s+2", district_rows), district_rows
            assert re.search(r"at_bashy\s+1", district_rows), district_rows
            assert re.search(r"village_safety\s+3", page.locator("table").nth(1).inner_text())
            devices = page.locator("table").nth(2).inner_text()
            assert "Aida" in devices and "Bakyt" in devices and "1-пакет" in devices
            for secret in (village, comment, "Ноокат", "Nurlan"):
                assert secret not in html
            # Through a reverse proxy (a forwarded request), the page wants the token.
            page.set_extra_http_headers({"X-Forwarded-For": "203.0.113.5"})
            blocked = page.goto(f"{server.url}/?lang=ru", timeout=30_000)
            assert blocked is not None and blocked.status == 403
            token = next(
                m.group(1) for line in server.lines if (m := re.search(r"token=(\S+)", line))
            )
            allowed = page.goto(f"{server.url}/?lang=ru&token={token}", timeout=30_000)
            assert allowed is not None and allowed.status == 200
            assert "Анкеты по районам" in page.inner_text("body")
        finally:
            browser.close()


def test_page_needs_its_token_off_loopback(tmp_path: Path):
    """Binding a non-loopback address is avoided in tests: the rule is checked in-process,
    on the same app, through httpx's ASGI transport."""
    import asyncio

    from yntymak_cli.server.app import Settings, create_app
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync import keys

    hq = keys.create_hq_identity(tmp_path)
    Store(tmp_path / "yntymak.db").close()

    async def get(settings: Settings, url: str, **headers: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.get(url, headers=headers)

    def fetch(settings: Settings, url: str, **headers: str) -> httpx.Response:
        return asyncio.run(get(settings, url, **headers))

    public = Settings(tmp_path / "yntymak.db", hq, page_token="s3cret-token", public=True)
    assert fetch(public, "/?lang=en").status_code == 403
    assert fetch(public, "/?lang=en&token=wrong").status_code == 403
    ok = fetch(public, "/?lang=en&token=s3cret-token")
    assert ok.status_code == 200 and '<html lang="en">' in ok.text
    assert '<meta charset="utf-8">' in ok.text
    assert ok.headers["referrer-policy"] == "no-referrer"
    assert fetch(public, "/healthz").json() == {"status": "ok"}
    assert fetch(public, "/api/v1/nothing").json()["error"] == "not-found"
    local = Settings(tmp_path / "yntymak.db", hq, page_token="t", public=False)
    page = fetch(local, "/", **{"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"})
    assert page.status_code == 200 and '<html lang="ru">' in page.text
    assert fetch(local, "/", **{"X-Forwarded-For": "203.0.113.5"}).status_code == 403


def test_page_escapes_what_the_database_holds():
    from yntymak_cli.server.page import render

    status = {
        "totals": {"submissions": 1, "void": 0, "by_form": {"f<i>": 1}, "by_district": {}},
        "devices": [
            {
                "device_id": "a" * 16,
                "name": "<script>alert(1)</script>",
                "district": "\"'&",
                "revoked_at": None,
                "last_seq": 3,
                "last_received_at": "2026-11-30T10:00:00Z",
                "submissions_by_form": {"f<i>": 1},
                "gaps": [1, 2],
                "gaps_total": 2,
                "chain_breaks": [],
            }
        ],
    }
    html = render(status, "en")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "f&lt;i&gt;" in html and "&quot;&#x27;&amp;" in html
    assert "missing: 1, 2" in html


def test_database_errors_are_told_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Only a locked database is worth a retry (503); a full disk or a broken database is a
    500 that says so, without a traceback."""
    import asyncio
    import sqlite3

    from yntymak_cli.server.app import Settings, create_app
    from yntymak_cli.store import hq as hq_store
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync import keys

    settings = Settings(tmp_path / "yntymak.db", keys.create_hq_identity(tmp_path), "t")
    Store(settings.db_path).close()

    async def get(url: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(settings), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            return await c.get(url)

    def failing(message: str) -> httpx.Response:
        def fail(*args: Any) -> None:
            raise sqlite3.OperationalError(message)

        monkeypatch.setattr(hq_store, "device_by_id", fail)
        return asyncio.run(get(f"/api/v1/devices/{'a' * 16}/receipt"))

    locked = failing("database is locked")
    assert (locked.status_code, locked.json()["error"]) == (503, "busy")
    assert locked.headers["retry-after"] == "5"
    full = failing("database or disk is full")
    assert (full.status_code, full.json()["error"]) == (500, "internal")
    assert "disk is full" in full.json()["message"] and "retry-after" not in full.headers
    broken = failing("no such table: devices")
    assert (broken.status_code, broken.json()["error"]) == (500, "internal")
    assert "Traceback" not in broken.text and "no such table" not in broken.text


def test_rate_limiter_and_device_locks():
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.check("d") == 0 and limiter.check("d") == 0
    assert limiter.check("d") == 60
    assert limiter.check("e") == 0  # per key (client address)
    now[0] = 30.0
    assert limiter.check("d") == 30
    now[0] = 60.5
    assert limiter.check("d") == 0
    # All keys together: the third request of the minute is refused, whoever sends it, and
    # a refused request is not counted.
    together = RateLimiter(5, total=2, clock=lambda: now[0])
    assert together.check("x") == 0 and together.check("y") == 0
    assert together.check("z") == 60 and "z" not in together._log
    # The table of keys stays bounded, whatever addresses come within a minute.
    many = RateLimiter(5, clock=lambda: now[0], max_keys=100)
    for i in range(1000):
        assert many.check(f"10.0.{i // 256}.{i % 256}") == 0
    assert len(many) == 100 and "10.0.3.231" in many._log
    # Verified bundles per device: distinct bundle ids in the window, a replay is free.
    per_device = DeviceRate(2, clock=lambda: now[0], max_keys=3)
    assert per_device.check("d", "b1") == 0 and per_device.check("d", "b1") == 0
    assert per_device.check("d", "b2") == 0 and per_device.check("d", "b1") == 0
    assert per_device.check("d", "b3") == 60 and per_device.check("e", "b3") == 0
    now[0] += 61
    assert per_device.check("d", "b3") == 0 and per_device.check("d", "b4") == 0
    for i in range(10):
        assert per_device.check(f"device{i}", "b") == 0
    assert len(per_device) == 3
    locks = DeviceLocks()
    assert locks.acquire("d") and not locks.acquire("d") and locks.acquire("e")
    locks.release("d")
    assert locks.acquire("d")
    inflight = InFlight(100)
    assert inflight.reserve(150)  # alone: always
    assert not inflight.reserve(10) and inflight.reserve(10, held=150)  # its own bytes
    inflight.release(160)
    assert inflight.reserve(60) and inflight.reserve(40) and not inflight.reserve(1)
