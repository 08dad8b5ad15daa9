"""Where `hq serve` keeps a request body while it arrives: a file in HQ_HOME/spool.

A bundle may carry up to 1 GiB of media, so bodies are never held in memory: each upload
streams into a file of its own (0600, in a 0700 folder), and HQ imports from that file as
`hq import` does (one pass, the bytes authenticated are the bytes parsed). The file is
removed however the request ends (imported, refused, cut off, timed out, a server error);
one left by a server killed outright is removed at the next start.

Names are `upload-PID-RANDOM.part`, PID the server process that wrote it. With HQ on
PostgreSQL several worker processes share the folder, so a (re)starting one removes only
files nobody is using: each upload holds an exclusive `flock` on its file until it is
removed, and a file is a leftover when that lock can be taken and either its process is
gone or it has not been written for a minute (a PID is reused after a restart, in a
container always). On Windows leftovers are not removed (no `flock`; remove them by hand
while the server is stopped).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import tempfile
import time
from pathlib import Path

from yntymak_cli.errors import InvalidInput
from yntymak_cli.i18n import current_lang, t
from yntymak_cli.plain import plain

log = logging.getLogger("yntymak.server")

SPOOL = "spool"  # HQ_HOME/spool
PREFIX = "upload-"
SUFFIX = ".part"
# Bytes gathered from the socket before one write to disk (in a worker thread, off the
# event loop): memory per upload stays about this, however large the bundle.
WRITE_SIZE = 256 * 1024
_LEFTOVER = re.compile(rf"{PREFIX}(\d+)-[^/]*{re.escape(SUFFIX)}")
# A file its live process has not written for this long, and whose lock is free, is a
# leftover of an earlier process with the same PID; younger, it may be one just made
# (between mkstemp and its flock).
STALE_SECONDS = 60.0


def prepare(folder: Path) -> Path:
    """Create the spool folder (0700), or tighten one that exists; remove the files of
    server processes that are gone. InvalidInput when it cannot be a folder of ours."""
    folder = Path(folder)
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        if os.name != "nt" and stat.S_IMODE(info.st_mode) & 0o077:
            folder.chmod(0o700)
    except OSError as exc:
        raise InvalidInput(
            t(
                "serve_spool_unusable",
                current_lang(),
                folder=plain(folder),
                error=exc.strerror or exc,
            )
        ) from None
    _remove_leftovers(folder)
    return folder


def _remove_leftovers(folder: Path) -> None:
    if os.name == "nt":  # no flock, and os.kill(pid, 0) would end the process there
        return
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        found = _LEFTOVER.fullmatch(name)
        if found and _remove_if_unused(folder / name, int(found.group(1))):
            log.info("removed %s, left by a server process that is gone", name)


def _remove_if_unused(path: Path, pid: int) -> bool:
    """Unlink `path` if no upload holds its lock and it is a leftover (see the module)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # an upload in progress
        age = time.time() - os.fstat(fd).st_mtime
        if _alive(pid) and age < STALE_SECONDS:
            return False
        path.unlink(missing_ok=True)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid > 0  # another user's process: not ours to judge
    return True


class SpoolFile:
    """One upload's body on disk. `write` from one thread at a time; `remove` once the
    request is over (whatever happened): closes and unlinks, safe to call twice."""

    def __init__(self, folder: Path) -> None:
        # mkstemp: O_EXCL and mode 0600, never through a link someone left there.
        fd, name = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-", suffix=SUFFIX, dir=folder)
        self.path = Path(name)
        # Held until remove(), on a descriptor of its own (the writer is closed before the
        # import reads): a restarting worker leaves the file alone while it is held.
        self._lock: int | None = None
        if os.name != "nt":
            import fcntl

            self._lock = os.open(name, os.O_RDONLY)
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        self._file = os.fdopen(fd, "wb")
        self.size = 0

    def write(self, data: bytes | bytearray) -> None:
        self._file.write(data)
        self.size += len(data)

    def finish(self) -> None:
        """All of the body is written: close for writing (the import opens it to read)."""
        self._file.close()

    def remove(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # a full disk failing the last flush: the file goes anyway
        self.path.unlink(missing_ok=True)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
