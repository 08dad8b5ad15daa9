"""A real PostgreSQL server for the tests: started once per test session in a temporary
folder (Debian's binaries; `.ci/run` installs them), on a Unix socket only, with a fresh
database per test. Never a mock: HQ's queries run against the server they will meet.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
_counter = itertools.count(1)


def _binary(name: str) -> str | None:
    for folder in _BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


def available() -> bool:
    return _binary("initdb") is not None and _binary("pg_ctl") is not None


class Server:
    """initdb + pg_ctl in a temporary folder; as the `postgres` user when run as root
    (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="yntymak-pg-"))
        self.data = self.dir / "data"
        self.socket = self.dir
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        assert initdb and pg_ctl
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync", "--locale=C.UTF-8")  # fmt: skip
        options = f"-k {self.socket} -c listen_addresses='' -c fsync=off -c max_connections=300"
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-w", "-t", "60",
                  "-l", str(self.dir / "log"), "start")  # fmt: skip

    def stop(self) -> None:
        pg_ctl = _binary("pg_ctl")
        try:
            if pg_ctl:
                self._run(pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"hq_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(f"host={self.socket} user=postgres dbname=postgres",
                             autocommit=True) as conn:  # fmt: skip
            conn.execute(f'CREATE DATABASE "{name}"')  # a name we made: digits and _
        return self.url(name)
