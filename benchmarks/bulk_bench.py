"""Bulk entry of paper questionnaires: one `collect --answers` call for N submissions
against N single calls, measured in one run.

Both sides run the real command (`python -m yntymak_cli collect FORM --answers ...`) in a
fresh YNTYMAK_HOME, on a programme form (training_assessment by default), with N distinct
answers built from tests/data/answers/. It prints the time per submission of each way and
their ratio. Target: one call at least 4x faster per submission than single calls.

    python benchmarks/bulk_bench.py [--count 1000] [--singles 1000] [--form training_assessment]

`--singles` times fewer single calls (the per-submission figure of single calls hardly
changes with their number; 1,000 of them take several minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def answers(form_id: str, count: int) -> list[dict]:
    import yaml

    base = yaml.safe_load((ROOT / "tests/data/answers" / f"{form_id}.yaml").read_text("utf-8"))
    out = []
    for n in range(count):
        one = dict(base)
        if form_id == "training_assessment":
            one["participant_code"] = f"P-{n % 1000:03d}"
            one["confidence"] = 1 + n % 5
        out.append(one)
    return out


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "YNTYMAK_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "-m", "yntymak_cli", "collect", *args, "--enumerator", "bench"],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"collect failed ({result.returncode}):\n{result.stderr}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="submissions in the bulk call")
    parser.add_argument("--singles", type=int, default=1000, help="single calls to time")
    parser.add_argument("--form", default="training_assessment")
    args = parser.parse_args()
    form = str(ROOT / "forms" / f"{args.form}.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        home = tmpdir / "home"
        run(home, form, "--answers", str(ROOT / "tests/data/answers" / f"{args.form}.yaml"))

        singles = []
        for n, one in enumerate(answers(args.form, args.singles)):
            path = tmpdir / f"single-{n}.json"
            path.write_text(json.dumps(one, ensure_ascii=False), encoding="utf-8")
            singles.append(path)
        t0 = time.perf_counter()
        for path in singles:
            run(home, form, "--answers", str(path))
        single_s = (time.perf_counter() - t0) / args.singles

        bulk = tmpdir / "bulk.jsonl"
        lines = [json.dumps(one, ensure_ascii=False) for one in answers(args.form, args.count)]
        bulk.write_text("\n".join(lines) + "\n", encoding="utf-8")
        t0 = time.perf_counter()
        result = run(home, form, "--answers", str(bulk))
        bulk_s = (time.perf_counter() - t0) / args.count
        assert len(result.stdout.split()) == args.count, "one UUID per submission"

    ratio = single_s / bulk_s
    print(f"{args.form}: {args.singles} single calls: {single_s * 1000:.1f} ms per submission")
    print(f"{args.form}: one call, {args.count} submissions: {bulk_s * 1000:.2f} ms per submission")
    verdict = "ok" if ratio >= 4 else "BELOW TARGET"
    print(f"one call is {ratio:.1f}x faster per submission (target >= 4x: {verdict})")


if __name__ == "__main__":
    main()
