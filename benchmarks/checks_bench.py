"""`hq checks` against `hq export --format jsonl` on the same HQ data (issue 14).

    python benchmarks/checks_bench.py              # 100,000 submissions (several minutes)
    python benchmarks/checks_bench.py --n 20000    # quick look

benchmarks/export_bench.py's 40-question form (37 main questions, a repeat of 3 with two
instances), with a `quality:` block, filled with distinct random answers and the paradata
an interactive interview keeps (every answer's first and last time, one session), made on
one laptop, carried in bundles of 10,000 and imported at an HQ on SQLite. Then, each in its
own child process (so that its peak RSS is its own), in one run:

  yntymak hq export bench --format jsonl -o out.jsonl
  yntymak hq checks bench --json > checks.json            # 2 reading processes from 20,000
  yntymak hq checks bench --json --jobs 1 > checks1.json  # for comparison

and the ratio of their times. The target is checks <= 2x the export. Peak RSS is each
command's own (benchmarks/child.py). `--keep DIR` keeps the HQ for profiling.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
PER_BUNDLE = 10_000
CENTRES = {"kara_suu": (40.70, 72.88), "at_bashy": (41.17, 75.80), "naryn": (41.43, 75.99),
           "osh_city": (40.53, 72.80), "batken": (40.06, 70.82)}  # fmt: skip
NOV_1 = 1_793_491_200  # 2026-11-01T00:00:00Z
WORDS = ["Кара-Суу", "Ат-Башы", "айыл", "село", "water", "жер", "мир", "Нарын", "Ош"]


def form_definition() -> dict[str, Any]:
    from export_bench import form_definition as base

    form = base()
    form["quality"] = {
        "min_minutes": 10,
        "duplicate_keys": ["text_0", "int_0", "one_0"],
        "district_by": "one_0",
    }
    return form


def make_answers(rng: random.Random, k: int) -> dict[str, Any]:
    from export_bench import CHOICES

    district = rng.choice(CHOICES["district"])
    lat, lon = CENTRES[district]
    day = 1 + k % 28
    a: dict[str, Any] = {
        "start": f"2026-11-{day:02d}T09:00:00",
        "end": f"2026-11-{day:02d}T09:40:00",
        "today": f"2026-11-{day:02d}",
        "username": f"enum{k % 50}",
        "visit_date": f"2026-10-{day:02d}",
        "geo": f"{lat + rng.uniform(-0.1, 0.1):.6f} {lon + rng.uniform(-0.1, 0.1):.6f} 800 5",
        "calc": "2",
    }
    for i in range(10):
        a[f"text_{i}"] = " ".join(rng.choices(WORDS, k=3)) + f" {rng.randint(0, 10**6)}"
    for i in range(8):
        a[f"int_{i}"] = round(20 + 15 * sum(rng.random() for _ in range(4)))
    for i in range(3):
        a[f"dec_{i}"] = round(rng.uniform(0, 1000), 2)
    for i in range(5):
        a[f"one_{i}"] = district if i == 0 else rng.choice(CHOICES["yes_no"])
    for i in range(3):
        a[f"many_{i}"] = rng.sample(CHOICES["source"], k=rng.randint(1, 3))
    a["members"] = [
        {"member_name": rng.choice(WORDS), "member_age": rng.randint(1, 90), "member_role": r}
        for r in ("yes", "no")
    ]
    return a


def make_paradata(rng: random.Random, answers: dict[str, Any], k: int) -> dict[str, Any]:
    """What collect.session keeps for an interview of 15-45 minutes, in daytime."""
    day = 1 + k % 28
    t = NOV_1 + (day - 1) * 86_400 + rng.randint(3, 10) * 3600  # 09:00-16:00 in Bishkek
    started = t

    def iso(seconds: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".000000Z"

    entries: dict[str, Any] = {}
    for name in answers:
        if name in ("start", "end", "today", "username", "calc"):
            continue
        t += rng.uniform(10, 60)
        if name == "members":
            for n in range(2):
                for sub in ("member_name", "member_age", "member_role"):
                    t += rng.uniform(5, 30)
                    entries[f"members[{n + 1}]/{sub}"] = {"first": iso(t), "last": iso(t),
                                                          "changes": 0}  # fmt: skip
            continue
        entries[name] = {"first": iso(t), "last": iso(t), "changes": 0}
    session = {"started": iso(started), "lang": "ky", "last": iso(t), "finalised": iso(t + 20)}
    return {"answers": entries, "back_steps": [], "sessions": [session]}


def make(rng: random.Random, k: int) -> tuple[dict, dict, str, None]:
    answers = make_answers(rng, k)
    return answers, make_paradata(rng, answers, k), f"enum{k % 50}", None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="build the HQ in DIR and keep it (for profiling)")
    args = parser.parse_args()

    from child import run_measured
    from sync_bench import insert_synthetic

    from yntymak_cli.forms.loader import load_form_text
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync import bundle, hq, keys

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.keep:
            args.keep.mkdir(parents=True)  # a fresh directory: never overwrite one
            tmp = args.keep
        hq_home, dev_home = tmp / "hq", tmp / "device"
        hq_home.mkdir(mode=0o700)
        dev_home.mkdir()
        identity = keys.create_hq_identity(hq_home)
        device = keys.load_or_create_device_identity(dev_home)
        form = load_form_text(json.dumps(form_definition()), "bench.yaml").require()
        with HqDb.at(hq_home / "yntymak.db", None) as db:
            hq.enroll(db, device.public(), "bench", "kara_suu")
        rng = random.Random(14)
        t0 = time.perf_counter()
        held = 0
        while held < args.n:
            n = min(PER_BUNDLE, args.n - held)
            with Store(dev_home / "yntymak.db") as dev:
                insert_synthetic(dev, form, device.device_id, n, make=make, rng=rng, first=held)
                made = bundle.create_bundle(dev, device, identity.public(), tmp)
                assert made is not None
                data = made.path.read_bytes()
                made.path.unlink()
            with HqDb.at(hq_home / "yntymak.db", None) as db:
                hq.import_bundle(db, identity, data)
            with Store(dev_home / "yntymak.db") as dev, dev.write() as conn:
                conn.execute("UPDATE revisions SET synced_at = 'bench'")
            held += n
        built = time.perf_counter() - t0
        print(f"python {sys.version.split()[0]}; {args.n:,} submissions of a 40-question form "
              f"with paradata at an HQ on SQLite (built in {built:.0f} s)")  # fmt: skip
        base = [sys.executable, "-m", "yntymak_cli", "--home", str(hq_home), "hq"]
        out = tmp / "out.jsonl"
        t_export, rss_export = run_measured([*base, "export", "bench", "--format", "jsonl", "-o",
                                      str(out)], tmp / "export.txt")  # fmt: skip
        t_checks, rss_checks = run_measured([*base, "checks", "bench", "--json"],
                                            tmp / "checks.json")  # fmt: skip
        t_one, rss_one = run_measured([*base, "checks", "bench", "--json", "--jobs", "1"],
                                      tmp / "checks1.json")  # fmt: skip
        report = json.loads((tmp / "checks.json").read_text(encoding="utf-8"))["forms"][0]
        assert report["submissions"] == args.n, report["submissions"]
        print(f"  hq export --format jsonl: {t_export:6.1f} s, peak RSS {rss_export:5.0f} MB")
        print(f"  hq checks --json:         {t_checks:6.1f} s, peak RSS {rss_checks:5.0f} MB "
              f"({report['flagged']:,} flagged: {report['checks']})")  # fmt: skip
        print(f"  hq checks --jobs 1:       {t_one:6.1f} s, peak RSS {rss_one:5.0f} MB "
              f"(one process: {t_one / t_export:.2f}x)")  # fmt: skip
        print(f"  checks / export: {t_checks / t_export:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
