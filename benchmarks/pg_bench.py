"""HQ on PostgreSQL against HQ on SQLite (issue 17): import rate and HTTP uploads.

    python benchmarks/pg_bench.py                     # 100,000-submission bundle; 50x10x100
    python benchmarks/pg_bench.py --n 20000 --devices 20

Starts its own PostgreSQL server (tests/postgres.py: Debian's binaries, a temporary folder,
a Unix socket only, fsync off, so the figures are CPU and protocol, not disk), then:

(a) one bundle of `--n` synthetic submissions (benchmarks/sync_bench.py's insert_synthetic,
    then sync.bundle.create_bundle), imported with `sync.hq.import_bundle` (verify + merge
    in one transaction) into an empty HQ on SQLite, and into an empty PostgreSQL database;
(b) `--devices` x `--bundles` bundles of `--per` submissions, uploaded over HTTP (every
    device from its own thread, oldest bundle first, all devices at once; requests spread
    round-robin over the servers, as a load balancer would) to one PostgreSQL database
    served by `hq serve --workers 1`, by `hq serve --workers 4` (four processes on one
    address) and by four `hq serve --workers 1` behind a client-side round robin; and to
    one `hq serve` on SQLite (`--workers 2`: import threads) for reference. A 429 is
    retried after its Retry-After, as the laptop does; any other non-200 stops the run.

Client, servers and PostgreSQL share the machine's cores: on a small machine the 4-process
figures say more about contention than about scaling.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
FORM = ROOT / "tests" / "data" / "village_safety.yaml"
SERVING = re.compile(r"Serving HQ on (https?://\S+)")


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _empty_hq(home: Path) -> Any:
    """An HQ home with its key (hq.key) and an empty SQLite database; HQ's identity."""
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync import keys

    home.mkdir(mode=0o700)
    identity = keys.create_hq_identity(home)
    Store(home / "yntymak.db").close()
    return identity


def _hq_db(home: Path, url: str | None) -> Any:
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.hqdb import HqDb

    return HqDb.postgres(url) if url else HqDb.over_store(Store(home / "yntymak.db"))


# -- (a) one big bundle --------------------------------------------------------------------


def import_rates(tmp: Path, pg: Any, n: int) -> None:
    from sync_bench import insert_synthetic

    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync import bundle, hq, keys

    dev_home, hq_home = tmp / "big-device", tmp / "big-hq"
    dev_home.mkdir()
    identity = _empty_hq(hq_home)
    device = keys.load_or_create_device_identity(dev_home)
    with Store(dev_home / "yntymak.db") as dev:
        t_fill, _ = _timed(
            lambda: insert_synthetic(dev, load_form(FORM).require(), device.device_id, n)
        )
        t_create, created = _timed(
            lambda: bundle.create_bundle(dev, device, identity.public(), tmp)
        )
    data = created.path.read_bytes()
    print(f"(a) one bundle of {n:,} submissions, {len(data) / 1e6:.1f} MB "
          f"(device filled in {t_fill:.1f} s, bundle created in {t_create:.1f} s)")  # fmt: skip
    times = {}
    for name, url in (("SQLite", None), ("PostgreSQL", pg.new_database())):
        with _hq_db(hq_home if url is None else tmp, url) as db:
            hq.enroll(db, device.public(), "bench", "kara_suu")
            t_verify, _ = _timed(lambda db=db: hq.open_for_import(db, identity, data))
            t_import, result = _timed(lambda db=db: hq.import_bundle(db, identity, data))
            assert result.new == n, result
            t_receipt, _ = _timed(lambda db=db, r=result: hq.issue_receipt(db, identity, r))
        times[name] = t_import
        print(
            f"    {name:<10} import {n / t_import:>9,.0f} submissions/s ({t_import:6.2f} s; "
            f"verify alone {t_verify:5.2f} s, merge {t_import - t_verify:6.2f} s); "
            f"receipt {t_receipt:.2f} s"
        )
    print(f"    PostgreSQL / SQLite import time: {times['PostgreSQL'] / times['SQLite']:.2f}x")


# -- (b) HTTP uploads ----------------------------------------------------------------------


def build_devices(tmp: Path, identity: Any, devices: int, bundles: int, per: int) -> list:
    """[(device public key, [bundle paths])]: keys made with the library, not enrolled."""
    from sync_bench import insert_synthetic

    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync import bundle, keys

    form = load_form(FORM).require()
    out = []
    for i in range(devices):
        home = tmp / f"dev{i}"
        home.mkdir()
        device = keys.load_or_create_device_identity(home)
        paths = []
        with Store(home / "yntymak.db") as store:
            for j in range(bundles):
                insert_synthetic(store, form, device.device_id, per, seed=i * 1000 + j)
                created = bundle.create_bundle(store, device, identity.public(), home)
                assert created is not None
                paths.append(created.path)
        out.append((device.public(), paths))
    return out


def start_server(home: Path, url: str | None, log: Path, workers: int) -> tuple[Any, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("YNTYMAK_HQ_DB", "YNTYMAK_LANG")}
    if url:
        env["YNTYMAK_HQ_DB"] = url
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "yntymak_cli", "--home", str(home), "hq", "serve"]
            + ["--bind", "127.0.0.1:0", "--rate", "1000000", "--total-rate", "1000000"]
            + ["--workers", str(workers)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    found = SERVING.fullmatch((proc.stdout.readline() if ready else "").strip())
    if not found:
        stop(proc)
        raise SystemExit(f"the server did not start:\n{log.read_text(encoding='utf-8')}")
    return proc, found.group(1)


def stop(proc: Any) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc.stdout:
        proc.stdout.close()


def http_run(
    tmp: Path, home: Path, url: str | None, devices: list, n_servers: int, workers: int
) -> tuple[float, list[float], int]:
    """Enrol the devices in an empty HQ, start the servers, upload everything: (wall
    seconds, latency of every 200 including its retries, how many 429s were retried)."""
    import httpx

    from yntymak_cli.sync import hq

    with _hq_db(home, url) as db:
        for i, (public, _paths) in enumerate(devices):
            hq.enroll(db, public, f"dev{i}", f"district{i % 7}")
    procs: list[Any] = []
    try:
        for k in range(n_servers):
            label = f"{'pg' if url else 'sqlite'}-{n_servers}-{workers}-{k}"
            procs.append(start_server(home, url, tmp / f"server-{label}.log", workers))
        latencies: list[float] = []
        failures: list[str] = []
        retried = [0]
        dropped: list[str] = []
        lock = threading.Lock()

        def upload(i: int, device_id: str, paths: list[Path]) -> None:
            with httpx.Client(timeout=300) as client:
                for j, path in enumerate(paths):
                    data = path.read_bytes()
                    base = procs[(i + j) % n_servers][1]
                    t0 = time.perf_counter()
                    for _attempt in range(50):
                        try:
                            r = client.post(
                                f"{base}/api/v1/bundles",
                                content=data,
                                headers={"X-Yntymak-Device": device_id},
                            )
                        except httpx.TransportError as exc:  # the laptop retries these too
                            with lock:
                                dropped.append(f"{type(exc).__name__}: {exc}")
                            continue
                        if r.status_code != 429:
                            break
                        with lock:
                            retried[0] += 1
                        time.sleep(float(r.headers.get("retry-after", "1")))
                    took = time.perf_counter() - t0
                    with lock:
                        if r.status_code == 200:
                            latencies.append(took)
                        else:
                            failures.append(f"{r.status_code} {r.text[:200]}")

        threads = [
            threading.Thread(target=upload, args=(i, public.device_id, paths))
            for i, (public, paths) in enumerate(devices)
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        if failures:
            raise SystemExit(f"non-200 answers: {failures[:5]}")
        if dropped:
            print(f"    connections dropped and retried: {len(dropped)} ({sorted(set(dropped))})")
        return wall, latencies, retried[0]
    finally:
        for proc, _ in procs:
            stop(proc)


def upload_rates(tmp: Path, pg: Any, args: argparse.Namespace) -> None:
    import shutil

    hq_home = tmp / "http-hq"
    identity = _empty_hq(hq_home)
    t_build, devices = _timed(
        lambda: build_devices(tmp, identity, args.devices, args.bundles, args.per)
    )
    n_bundles = args.devices * args.bundles
    n_subs = n_bundles * args.per
    size = sum(p.stat().st_size for _, paths in devices for p in paths)
    print(
        f"(b) {args.devices} devices x {args.bundles} bundles x {args.per} submissions = "
        f"{n_bundles} uploads, {n_subs:,} submissions, {size / 1e6:.1f} MB "
        f"(built in {t_build:.1f} s; {os.cpu_count()} CPUs)"
    )
    runs = [("PostgreSQL", 1, 1), ("PostgreSQL", 1, 4), ("PostgreSQL", 4, 1), ("SQLite", 1, 2)]
    for name, n_servers, workers in runs:
        home = tmp / f"hq-{name}-{n_servers}-{workers}"
        shutil.copytree(hq_home, home)  # the key, and an empty SQLite file
        url = pg.new_database() if name == "PostgreSQL" else None
        wall, latencies, retried = http_run(tmp, home, url, devices, n_servers, workers)
        latencies.sort()

        def pct(p: float, lat: list[float] = latencies) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

        print(
            f"    {name:<10} {n_servers} server{'s' if n_servers > 1 else ' '} "
            f"--workers {workers}: "
            f"{n_bundles / wall:7.1f} uploads/s {n_subs / wall:9,.0f} submissions/s "
            f"({wall:6.2f} s)  p50 {pct(0.5):5.0f} ms  p95 {pct(0.95):5.0f} ms  "
            f"max {pct(1.0):5.0f} ms  429 retried: {retried}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000, help="submissions in (a)'s bundle")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--bundles", type=int, default=10)
    parser.add_argument("--per", type=int, default=100)
    parser.add_argument("--skip-import", action="store_true", help="only (b)")
    parser.add_argument("--skip-http", action="store_true", help="only (a)")
    args = parser.parse_args()

    from tests import postgres

    if not postgres.available():
        raise SystemExit("no PostgreSQL binaries (initdb, pg_ctl) on this machine")
    pg = postgres.Server()
    pg.start()
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            print(f"python {sys.version.split()[0]}; PostgreSQL from {pg.url()}")
            if not args.skip_import:
                import_rates(tmp, pg, args.n)
            if not args.skip_http:
                upload_rates(tmp, pg, args)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
