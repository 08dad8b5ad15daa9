"""Files in and out: reading within limits, writing whole or not at all.

Reading a file the user named: regular files only, and never too big. A path can name a
FIFO (opening it blocks until a writer comes), a device such as /dev/zero (reading it never
ends) or a huge file. `read_limited()` opens without blocking, checks with fstat that it
holds a regular file, and reads at most `limit` bytes plus one to tell "exactly at the
limit" from "over it".

Writing a file whole or not at all: a new temp file beside it, fsync, rename, fsync the
folder. Every file the program writes (bundles, receipts, keys, exports, imported forms)
goes through here, so none is ever seen half-written under its name and no temp file is
left behind when a write fails:

- `write_atomic(path, data)` for bytes in memory;
- `atomic_path(path)` for streamed writers (export): a context manager that yields the temp
  path to write to and gives it the real name only if the block finishes;
- `write_temp()` and `publish()`, the two halves, for a caller that must do something in
  between (a bundle gets its name only after the database has recorded it).

Write errors are OSError (FileExistsError when a name may not be replaced); callers turn
them into messages, since only they know what the file is to the user.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from yntymak_cli.errors import InvalidInput

MB = 1024 * 1024
# A form (or an included choice list): ours are under 100 kB, but a generated list of
# 100,000 places with translated labels passes 10 MB; 20 MB keeps a file from filling memory.
MAX_FORM_BYTES = 20 * MB
# An answers file holds one submission; 50 MB is far beyond any real interview.
MAX_ANSWERS_BYTES = 50 * MB

# O_NONBLOCK makes open() of a FIFO return at once instead of waiting for a writer; it does
# not change reads of a regular file. Windows has neither the flag nor FIFOs.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


class FileRefused(InvalidInput):
    """A file that cannot or may not be read; `reason` is the message without the path."""

    def __init__(self, path: Path | str, reason: str, missing: bool = False) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason
        self.missing = missing


def read_limited(path: Path | str, limit: int, what: str = "a file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes; FileRefused otherwise.

    `what` names the file in messages, with its article: "an answers file".
    """
    from yntymak_cli.i18n import current_lang, os_error_text, t

    lang = current_lang()
    kind = t(_KINDS[what], lang) if what in _KINDS else what
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        missing = isinstance(exc, FileNotFoundError)
        reason = os_error_text(exc, lang)
        raise FileRefused(path, t("file_cannot_read", lang, reason=reason), missing) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise FileRefused(path, t("file_is_folder", lang, what=kind))
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(path, t("file_not_regular", lang, what=kind))
        if info.st_size > limit:
            raise FileRefused(path, _too_large(kind, limit))
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # st_size can be 0 for files that still have content (/proc)
            chunk = os.read(fd, min(1 * MB, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        reason = os_error_text(exc, lang)
        raise FileRefused(path, t("file_cannot_read", lang, reason=reason)) from None
    finally:
        os.close(fd)
    if size > limit:
        raise FileRefused(path, _too_large(kind, limit))
    return b"".join(chunks)


# The files this module names in messages, by the `what` callers give (others as given).
_KINDS = {
    "an answers file": "file_kind_answers",
    "a form file": "file_kind_form",
    "a choice list file": "file_kind_choices",
    "a data file": "file_kind_data",
    "a media file": "file_kind_media",
    # sync files (sync.keys.read_sync_file)
    "a bundle": "file_kind_bundle",
    "a receipt": "file_kind_receipt",
    "a device key": "file_kind_device_key",
    "a device public key": "file_kind_device_pub",
    "an HQ key": "file_kind_hq_key",
    "an HQ public key": "file_kind_hq_pub",
}


def _too_large(what: str, limit: int) -> str:
    from yntymak_cli.i18n import current_lang, t

    return t("file_too_large", current_lang(), what=what, mb=limit // MB)


# -- writing ------------------------------------------------------------------------------

# Temp names are ".NAME.RANDOM.SUFFIX"; NAME is cut so they stay under the usual 255-byte limit.
_NAME_KEEP = 200
# Files take the mode asked for, less the umask, like any file the user creates.
DEFAULT_MODE = 0o666


def temp_name(path: Path, suffix: str = ".tmp") -> Path:
    """A hidden name beside `path`, unique by a random part (same file system: atomic rename)."""
    return path.with_name(f".{path.name[:_NAME_KEEP]}.{secrets.token_hex(6)}{suffix}")


def create_temp(path: Path, *, mode: int = DEFAULT_MODE, suffix: str = ".tmp") -> Path:
    """A new, empty file of its own beside `path` (O_EXCL: never through a link left there)."""
    tmp, fd = _open_new(Path(path), mode, suffix)
    os.close(fd)
    return tmp


def _open_new(path: Path, mode: int, suffix: str) -> tuple[Path, int]:
    while True:
        tmp = temp_name(path, suffix)
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, mode)
        except FileExistsError:
            continue  # 48 random bits taken: only by a file someone put there on purpose


def write_temp(path: Path, data: bytes, *, mode: int = DEFAULT_MODE, suffix: str = ".tmp") -> Path:
    """`data` in a new temp file beside `path`, on disk (fsync) before it returns.

    On failure the temp file is removed and the error raised.
    """
    tmp, fd = _open_new(Path(path), mode, suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def publish(tmp: Path, path: Path, *, overwrite: bool = True) -> None:
    """Give the temp file `tmp` the name `path`, then make the new name durable.

    With overwrite=False an existing file is never replaced (FileExistsError): the temp file
    is hard-linked into place, and a link, unlike a rename, fails if the name exists. Where
    there are no hard links (FAT USB sticks), the name is checked, then renamed: not atomic
    against a racing writer, so callers that may race hold a lock (bundle create holds the
    database's). Whatever happens, the temp name is gone afterwards.
    """
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:
                if os.path.lexists(path):
                    raise FileExistsError(path) from None
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(Path(path).parent)


def write_atomic(
    path: Path, data: bytes, *, mode: int = DEFAULT_MODE, overwrite: bool = True
) -> None:
    """Write `data` as the whole of `path`, or leave `path` as it was.

    `mode` is applied (less the umask) at creation; overwrite=False refuses an existing
    file with FileExistsError, see publish().
    """
    path = Path(path)
    publish(write_temp(path, data, mode=mode), path, overwrite=overwrite)


@contextmanager
def atomic_path(
    path: Path, *, mode: int = DEFAULT_MODE, overwrite: bool = True, suffix: str = ".part"
) -> Iterator[Path]:
    """A temp path beside `path` to write to; it becomes `path` when the block finishes.

    The file exists (empty, created exclusively) when the block starts, so a writer opens it
    with "w"/"wb". If the block raises, the temp file is removed and `path` is untouched.
    """
    path = Path(path)
    tmp = create_temp(path, mode=mode, suffix=suffix)
    try:
        yield tmp
        fsync_file(tmp)
        publish(tmp, path, overwrite=overwrite)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_file(path: Path) -> None:
    """Flush a file written by someone else's code (openpyxl, zipfile) to disk."""
    fd = os.open(path, os.O_WRONLY | _O_BINARY)  # Windows fsyncs only writable files
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make a new or renamed name in `folder` durable. Best effort: Windows cannot."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def sha256_file(path: Path) -> str | None:
    """The sha256 (hex) of the file at `path`, read a MiB at a time; None if unreadable."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1024 * 1024):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def private_folder(folder: Path) -> None:
    """Make `folder` (mode 0700) and any missing parents, each fsynced into its parent, so
    a file renamed into it survives a power cut. Nothing to do when it exists."""
    if folder.is_dir():
        return
    if not folder.parent.exists():
        private_folder(folder.parent)
    folder.mkdir(mode=0o700, exist_ok=True)
    fsync_dir(folder.parent)
