"""Review round-trip benchmark: decisions at HQ, a receipt carrying them, the laptop's ack.

    python benchmarks/review_bench.py            # 20,000 submissions, a decision on each
    python benchmarks/review_bench.py --n 5000   # quicker

One device's synthetic submissions (as sync_bench) are imported at HQ. Then, in one run:
`hq review` decisions one by one (each its own transaction, as the CLI makes them),
`hq review list` over all submissions, the receipt v2 that seals every decision to the
device, and `bundle ack` of it on the laptop. The export's cost of the review join is
printed as a ratio: iter_records with decisions on every submission against the same
database before any decision.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_bench import FORM, insert_synthetic  # noqa: E402


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    n = args.n

    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync import bundle, hq, keys, review

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        dev_home, hq_home = tmp / "device", tmp / "hq"
        dev_home.mkdir()
        hq_home.mkdir()
        device = keys.load_or_create_device_identity(dev_home)
        hq_id = keys.create_hq_identity(hq_home)
        dev = Store(dev_home / "yntymak.db")
        insert_synthetic(dev, load_form(FORM).require(), device.device_id, n)
        created = bundle.create_bundle(dev, device, hq_id.public(), tmp)
        hq_store = HqDb.over_store(Store(hq_home / "yntymak.db"))
        hq.enroll(hq_store, device.public(), "bench", "kara_suu")
        hq.import_bundle(hq_store, hq_id, created.path.read_bytes())
        uuids = [r[0] for r in hq_store.conn.exec_driver_sql("SELECT uuid FROM submissions")]

        def export_all() -> int:
            return sum(1 for _ in hq_store.iter_records("village_safety"))

        t_export_before, _ = _timed(export_all)
        comment = "Возраст не совпадает с анкетой: уточните вопрос 2 и перезвоните."

        def decide_all() -> None:
            for i, uuid in enumerate(uuids):
                status = "rejected" if i % 10 == 0 else "approved"
                review.decide(hq_store, uuid, status, comment if i % 10 == 0 else None, "bench")

        t_decide, _ = _timed(decide_all)
        t_export_after, _ = _timed(export_all)
        t_list, listed = _timed(lambda: review.review_list(hq_store))
        assert len(listed) == n
        t_out, sent = _timed(lambda: review.outgoing(hq_store, device.device_id))
        t_seal, receipt = _timed(lambda: review.sign_with_decisions({}, hq_id, sent))
        t_ack, acked = _timed(lambda: bundle.ack_receipt(dev, device, hq_id.public(), receipt))
        assert acked.new_decisions == len(sent.decisions)
        dev.close()
        hq_store.close()

    print(f"submissions: {n:,}   python {sys.version.split()[0]}")
    print(f"hq review approve/reject, one by one  {n / t_decide:>9,.0f} /s ({t_decide:.2f} s)")
    print(f"hq review list (all)                  {t_list * 1000:>9.0f} ms")
    print(f"decisions for the receipt (query)     {t_out * 1000:>9.0f} ms")
    print(
        f"receipt v2 seal + sign                {t_seal * 1000:>9.0f} ms "
        f"({len(sent.decisions):,} decisions, {len(receipt) / 1e6:.2f} MB, {sent.waiting} waiting)"
    )
    print(f"bundle ack on the laptop              {t_ack * 1000:>9.0f} ms")
    print(
        f"export read with decisions / without  {t_export_after / t_export_before:>9.2f}x "
        f"({t_export_before:.2f} s -> {t_export_after:.2f} s)"
    )


if __name__ == "__main__":
    main()
