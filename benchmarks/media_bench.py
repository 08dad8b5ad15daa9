"""Media benchmark: photos through bundle create, bundle verify and hq import.

    python benchmarks/media_bench.py             # 500 photos of 3 MB (1.5 GB)
    python benchmarks/media_bench.py --n 100     # quicker

N photos of about --mb MB (JPEGs of random pixels: collect opens every photo to look for a
location, so they must be real images; noise hardly compresses, and a photo without GPS is
kept byte for byte) are taken into a laptop home with one `collect --answers` of a .jsonl
file. Then each step runs as its own `yntymak`
process, timed, with its peak RSS measured alone (benchmarks/child.py): `bundle create`,
`bundle verify` at HQ, `hq import`. Memory should stay flat as N grows: files are read,
encrypted, decrypted and hashed a chunk (1 MiB) at a time.

A bundle holds at most 1 GiB of content (payload and media together), so 500 photos of
3 MB do not fit in one: `bundle create` refuses, and the script says so and stops.
"""

from __future__ import annotations

import argparse
import json
import os
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


def noise_jpeg(size: int) -> bytes:
    """A JPEG of random pixels, about `size` bytes (about 0.9 byte a pixel at quality 90)."""
    import io

    from PIL import Image

    side = max(16, int((size / 0.9) ** 0.5))
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "JPEG", quality=90)
    return out.getvalue()


def make_photos(folder: Path, n: int, size: int) -> int:
    """n photos and all.jsonl (one submission each) in `folder`; their bytes in all."""
    folder.mkdir(parents=True, exist_ok=True)
    lines, total = [], 0
    for i in range(n):
        name = f"IMG_{i:04d}.jpg"
        data = noise_jpeg(size)
        (folder / name).write_bytes(data)
        total += len(data)
        lines.append(json.dumps({"village": f"v{i}", "photo": name}))
    (folder / "all.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return total


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
        print(f"  collect --answers   {seconds:7.1f} s   peak RSS {peak:7.1f} MB")
        out = tmp / "bundles"
        try:
            seconds, peak = run(yntymak(laptop, "bundle", "create", "-o", str(out)), log)
        except SystemExit as exc:  # its message, then the launcher's RSS line
            lines = str(exc).splitlines()
            said = [line for line in lines if line.startswith("Error")] or lines[-2:-1]
            print(f"  bundle create refused: {said[-1] if said else lines[-1]}")
            return
        bundle = next(out.glob("*.ykb"))
        mb = bundle.stat().st_size / 1024 / 1024
        print(f"  bundle create       {seconds:7.1f} s   peak RSS {peak:7.1f} MB   ({mb:,.0f} MB)")
        seconds, peak = run(yntymak(hq, "bundle", "verify", str(bundle)), log)
        print(f"  bundle verify       {seconds:7.1f} s   peak RSS {peak:7.1f} MB")
        receipts = tmp / "receipts"
        imported = yntymak(hq, "hq", "import", str(bundle), "--receipts", str(receipts))
        seconds, peak = run(imported, log)
        print(f"  hq import           {seconds:7.1f} s   peak RSS {peak:7.1f} MB")
        print("  " + log.read_text(encoding="utf-8").strip().replace("\n", "\n  "))


if __name__ == "__main__":
    main()
