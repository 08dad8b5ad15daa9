"""Sync benchmark: bundle create, verify and import throughput, against a bare bulk insert.

    python benchmarks/sync_bench.py            # 100,000 submissions
    python benchmarks/sync_bench.py --n 20000  # quicker

Synthetic submissions of tests/data/village_safety.yaml go straight into a device DB
(one transaction, the same rows `Store.finalise` writes). Then, in one run: `create_bundle`
(read, JSON, zlib, seal, sign, write), `open_for_import` at HQ (verify, decrypt, check every
record), `import_bundle` (verify + merge in one transaction) into an empty HQ DB, and the
baseline: sqlite-utils `insert_all` of the same revision rows into a fresh table (same
journal settings as the store). The ratio says what the merge costs above a bulk insert.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
import uuid as uuid_mod
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FORM = ROOT / "tests" / "data" / "village_safety.yaml"
VILLAGES = ["Кара-Суу", "Ак-Суу", "Нарын", "Ат-Башы", "Кочкор", "Ноокат", "Араван", "Өзгөн"]


def _answers(rng: random.Random) -> dict[str, Any]:
    n = rng.randint(0, 3)
    return {
        "today": "2026-11-01",
        "enumerator": "aida",
        "oblast": "osh",
        "district": "kara_suu",
        "village": rng.choice(VILLAGES),
        "age": rng.randint(14, 99),
        "phone": f"+996 555 {rng.randint(100000, 999999)}",
        "felt_tension": "yes",
        "sources": rng.sample(["land", "water", "pasture"], rng.randint(1, 3)),
        "n_incidents": n,
        "incidents": [
            {
                "incident_date": f"2026-10-{rng.randint(10, 28)}",
                "resolved": rng.choice(["yes", "no"]),
            }
            for _ in range(n)
        ],
        "n_sources": 2,
        "location": f"{40 + rng.random():.5f} {72 + rng.random():.5f}",
    }


def insert_synthetic(
    store: Any,
    form: Any,
    device_id: str,
    n: int,
    seed: int = 1,
    make: Any = None,
    rng: random.Random | None = None,
    first: int = 0,
) -> None:
    """n finalised submissions (revision 1) in one transaction, shaped as finalise writes
    them. `make(rng, k)` -> (answers, paradata, enumerator, instance name) gives other
    answers than village_safety's; k runs from `first`."""
    from yntymak_cli.canonical import canonical_text
    from yntymak_cli.store.db import utcnow

    rng = rng or random.Random(seed)
    make = make or _village_safety
    form_hash = store.register_form(form)
    now = utcnow()
    subs, revs = [], []
    for k in range(first, first + n):
        uid = str(uuid_mod.UUID(int=rng.getrandbits(128), version=4))
        answers, paradata, who, name = make(rng, k)
        core = {"uuid": uid, "revision": 1, "form_hash": form_hash, "answers": answers}
        rev_hash = hashlib.sha256(canonical_text(core).encode("utf-8")).hexdigest()
        text = canonical_text(answers)
        subs.append((uid, form.id, form.version, form_hash, 1, who, device_id, now, now, now,
                     name, text))  # fmt: skip
        revs.append((uid, 1, form_hash, now, who, device_id, name, text,
                     canonical_text(paradata), rev_hash))  # fmt: skip
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO submissions (uuid, form_id, form_version, form_hash, status, revision, "
            "enumerator, device_id, created_at, updated_at, submission_time, instance_name, "
            "answers) VALUES (?, ?, ?, ?, 'final', ?, ?, ?, ?, ?, ?, ?, ?)",
            subs,
        )
        conn.executemany(
            "INSERT INTO revisions (uuid, revision, form_hash, submission_time, enumerator, "
            "device_id, instance_name, answers, paradata, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            revs,
        )


def _village_safety(rng: random.Random, _k: int) -> tuple[dict, dict, str, str]:
    answers = _answers(rng)
    return answers, {}, "aida", f"{answers['village']} 2026-11-01"


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    n = args.n

    import sqlite_utils

    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync import bundle, hq, keys

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        dev_home, hq_home = tmp / "device", tmp / "hq"
        dev_home.mkdir()
        hq_home.mkdir()
        device = keys.load_or_create_device_identity(dev_home)
        hq_id = keys.create_hq_identity(hq_home)

        dev = Store(dev_home / "yntymak.db")
        t_fill, _ = _timed(
            lambda: insert_synthetic(dev, load_form(FORM).require(), device.device_id, n)
        )
        t_create, created = _timed(lambda: bundle.create_bundle(dev, device, hq_id.public(), tmp))
        data = created.path.read_bytes()
        rows = [
            dict(r)
            for r in dev.conn.execute(
                "SELECT uuid, revision, form_hash, submission_time, enumerator, device_id, "
                "instance_name, answers, paradata, hash FROM revisions"
            )
        ]
        dev.close()

        hq_store = HqDb.over_store(Store(hq_home / "yntymak.db"))
        hq.enroll(hq_store, device.public(), "bench", "kara_suu")
        t_verify, _ = _timed(lambda: hq.open_for_import(hq_store, hq_id, data))
        t_import, result = _timed(lambda: hq.import_bundle(hq_store, hq_id, data))
        assert result.new == n, result
        t_receipt, _ = _timed(lambda: hq.receipt_for_import(result, hq_id))
        hq_store.close()

        # Baseline: the same revision rows, bulk-inserted by sqlite-utils, same pragmas.
        base = sqlite_utils.Database(tmp / "bare.db")
        base.conn.execute("PRAGMA journal_mode = WAL")
        base.conn.execute("PRAGMA synchronous = FULL")
        t_bare, _ = _timed(lambda: base["t"].insert_all(rows, batch_size=1000))
        assert base["t"].count == n
        base.conn.close()

    def rate(t: float) -> str:
        return f"{n / t:>10,.0f} submissions/s  ({t:6.2f} s)"

    print(
        f"submissions: {n:,}   bundle: {len(data) / 1e6:.1f} MB   python {sys.version.split()[0]}"
    )
    print(f"fill device DB (setup)     {rate(t_fill)}")
    print(f"bundle create              {rate(t_create)}")
    print(f"bundle verify (HQ)         {rate(t_verify)}")
    print(f"hq import (verify + merge) {rate(t_import)}")
    print(f"receipt build              {rate(t_receipt)}")
    print(f"sqlite-utils insert_all    {rate(t_bare)}")
    print(f"import speed / bare insert speed: {t_bare / t_import:.2f}")
    print(f"merge only (import - verify) / bare insert: {(t_import - t_verify) / t_bare:.2f}x time")


if __name__ == "__main__":
    main()
