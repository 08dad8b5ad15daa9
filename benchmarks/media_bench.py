"""Media benchmark: photos through bundle create, bundle verify and hq import.

    python benchmarks/media_bench.py             # 500 photos of 3 MB (1.5 GB)
    python benchmarks/media_bench.py --n 100     # quicker

N "photos" of --mb MB (a real 64x64 JPEG padded with comment segments of random bytes:
collect opens every JPEG with Pillow to look for a location, so random bytes behind a JPEG
header are refused as damaged; the padding keeps each photo distinct and incompressible,
and there is no location, so each is kept byte for byte) are taken into a laptop home
with one `collect --answers` of a .jsonl file. Then each step runs as its own `yntymak`
process, timed, with its peak RSS measured alone (benchmarks/child.py): `bundle create`,
`bundle verify` at HQ, `hq import`. Memory should stay flat as N grows: files are read,
encrypted, decrypted and hashed a chunk (1 MiB) at a time.

A bundle holds at most 1 GiB of content (payload and media together), so 500 photos of
3 MB do not fit in one: `bundle create` runs again while it says the rest waits for the
next bundle (no receipt in between, as with a USB stick), then each bundle is verified
and imported. Each part carries only what no part before it carries (sync/split.py).
HQ must end with all N.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child import run_measured  # noqa: E402

FORM = """\
id: media_bench
version: "1"
title: Media benchmark
max_size: 20 MB
questions:
  - name: village
    type: text
    label: Village
  - name: photo
    type: image
    label: Photo
"""


def jpeg(size: int) -> bytes:
    """A valid JPEG of exactly `size` bytes (at least 64 kB): a small noise image, with
    comment (COM) segments of random bytes after its start marker."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(buffer, "JPEG", quality=90)
    base = buffer.getvalue()
    segments = []
    left = size - len(base)
    while left > 0:
        body = min(left - 4, 65533)  # a segment: marker, length (body + 2), body
        if 0 < left - 4 - body < 4:  # leave room for the next segment's own header
            body -= 4
        segments.append(b"\xff\xfe" + struct.pack(">H", body + 2) + os.urandom(body))
        left -= body + 4
    return base[:2] + b"".join(segments) + base[2:]


def make_photos(folder: Path, n: int, size: int) -> int:
    """n photos of `size` bytes and all.jsonl (one submission each) in `folder`; their
    bytes in all."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        name = f"IMG_{i:04d}.jpg"
        (folder / name).write_bytes(jpeg(size))
        lines.append(json.dumps({"village": f"v{i}", "photo": name}))
    (folder / "all.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return n * size


def yntymak(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "yntymak_cli", "--home", str(home), *args]


def run(cmd: list[str], log: Path) -> tuple[float, float]:
    env = {**os.environ, "YNTYMAK_LANG": "en"}
    return run_measured(cmd, log, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="photos (default 500)")
    parser.add_argument("--mb", type=float, default=3.0, help="MB per photo (default 3)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: temp)")
    args = parser.parse_args()
    size = int(args.mb * 1024 * 1024)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        laptop, hq, photos = tmp / "laptop", tmp / "hq", tmp / "photos"
        form = tmp / "form.yaml"
        form.write_text(FORM, encoding="utf-8")
        total = make_photos(photos, args.n, size)
        log = tmp / "out.txt"
        setup = [
            yntymak(hq, "hq", "init", "-o", str(tmp / "hq.pub")),
            yntymak(laptop, "keys", "export", "-o", str(tmp / "laptop.pub")),
            yntymak(hq, "hq", "enroll", str(tmp / "laptop.pub"), "--name", "Bench"),
            yntymak(laptop, "keys", "trust-hq", str(tmp / "hq.pub")),
        ]
        for cmd in setup:
            run(cmd, log)
        total_mb = total / 1024 / 1024
        print(f"{args.n} photos of {args.mb:g} MB ({total_mb:,.0f} MB)")
        collect = yntymak(
            laptop,
            "collect",
            str(form),
            "--answers",
            str(photos / "all.jsonl"),
            "--enumerator",
            "bench",
        )
        seconds, peak = run(collect, log)
        print(f"  {'collect --answers':<20}{seconds:7.1f} s   peak RSS {peak:7.1f} MB")
        out = tmp / "bundles"
        bundles: list[Path] = []
        steps: list[tuple[str, float, float]] = [("collect --answers", seconds, peak)]
        while len(bundles) <= args.n:  # each part carries at least one submission
            try:
                seconds, peak = run(yntymak(laptop, "bundle", "create", "-o", str(out)), log)
            except SystemExit as exc:  # its message, then the launcher's RSS line
                lines = str(exc).splitlines()
                said = [line for line in lines if line.startswith("Error")] or lines[-2:-1]
                print(f"  bundle create refused: {said[-1] if said else lines[-1]}")
                return
            text = log.read_text(encoding="utf-8")
            bundle = Path(text.split("Wrote ", 1)[1].split(" (bundle", 1)[0])
            bundles.append(bundle)
            mb = bundle.stat().st_size / 1024 / 1024
            name = f"bundle create {len(bundles)}"
            steps.append((name, seconds, peak))
            print(f"  {name:<20}{seconds:7.1f} s   peak RSS {peak:7.1f} MB   ({mb:,.0f} MB)")
            if "wait for the next bundle" not in text:
                break
        receipts = tmp / "receipts"
        for i, bundle in enumerate(bundles, 1):
            seconds, peak = run(yntymak(hq, "bundle", "verify", str(bundle)), log)
            steps.append((f"bundle verify {i}", seconds, peak))
            print(f"  {f'bundle verify {i}':<20}{seconds:7.1f} s   peak RSS {peak:7.1f} MB")
        for i, bundle in enumerate(bundles, 1):
            imported = yntymak(hq, "hq", "import", str(bundle), "--receipts", str(receipts))
            seconds, peak = run(imported, log)
            steps.append((f"hq import {i}", seconds, peak))
            said = log.read_text(encoding="utf-8").splitlines()[0].split(": ", 1)[-1]
            print(f"  {f'hq import {i}':<20}{seconds:7.1f} s   peak RSS {peak:7.1f} MB   {said}")
        # HQ holds every submission: a listing of its submissions counts them.
        run(yntymak(hq, "hq", "export", "media_bench", "-o", str(tmp / "all.csv")), log)
        with (tmp / "all.csv").open(encoding="utf-8-sig") as f:
            held = sum(1 for _line in f) - 1
        total_mb = sum(b.stat().st_size for b in bundles) / 1024 / 1024
        for what in ("bundle create", "bundle verify", "hq import"):
            mine = [(s, p) for name, s, p in steps if name.startswith(what)]
            print(
                f"  {what + ' (all)':<20}{sum(s for s, _p in mine):7.1f} s   "
                f"peak RSS {max(p for _s, p in mine):7.1f} MB"
            )
        print(f"  {len(bundles)} bundle(s), {total_mb:,.0f} MB in all; HQ holds {held} of {args.n}")


if __name__ == "__main__":
    main()
