"""HTTP upload benchmark: `hq serve` against `hq import` of the same bundle files.

    python benchmarks/http_bench.py                      # 50 devices x 10 bundles x 100
    python benchmarks/http_bench.py --devices 10 --per 50

Synthetic devices (keys made with the library, enrolled at HQ), each with `--bundles`
bundles of `--per` new submissions of tests/data/village_safety.yaml (benchmarks/
sync_bench.py's insert_synthetic, then sync.bundle.create_bundle). The HQ home is copied, so
both runs start from the same enrolled, empty HQ:

- file: `sync.hq.import_bundle` over the files from disk, one after another (what `hq
  import` does per file, without writing receipts);
- HTTP: a real `yntymak hq serve` subprocess on 127.0.0.1, every device uploading its
  bundles oldest first from its own thread, all devices at once (httpx).

Printed: bundles/s and submissions/s for each, p50/p95 latency of an upload, and the ratio
(target: HTTP >= 0.7x the file import rate). Client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
FORM = ROOT / "tests" / "data" / "village_safety.yaml"


def build(tmp: Path, hq_home: Path, devices: int, bundles: int, per: int) -> list:
    from sync_bench import insert_synthetic

    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync import bundle, hq, keys

    form = load_form(FORM).require()
    hq_public = keys.load_hq_identity(hq_home).public()
    out = []
    with HqDb.over_store(Store(hq_home / "yntymak.db")) as hq_store:
        for i in range(devices):
            home = tmp / f"dev{i}"
            home.mkdir()
            device = keys.load_or_create_device_identity(home)
            hq.enroll(hq_store, device.public(), f"dev{i}", f"district{i % 7}")
            paths = []
            with Store(home / "yntymak.db") as store:
                for j in range(bundles):
                    insert_synthetic(store, form, device.device_id, per, seed=i * 1000 + j)
                    created = bundle.create_bundle(store, device, hq_public, home)
                    assert created is not None
                    paths.append(created.path)
            out.append((device.device_id, paths))
    return out


def file_import(hq_home: Path, devices: list) -> float:
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync import hq, keys

    identity = keys.load_hq_identity(hq_home)
    files = [p for _, paths in devices for p in paths]
    start = time.perf_counter()
    with HqDb.over_store(Store(hq_home / "yntymak.db")) as store:
        for path in files:
            hq.import_bundle(store, identity, hq.read_bundle_file(path))
    return time.perf_counter() - start


def http_upload(hq_home: Path, devices: list, workers: int) -> tuple[float, list[float]]:
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "yntymak_cli", "--home", str(hq_home), "hq", "serve"]
        + ["--bind", "127.0.0.1:0", "--rate", "100000", "--total-rate", "100000"]
        + ["--workers", str(workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        found = re.match(r"Serving HQ on (https?://\S+)", proc.stdout.readline())
        assert found, "the server did not start"
        url = found.group(1) + "/api/v1/bundles"
        latencies: list[float] = []
        failures: list[int] = []
        lock = threading.Lock()

        def upload(device_id: str, paths: list[Path]) -> None:
            with httpx.Client(timeout=300) as client:
                for path in paths:
                    data = path.read_bytes()
                    t0 = time.perf_counter()
                    r = client.post(url, content=data, headers={"X-Yntymak-Device": device_id})
                    took = time.perf_counter() - t0
                    with lock:
                        latencies.append(took)
                        if r.status_code != 200:
                            failures.append(r.status_code)

        threads = [threading.Thread(target=upload, args=d) for d in devices]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        assert not failures, f"non-200 answers: {sorted(set(failures))}"
        return wall, latencies
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--bundles", type=int, default=10)
    parser.add_argument("--per", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from yntymak_cli.store.db import Store
    from yntymak_cli.sync import keys

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        hq_file, hq_http = tmp / "hq-file", tmp / "hq-http"
        hq_file.mkdir(mode=0o700)
        keys.create_hq_identity(hq_file)
        Store(hq_file / "yntymak.db").close()
        t0 = time.perf_counter()
        devices = build(tmp, hq_file, args.devices, args.bundles, args.per)
        t_build = time.perf_counter() - t0
        shutil.copytree(hq_file, hq_http)
        n_bundles = args.devices * args.bundles
        n_subs = n_bundles * args.per
        size = sum(p.stat().st_size for _, paths in devices for p in paths)

        t_file = file_import(hq_file, devices)
        t_http, latencies = http_upload(hq_http, devices, args.workers)

    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    print(
        f"{args.devices} devices x {args.bundles} bundles x {args.per} submissions = "
        f"{n_bundles} bundles, {n_subs:,} submissions, {size / 1e6:.1f} MB "
        f"(built in {t_build:.1f} s; {os.cpu_count()} CPUs, --workers {args.workers})"
    )
    print(
        f"file import (import_bundle): {n_bundles / t_file:8.1f} bundles/s  "
        f"{n_subs / t_file:9,.0f} submissions/s  ({t_file:.2f} s)"
    )
    print(
        f"HTTP upload (hq serve):      {n_bundles / t_http:8.1f} bundles/s  "
        f"{n_subs / t_http:9,.0f} submissions/s  ({t_http:.2f} s)"
    )
    print(f"upload latency: p50 {pct(0.50):.0f} ms, p95 {pct(0.95):.0f} ms, max {pct(1.0):.0f} ms")
    print(f"HTTP / file rate: {t_file / t_http:.2f}x (target >= 0.7x)")


if __name__ == "__main__":
    main()
