"""HQ on PostgreSQL under load (issue 17): four server workers on ONE database (two
`hq serve --workers 2`, as two machines behind a load balancer) take 50 devices x 10
bundles at once, some bundles sent twice at the same moment to two different servers.
Then `--workers N` itself: processes that share the load, come back when killed and stop
together.

Loopback only; every server is stopped at the end (the `servers` fixture of
test_http_server.py). A 429 is retried as the laptop does (after its Retry-After), and so
is a dropped connection; a 5xx, a refusal or a server gone fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import helpers
from .helpers import rows, yn
from .test_http_server import Server, hq_counts, servers, synthetic_devices

__all__ = ["servers"]  # the fixture, imported so that pytest finds it here

N_DEVICES, N_BUNDLES, PER = 50, 10, 3
N_SERVERS = 2  # each with --workers 2: four worker processes


@pytest.fixture
def pg_hq(pg_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An HQ home (its hq.key) whose data is in a fresh PostgreSQL database: every `hq`
    command here and every server started from this environment uses it."""
    url = pg_server.new_database()
    monkeypatch.setenv("YNTYMAK_HQ_DB", url)
    home = tmp_path / "hq"
    monkeypatch.setitem(helpers.PG_HOMES, home, url)
    yn(home, "hq", "init", "-o", tmp_path / "hq.pub")
    return home


class Uploads:
    """POSTs as the laptop sends them: 429 (and 408) retried after Retry-After, a dropped
    connection retried at once; anything else answered is final. Every answer is kept."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: list[int] = []
        self.retried: dict[str, int] = defaultdict(int)  # error code or exception -> how many
        self.receipts: dict[str, list[bytes]] = defaultdict(list)  # bundle file -> receipts
        self.failures: list[str] = []

    def send(self, client: httpx.Client, server: Server, device: str, path: Path) -> None:
        data = path.read_bytes()
        headers = {"X-Yntymak-Device": device, "Content-Type": "application/octet-stream"}
        for attempt in range(20):
            try:
                r = client.post(f"{server.url}/api/v1/bundles", content=data, headers=headers)
            except httpx.TransportError as exc:
                # A kept-alive connection the server closed as the request went out: the
                # laptop sends again. The servers must still be up (checked at the end).
                with self.lock:
                    self.retried[type(exc).__name__] += 1
                continue
            with self.lock:
                self.statuses.append(r.status_code)
            if r.status_code in (408, 429):
                with self.lock:
                    self.retried[r.json()["error"]] += 1
                time.sleep(min(float(r.headers.get("retry-after", "1")), 5) + 0.05 * attempt)
                continue
            with self.lock:
                if r.status_code == 200:
                    self.receipts[path.name].append(r.content)
                else:
                    self.failures.append(f"{path.name} via {server.url}: {r.status_code} {r.text}")
            return
        with self.lock:
            self.failures.append(f"{path.name}: still refused after 20 attempts")


@pytest.mark.slow
def test_four_workers_one_database_fifty_devices_with_duplicates(pg_hq: Path, servers, tmp_path):
    started = time.monotonic()
    devices = synthetic_devices(pg_hq, tmp_path, N_DEVICES, N_BUNDLES, PER)
    built = time.monotonic() - started
    pool = [
        servers(pg_hq, "--rate", "100000", "--total-rate", "100000", "--workers", "2")
        for _ in range(N_SERVERS)
    ]
    uploads = Uploads()
    # Every fifth device sends its bundles 3 and 8 twice at the same moment, to two
    # different servers (a laptop whose answer was late, retried through the balancer).
    doubled = {(i, j) for i in range(0, N_DEVICES, 5) for j in (2, 7)}

    def at_once(
        gate: threading.Barrier, client: httpx.Client, server: Server, device: str, path: Path
    ) -> None:
        gate.wait(10)
        uploads.send(client, server, device, path)

    def device_run(i: int, device: str, paths: list[Path]) -> None:
        with httpx.Client(timeout=60) as client, httpx.Client(timeout=60) as twin:
            for j, path in enumerate(paths):  # oldest first, as `yntymak sync` sends them
                server = pool[(i + j) % N_SERVERS]
                if (i, j) not in doubled:
                    uploads.send(client, server, device, path)
                    continue
                other = pool[(i + j + 1) % N_SERVERS]
                gate = threading.Barrier(2)
                pair = [
                    threading.Thread(target=at_once, args=(gate, c, s, device, path))
                    for c, s in ((client, server), (twin, other))
                ]
                for thread in pair:
                    thread.start()
                for thread in pair:
                    thread.join(90)

    load_started = time.monotonic()
    threads = [
        threading.Thread(target=device_run, args=(i, device, paths))
        for i, (device, paths) in enumerate(devices)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    took = time.monotonic() - load_started

    assert not uploads.failures, uploads.failures[:5]
    assert set(uploads.statuses) <= {200, 429}, sorted(set(uploads.statuses))
    allowed = {"upload-in-progress", "server-busy", "ReadError", "RemoteProtocolError"}
    assert set(uploads.retried) <= allowed, uploads.retried
    assert all(server.proc.poll() is None for server in pool)
    n_sent = N_DEVICES * N_BUNDLES + len(doubled)
    assert uploads.statuses.count(200) == n_sent
    # Every submission exactly once, every bundle recorded once.
    n_subs = N_DEVICES * N_BUNDLES * PER
    assert hq_counts(pg_hq) == (n_subs, n_subs, N_DEVICES * N_BUNDLES)
    assert rows(pg_hq, "SELECT COUNT(DISTINCT bundle_id) AS n FROM hq_bundles")[0]["n"] == 500
    assert rows(pg_hq, "SELECT COUNT(*) AS n FROM hq_receipts")[0]["n"] == 500
    # Both copies of a doubled bundle got the very same receipt bytes, which a replay
    # (through whichever worker takes it) gives again.
    for i, (_device, paths) in enumerate(devices):
        for j, path in enumerate(paths):
            assert len(uploads.receipts[path.name]) == (2 if (i, j) in doubled else 1)
    for i, j in sorted(doubled):
        device, paths = devices[i]
        got = uploads.receipts[paths[j].name]
        assert len(got) == 2 and got[0] == got[1], (i, j)
        with httpx.Client(timeout=60) as client:
            uploads.send(client, pool[(i + j + 2) % N_SERVERS], device, paths[j])
        assert uploads.receipts[paths[j].name][-1] == got[0]
    assert hq_counts(pg_hq) == (n_subs, n_subs, N_DEVICES * N_BUNDLES)  # replays change nothing

    status = json.loads(yn(pg_hq, "hq", "status", "--json"))
    assert len(status["devices"]) == N_DEVICES
    for d in status["devices"]:
        assert (d["bundles"], d["last_seq"]) == (N_BUNDLES, N_BUNDLES), d["device_id"]
        assert d["gaps"] == [] and d["gaps_total"] == 0, d["device_id"]
        assert d["chain_breaks"] == [] and d["repeated_seqs"] == [], d["device_id"]
    assert status["totals"]["submissions"] == n_subs
    importers = {int(m[1]) for server in pool for m in _log_matches(server, IMPORTED)}
    workers = {int(m[3]) for server in pool for m in _log_matches(server, STARTED)}
    assert len(workers) == 4 and importers == workers  # every worker took its share
    for server in pool:
        log = server.log.read_text(encoding="utf-8")
        for bad in ("Traceback", "deadlock", "IntegrityError", "internal error"):
            assert bad not in log, (bad, log[-2000:])
    print(f"built {built:.1f} s; {n_sent} uploads over {N_SERVERS} servers in {took:.1f} s; "
          f"retried {dict(uploads.retried)}")  # fmt: skip
    assert took < 60, took


def test_a_copy_imported_at_the_same_moment_gets_the_first_receipt(
    pg_hq: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Two copies of one bundle: the second is imported (a replay) after the first's
    import committed but before its receipt was kept; each then issues a receipt, in a
    later second than the other. Both must answer with one and the same bytes."""
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync import container, keys
    from yntymak_cli.sync import hq as hq_sync

    ((_device, [path]),) = synthetic_devices(pg_hq, tmp_path, 1, 1, 2)
    data = path.read_bytes()
    identity = keys.load_hq_identity(pg_hq)
    clock = iter(["2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z"])
    monkeypatch.setattr(container, "_utc_now", lambda: next(clock))
    with HqDb.open() as first, HqDb.open() as second:
        result_first = hq_sync.import_bundle(first, identity, data)
        result_second = hq_sync.import_bundle(second, identity, data)
        assert not result_first.replay and result_second.replay
        receipt_second, _ = hq_sync.issue_receipt(second, identity, result_second)
        receipt_first, _ = hq_sync.issue_receipt(first, identity, result_first)
    assert receipt_first == receipt_second
    assert hq_counts(pg_hq) == (2, 2, 1)


# -- `hq serve --workers N`: processes on one address -------------------------------------

STARTED = re.compile(r"\[(\d+)\] yntymak\.server: worker (\d+) started \(pid (\d+)\)")
IMPORTED = re.compile(r"\[(\d+)\] yntymak\.server: bundle \d+ of device")


def _log_matches(server: Server, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    return list(pattern.finditer(server.log.read_text(encoding="utf-8")))


def _wait_for(predicate: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.slow
def test_workers_are_processes_that_share_the_load_and_come_back(pg_hq: Path, servers, tmp_path):
    """--workers 3 on PostgreSQL: three child processes accept on the one address; uploads
    land in more than one of them; a worker killed with SIGKILL is started again and the
    server goes on; SIGTERM stops every worker and the server exits 0."""
    devices = synthetic_devices(pg_hq, tmp_path, 12, 2, 1)
    server = servers(pg_hq, "--workers", "3", "--rate", "100000", "--total-rate", "100000")
    started = _wait_for(lambda: len(_log_matches(server, STARTED)) >= 3 and
                        _log_matches(server, STARTED))  # fmt: skip
    pids = {int(m[3]) for m in started}
    assert len(pids) == 3 and server.pid not in pids
    assert all(int(m[1]) == server.pid for m in started)  # logged by the parent
    for pid in pids:  # children of the server, not strangers
        assert int(Path(f"/proc/{pid}/stat").read_text().split()[3]) == server.pid
    _wait_for(lambda: server.lines)
    assert "3 worker processes share this address" in "".join(server.lines)

    def upload(pairs: list[tuple[str, list[Path]]], j: int) -> None:
        uploads = Uploads()
        threads = [
            threading.Thread(
                target=lambda d=d, p=p: uploads.send(httpx.Client(timeout=60), server, d, p[j])
            )
            for d, p in pairs
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not uploads.failures, uploads.failures
        assert uploads.statuses.count(200) == len(pairs)

    upload(devices, 0)
    importers = {int(m[1]) for m in _log_matches(server, IMPORTED)}
    # The kernel spreads connections by a hash of their addresses: 12 uploads all in one
    # of 3 workers would happen once in 180,000 runs.
    assert importers <= pids and len(importers) >= 2, importers

    victim = sorted(pids)[0]
    os.kill(victim, signal.SIGKILL)
    again = _wait_for(lambda: [m for m in _log_matches(server, STARTED) if int(m[3]) not in pids])
    assert len(again) == 1
    log = server.log.read_text(encoding="utf-8")
    assert f"(pid {victim}) ended with exit code -9" in log
    workers = (pids - {victim}) | {int(again[0][3])}
    assert not _alive(victim) and all(_alive(pid) for pid in workers)
    upload(devices, 1)  # the server goes on, whichever worker takes each connection
    assert hq_counts(pg_hq) == (24, 24, 24)

    server.proc.terminate()
    assert server.proc.wait(60) == 0
    assert not any(_alive(pid) for pid in workers)
    _wait_for(lambda: "HQ server stopped." in "".join(server.lines), 5)
    assert "Traceback" not in server.log.read_text(encoding="utf-8")


@pytest.mark.slow
def test_workers_that_keep_dying_at_start_stop_the_server(pg_hq: Path, servers):
    server = servers(pg_hq, "--workers", "2")
    killed: set[int] = set()
    deadline = time.monotonic() + 60
    while server.proc.poll() is None and time.monotonic() < deadline:
        for m in _log_matches(server, STARTED):
            pid = int(m[3])
            if pid not in killed:
                killed.add(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    assert server.proc.wait(30) == 1
    assert 5 <= len(killed) <= 7, killed
    log = server.log.read_text(encoding="utf-8")
    assert "workers keep failing at start: stopping the server" in log
    assert "worker processes kept failing at start" in log  # the one-line error, on stderr
    assert "Traceback" not in log
    assert not any(_alive(pid) for pid in killed)


@pytest.mark.slow
def test_workers_do_not_outlive_a_killed_server(pg_hq: Path, servers):
    """SIGKILL of the server process (an admin's kill -9): its workers go with it rather
    than serve on, unsupervised, on the address."""
    server = servers(pg_hq, "--workers", "2")
    workers = {int(m[3]) for m in _wait_for(lambda: _log_matches(server, STARTED))}
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    os.kill(server.pid, signal.SIGKILL)
    server.proc.wait(10)
    _wait_for(lambda: not any(_alive(pid) for pid in workers), 10)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=5)


def test_sqlite_hq_keeps_one_process_with_import_threads(tmp_path: Path, servers):
    home = tmp_path / "hq"
    yn(home, "hq", "init", "-o", tmp_path / "hq.pub")
    server = servers(home, "--workers", "3")
    r = httpx.get(f"{server.url}/healthz", timeout=10)
    assert r.status_code == 200
    time.sleep(0.5)
    assert not _log_matches(server, STARTED)
    assert "worker processes" not in "".join(server.lines)


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_without_restarting_any(pg_hq: Path, tmp_path: Path):
    """Ctrl-C in a terminal signals the whole process group: parent and workers at once."""
    log = tmp_path / "serve.log"
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "yntymak_cli", "--home", str(pg_hq), "hq", "serve",
             "--bind", "127.0.0.1:0", "--workers", "2"],
            stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("Serving HQ on http://127.0.0.1:")
        workers = {int(m[3]) for m in STARTED.finditer(log.read_text(encoding="utf-8"))}
        assert len(workers) == 2
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0
        assert "HQ server stopped." in proc.stdout.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text(encoding="utf-8")
    assert "starting it again" not in text and "Traceback" not in text, text
    assert not any(_alive(pid) for pid in workers)
