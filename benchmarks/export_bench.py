"""Export benchmark: time and peak memory of the xlsx export against a bare openpyxl loop,
and of the CSV and JSON Lines exports of the same data.

    python benchmarks/export_bench.py              # 100,000 submissions (a few minutes)
    python benchmarks/export_bench.py --n 10000    # quick check
    python benchmarks/export_bench.py --n 1000000 --only export   # memory at 1M (long)

A synthetic 40-question form (37 main questions, one repeat of 3 questions with 2
instances per submission). Records come from a generator, as the store would yield
them. Each measurement runs in its own subprocess so that peak RSS (ru_maxrss) is
its own. The bare loop appends the very same typed cells (precomputed) to an openpyxl
write-only workbook, continuing a table on a further sheet past Excel's row limit as
the export does: what writing those cells cost before the export moved to XlsxWriter
(issue 15), so the ratio is the export's whole time (layout, conversion, text safety,
XlsxWriter) against that reference. Target: <= 0.65x, peak RSS <= 100 MB.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

POOL = 500  # distinct answer sets cycled through, so generating records costs ~nothing

CHOICES = {
    "yes_no": ["yes", "no"],
    "district": ["kara_suu", "at_bashy", "naryn", "osh_city", "batken"],
    "source": ["land", "water", "pasture"],
}


def form_definition() -> dict[str, Any]:
    questions: list[dict[str, Any]] = [
        {"name": "start", "type": "start"},
        {"name": "end", "type": "end"},
        {"name": "today", "type": "today"},
        {"name": "username", "type": "username"},
    ]
    for i in range(10):
        questions.append({"name": f"text_{i}", "type": "text", "label": f"Text {i}"})
    for i in range(8):
        questions.append({"name": f"int_{i}", "type": "integer", "label": f"Integer {i}"})
    for i in range(3):
        questions.append({"name": f"dec_{i}", "type": "decimal", "label": f"Decimal {i}"})
    for i in range(5):
        lst = "district" if i == 0 else "yes_no"
        questions.append({"name": f"one_{i}", "type": f"select_one {lst}", "label": f"One {i}"})
    for i in range(3):
        questions.append({"name": f"many_{i}", "type": "select_multiple source", "label": "M"})
    questions.append({"name": "visit_date", "type": "date", "label": "Date"})
    questions.append({"name": "geo", "type": "geopoint", "label": "Where"})
    questions.append({"name": "calc", "type": "calculate", "calculation": "1 + 1"})
    questions.append(
        {
            "name": "members",
            "type": "repeat",
            "label": "Members",
            "questions": [
                {"name": "member_name", "type": "text", "label": "Name"},
                {"name": "member_age", "type": "integer", "label": "Age"},
                {"name": "member_role", "type": "select_one yes_no", "label": "Head?"},
            ],
        }
    )
    choices = {k: [{"name": c, "label": c.title()} for c in v] for k, v in CHOICES.items()}
    return {
        "id": "bench",
        "version": "1",
        "summary_by": "one_0",
        "choices": choices,
        "questions": questions,
    }


def answer_pool(seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    words = ["Кара-Суу", "Ат-Башы", "айыл", "село", "water", "жер", "-", "мир", "10"]
    pool = []
    for n in range(POOL):
        a: dict[str, Any] = {
            "start": f"2026-11-{1 + n % 28:02d}T09:{n % 60:02d}:00+06:00",
            "end": f"2026-11-{1 + n % 28:02d}T10:{n % 60:02d}:00+06:00",
            "today": f"2026-11-{1 + n % 28:02d}",
            "username": f"enum{n % 20}",
            "visit_date": f"2026-10-{1 + n % 28:02d}",
            "geo": f"{40 + rnd.random():.6f} {72 + rnd.random():.6f} 800 5",
            "calc": "2",
        }
        for i in range(10):
            a[f"text_{i}"] = " ".join(rnd.choices(words, k=3))
        if n % 100 == 0:  # now and then text a spreadsheet would run as a formula
            a["text_0"] = '=HYPERLINK("http://example.org","x")'
        for i in range(8):
            a[f"int_{i}"] = rnd.randint(0, 100)
        for i in range(3):
            a[f"dec_{i}"] = round(rnd.uniform(0, 1000), 2)
        for i in range(5):
            a[f"one_{i}"] = rnd.choice(CHOICES["district"] if i == 0 else CHOICES["yes_no"])
        for i in range(3):
            a[f"many_{i}"] = rnd.sample(CHOICES["source"], k=rnd.randint(1, 3))
        a["members"] = [
            {"member_name": rnd.choice(words), "member_age": rnd.randint(1, 90), "member_role": r}
            for r in ("yes", "no")
        ]
        pool.append(a)
    return pool


def records(n: int) -> Iterator[dict[str, Any]]:
    pool = answer_pool()
    for i, answers in zip(range(n), itertools.cycle(pool)):
        yield {
            "uuid": f"00000000-0000-4000-8000-{i:012d}",
            "revision": 1,
            "form_id": "bench",
            "form_version": "1",
            "form_hash": "0" * 64,
            "status": "final",
            "created_at": "2026-11-02T09:00:00Z",
            "updated_at": "2026-11-02T09:30:00Z",
            "submission_time": "2026-11-02T09:30:00Z",
            "enumerator": f"enum{i % 20}",
            "device_id": "dev-1",
            "instance_name": None,
            "void_reason": None,
            "answers": answers,
        }


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_export(n: int, out: Path, fmt: str = "xlsx", summary: bool = False) -> dict[str, Any]:
    from yntymak_cli.export import ExportOptions, export
    from yntymak_cli.forms.loader import form_from_dict

    form = form_from_dict(form_definition())
    t0, c0 = time.perf_counter(), cpu_seconds()
    result = export([form], records(n), out, ExportOptions(fmt, summary=summary))
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {"seconds": seconds, "cpu": cpu, "rows": result.rows}


def run_bare(n: int, out: Path) -> dict[str, Any]:
    """The same cells, precomputed per pool entry, appended with no logic at all."""
    from openpyxl import Workbook

    from yntymak_cli.export.layout import RowBuilder, build_layout
    from yntymak_cli.export.xlsx import MAX_SHEET_ROWS
    from yntymak_cli.forms.loader import form_from_dict

    form = form_from_dict(form_definition())
    layout = build_layout([form])
    builder = RowBuilder(layout)
    typed = [list(builder.rows(r)) for r in itertools.islice(records(POOL), POOL)]
    t0, c0 = time.perf_counter(), cpu_seconds()
    wb = Workbook(write_only=True)
    sheets, rows, parts = {}, {}, {}
    for table in layout.tables:
        sheets[table.name] = wb.create_sheet(table.name)
        sheets[table.name].append(table.headers)
        rows[table.name], parts[table.name] = 1, 1
    for _, submission in zip(range(n), itertools.cycle(typed)):
        for table, row in submission:
            if rows[table.name] == MAX_SHEET_ROWS:  # Excel's limit: a further sheet
                parts[table.name] += 1
                sheets[table.name] = wb.create_sheet(f"{table.name} ({parts[table.name]})")
                sheets[table.name].append(table.headers)
                rows[table.name] = 1
            sheets[table.name].append(row)
            rows[table.name] += 1
    wb.save(out)
    return {"seconds": time.perf_counter() - t0, "cpu": cpu_seconds() - c0}


# Measurements: mode -> (what is measured, output name).
MODES = {
    "bare": ("bare openpyxl write-only loop", "bare.xlsx"),
    "export": ("xlsx export", "export.xlsx"),
    "summary": ("xlsx export --summary", "summary.xlsx"),
    "csv": ("CSV export (folder)", "csv"),
    "jsonl": ("JSON Lines export", "export.jsonl"),
}


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def child(mode: str, n: int, out: Path) -> None:
    if mode == "bare":
        data = run_bare(n, out)
    elif mode in ("csv", "jsonl"):
        data = run_export(n, out, mode)
    else:
        data = run_export(n, out, summary=mode == "summary")
    data["peak_rss_mb"] = peak_rss_mb()
    data["size_mb"] = size_mb(out)
    print(json.dumps(data))


def measure(mode: str, n: int, workdir: Path) -> dict[str, Any]:
    out = workdir / MODES[mode][1]
    cmd = [sys.executable, __file__, "--n", str(n), "--child", mode, "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    if out.is_dir():
        shutil.rmtree(out)
    else:
        out.unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="submissions (default 100000)")
    parser.add_argument("--summary", action="store_true", help="also time --summary")
    parser.add_argument(
        "--only",
        help="comma-separated measurements to run, of: " + ", ".join(MODES) + " (default all"
        " but summary)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per measurement, best time kept (default 1)"
    )
    parser.add_argument("--child", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n, args.out)
        return

    if args.only:
        modes = [m.strip() for m in args.only.split(",")]
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            parser.error(f"unknown measurement(s): {', '.join(unknown)}")
    else:
        modes = ["bare", "export", *(["summary"] if args.summary else []), "csv", "jsonl"]
    with tempfile.TemporaryDirectory(prefix="yntymak-bench-") as tmp:
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
        for _ in range(args.repeat):  # interleaved, so load changes hit every mode alike
            for mode in modes:
                runs[mode].append(measure(mode, args.n, Path(tmp)))
    results = {}
    for mode, rs in runs.items():
        best = min(rs, key=lambda r: r["cpu"])
        best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rs)
        results[mode] = best
    print(f"submissions: {args.n:,} (40 questions, repeat x2), best of {args.repeat}")
    for mode, r in results.items():
        print(
            f"{MODES[mode][0]:30s} {r['seconds']:8.2f} s wall {r['cpu']:8.2f} s cpu  "
            f"peak RSS {r['peak_rss_mb']:6.1f} MB  output {r['size_mb']:6.1f} MB"
        )
    # The ratio uses CPU time: wall time swings with whatever else the machine runs.
    if "bare" in results:
        bare = results["bare"]["cpu"]
        for mode in ("export", "summary"):
            if mode in results:
                ratio = results[mode]["cpu"] / bare
                print(f"{MODES[mode][0]} / bare openpyxl loop: {ratio:.2f}x (target <= 0.65x)")
    if "export" in results:
        print("rows:", results["export"]["rows"])


if __name__ == "__main__":
    main()
