"""Start-up cost: wall time of `yntymak --help` and `yntymak forms validate` vs `import typer`.

Target: `yntymak --help` within 2.5x of a bare `python -c "import typer"`.
Runs each command N times alternately in one run (the machine is shared and noisy) and
prints medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    commands = {
        "import typer": [py, "-c", "import typer"],
        "yntymak --help": [py, "-m", "yntymak_cli", "--help"],
        "yntymak forms validate": [
            py,
            "-m",
            "yntymak_cli",
            "forms",
            "validate",
            str(ROOT / "tests/data/village_safety.yaml"),
        ],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    for cmd in commands.values():  # warm the file cache
        timed(cmd)
    for _ in range(args.n):
        for name, cmd in commands.items():
            times[name].append(timed(cmd))
    base = statistics.median(times["import typer"])
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:26s} median {med * 1000:7.1f} ms   ratio to import typer {med / base:4.2f}")


if __name__ == "__main__":
    main()
