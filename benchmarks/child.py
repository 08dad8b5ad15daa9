"""Time and peak RSS of a command run to completion, measured for itself alone.

A child forked from a benchmark inherits the benchmark's peak RSS (Linux keeps the
high-water mark of the memory it replaces at exec), so a forked `yntymak` would report
the benchmark's hundreds of MB as its own. The command is therefore started by a small
launcher process, whose own peak is a few MB, and the launcher reports the command's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

_LAUNCH = """\
import os, sys
out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
pid = os.fork()
if pid == 0:
    os.dup2(out, 1)
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss, file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(
    cmd: list[str], stdout: Path, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of `cmd`, its standard output written to `stdout`."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCH, str(stdout), *cmd],
        env=env if env is not None else os.environ.copy(),
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {cmd}\n{done.stderr}")
    kilobytes = int(done.stderr.strip().splitlines()[-1])  # kilobytes on Linux
    return seconds, kilobytes / 1024
