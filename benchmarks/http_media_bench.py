"""HTTP media benchmark: a bundle of N photos through `yntymak sync` to `yntymak hq serve`.

    python benchmarks/http_media_bench.py             # 100 photos of 3 MB (300 MB)
    python benchmarks/http_media_bench.py --n 20      # quicker

A laptop home takes N photos (benchmarks/media_bench.py's JPEGs of random pixels, one
`collect --answers`); `bundle create -o HOME/outbox` packs them (the outbox is where `sync`
looks for bundles HQ has not acknowledged yet, so the bundle's size is known before it
travels). HQ runs as a real `yntymak hq serve` process on 127.0.0.1, and `yntymak sync`
uploads the bundle and applies the receipt.

Printed: time and peak RSS of each laptop command (benchmarks/child.py, measured alone),
and the server's resident memory at rest and its peak (VmHWM in /proc/PID/status, read
before it is stopped). Neither side should grow with the bundle: the laptop streams the
file, the server streams the body into HQ_HOME/spool and imports from that file.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child import run_measured  # noqa: E402
from media_bench import FORM, make_photos, yntymak  # noqa: E402

SERVING = re.compile(r"Serving HQ on (https?://\S+)")


def run(cmd: list[str], log: Path) -> tuple[float, float]:
    return run_measured(cmd, log, _env())


def _env() -> dict[str, str]:
    return {**os.environ, "YNTYMAK_LANG": "en", "NO_PROXY": "127.0.0.1,localhost"}


def memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a running process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def start_server(hq: Path, tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    out, err = tmp / "serve.out", tmp / "serve.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            yntymak(hq, "hq", "serve", "--bind", "127.0.0.1:0", *args),
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=_env(),
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = SERVING.search(out.read_text(encoding="utf-8", errors="replace"))
        if found:
            return proc, found.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"hq serve did not start:\n{err.read_text(errors='replace')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="photos (default 100)")
    parser.add_argument("--mb", type=float, default=3.0, help="MB per photo (default 3)")
    parser.add_argument("--workers", default="2", help="hq serve --workers (default 2)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: temp)")
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        raise SystemExit("this benchmark reads /proc/PID/status (Linux)")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        laptop, hq, photos = tmp / "laptop", tmp / "hq", tmp / "photos"
        form = tmp / "form.yaml"
        form.write_text(FORM, encoding="utf-8")
        total = make_photos(photos, args.n, int(args.mb * 1024 * 1024))
        log = tmp / "out.txt"
        for cmd in (
            yntymak(hq, "hq", "init", "-o", str(tmp / "hq.pub")),
            yntymak(laptop, "keys", "export", "-o", str(tmp / "laptop.pub")),
            yntymak(hq, "hq", "enroll", str(tmp / "laptop.pub"), "--name", "Bench"),
            yntymak(laptop, "keys", "trust-hq", str(tmp / "hq.pub")),
        ):
            run(cmd, log)
        print(f"{args.n} photos of about {args.mb:g} MB ({total / 1024 / 1024:,.0f} MB)")
        collect = yntymak(laptop, "collect", str(form), "--answers", str(photos / "all.jsonl"),
                          "--enumerator", "bench")  # fmt: skip
        seconds, peak = run(collect, log)
        print(f"  collect --answers   {seconds:7.1f} s   peak RSS {peak:7.1f} MB")
        outbox = laptop / "outbox"
        seconds, peak = run(yntymak(laptop, "bundle", "create", "-o", str(outbox)), log)
        bundle = next(outbox.glob("*.ykb"))
        mb = bundle.stat().st_size / 1024 / 1024
        print(f"  bundle create       {seconds:7.1f} s   peak RSS {peak:7.1f} MB   ({mb:,.0f} MB)")
        proc, url = start_server(hq, tmp, "--workers", args.workers)
        try:
            time.sleep(0.5)
            rest = memory(proc.pid)
            print(f"  hq serve at rest                RSS {rest['VmRSS']:7.1f} MB")
            seconds, peak = run(yntymak(laptop, "sync", url, "--timeout", "3600"), log)
            print(f"  sync (upload + import) {seconds:5.1f} s   peak RSS {peak:7.1f} MB")
            after = memory(proc.pid)
            print(
                f"  hq serve                      peak RSS {after['VmHWM']:7.1f} MB "
                f"(+{after['VmHWM'] - rest['VmRSS']:.1f} MB over its RSS at rest)"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        spool = hq / "spool"
        left = list(spool.iterdir()) if spool.is_dir() else []
        waiting = len(list(outbox.glob("*.ykb")))
        print(f"  spool files left: {len(left)}; outbox bundles left: {waiting}")
        for line in (tmp / "serve.err").read_text(encoding="utf-8", errors="replace").splitlines():
            if "bundle" in line and "device" in line:
                print("  server: " + line.split("yntymak.server: ", 1)[-1])
        print("  " + log.read_text(encoding="utf-8").strip().replace("\n", "\n  "))


if __name__ == "__main__":
    main()
