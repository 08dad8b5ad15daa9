"""Reading a file the user named, within limits: regular files only, and never too big.

A path can name a FIFO (opening it blocks until a writer comes), a device such as
/dev/zero (reading it never ends) or a huge file. `read_limited()` opens without blocking,
checks with fstat that it holds a regular file, and reads at most `limit` bytes plus one to
tell "exactly at the limit" from "over it".
"""

from __future__ import annotations

import os
import stat
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
    # sync files (sync.bundle.read_sync_file, sync.keys)
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
