"""Test helpers shared by several test modules (not a test module itself)."""

from __future__ import annotations

import gc
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small file system of its own at `path` (root only; the test is skipped otherwise),
    unmounted afterwards: a real full disk for disk-full tests."""
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "nt" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    options = f"size={size},mode=0700"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        gc.collect()  # close connections the CLI left to the garbage collector
        subprocess.run(["umount", "-l", str(path)], check=False)


def grow(path: Path, size: str) -> None:
    """Free space on a tmpfs of tmpfs(): give it a new size."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)
