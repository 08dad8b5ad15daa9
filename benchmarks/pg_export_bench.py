"""Export memory on PostgreSQL as HQ grows (issue 17): `hq export` streams from the server.

    python benchmarks/pg_export_bench.py                 # 50,000 then 200,000 submissions
    python benchmarks/pg_export_bench.py --sizes 20000 100000 1000000

Starts its own PostgreSQL server (tests/postgres.py), imports synthetic bundles of
tests/data/village_safety.yaml (benchmarks/sync_bench.py's insert_synthetic, 10,000
submissions a bundle) into one HQ database, and at each size runs `yntymak hq export
village_safety --format jsonl` in a child process, printing its time and peak RSS. Flat
memory means the peak does not grow with the number of submissions.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
FORM = ROOT / "tests" / "data" / "village_safety.yaml"
PER_BUNDLE = 10_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000])
    args = parser.parse_args()

    from child import run_measured
    from sync_bench import insert_synthetic
    from tests import postgres

    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync import bundle, hq, keys

    server = postgres.Server()
    server.start()
    try:
        url = server.new_database()
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            hq_home, dev_home = tmp / "hq", tmp / "device"
            hq_home.mkdir(mode=0o700)
            dev_home.mkdir()
            identity = keys.create_hq_identity(hq_home)
            device = keys.load_or_create_device_identity(dev_home)
            form = load_form(FORM).require()
            env = {**os.environ, "YNTYMAK_HQ_DB": url}
            with HqDb.postgres(url) as db:
                hq.enroll(db, device.public(), "bench", "kara_suu")
            held = 0
            print(f"python {sys.version.split()[0]}, PostgreSQL at {url.split('?')[0]}")
            for size in sorted(args.sizes):
                t0 = time.perf_counter()
                while held < size:
                    n = min(PER_BUNDLE, size - held)
                    with Store(dev_home / "yntymak.db") as dev:
                        insert_synthetic(dev, form, device.device_id, n, seed=held + 1)
                        made = bundle.create_bundle(dev, device, identity.public(), tmp)
                        assert made is not None
                        data = made.path.read_bytes()
                        made.path.unlink()
                    with HqDb.postgres(url) as db:
                        result = hq.import_bundle(db, identity, data)
                        hq.issue_receipt(db, identity, result)
                    # Acknowledge, so the next bundle carries only what is new.
                    with Store(dev_home / "yntymak.db") as dev, dev.write() as conn:
                        conn.execute("UPDATE revisions SET synced_at = 'bench'")
                    held += n
                fill = time.perf_counter() - t0
                out = tmp / f"export-{size}.jsonl"
                cmd = [sys.executable, "-m", "yntymak_cli", "--home", str(hq_home), "hq",
                       "export", "village_safety", "--format", "jsonl", "-o", str(out)]  # fmt: skip
                seconds, peak = run_measured(cmd, tmp / "export.out", env)
                lines = sum(1 for _ in out.open("rb"))
                assert lines == size, (lines, size)
                out.unlink()
                print(
                    f"{size:>9,} submissions: export {seconds:6.1f} s "
                    f"({size / seconds:>8,.0f}/s), peak RSS {peak:6.0f} MB "
                    f"(import to get there: {fill:.0f} s)"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
