"""Media answers (image, audio, video, file questions): what a form accepts and how an
answer names its file. Pure: no I/O (reading, checking and storing a file is
collect/media.py; the file store is store/media.py).

An answer is stored as text, ``NAME sha256:HEX``: the file's original name (a base name,
no folder), a space, and the SHA-256 of the bytes kept in the home. Text and not a
mapping so that every place that already handles a text answer (expressions such as
``${photo} != ''``, review, the CSV reader, HQ's checks, merge) keeps working, and the
hash makes the answer name exactly one file. docs/media-design.md says more.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from yntymak_cli.forms.model import Form

MB = 1024 * 1024
DEFAULT_MAX_SIZE = 20 * MB
# What a media question accepts when the form does not say: XLSForm's defaults.
DEFAULT_ACCEPT = {"image": "image/*", "audio": "audio/*", "video": "video/*", "file": ""}
# A stored name is cut to this many characters (the hash, not the name, identifies the file).
MAX_NAME_CHARS = 200

# A file's media type: `type/subtype`, each of RFC 6838's restricted-name characters (no
# parameters, spaces, quotes or control characters: HQ shows and exports the text), at most
# MAX_MEDIA_TYPE characters. HQ refuses a bundle listing anything else.
MAX_MEDIA_TYPE = 200
MEDIA_TYPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")

_HASH_MARK = " sha256:"
_STORED_RE = re.compile(r"^(?P<name>.+) sha256:(?P<sha256>[0-9a-f]{64})$", re.DOTALL)
_SIZE_RE = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": MB, "gb": 1024 * MB}


@dataclass(frozen=True)
class MediaRef:
    """A media answer: the file's original name and the SHA-256 of its stored bytes."""

    name: str
    sha256: str

    @property
    def text(self) -> str:
        return f"{self.name}{_HASH_MARK}{self.sha256}"


def parse_ref(value: Any) -> MediaRef | None:
    """The MediaRef a stored answer holds, or None when `value` is not one."""
    if not isinstance(value, str):
        return None
    match = _STORED_RE.match(value)
    if match is None or safe_name(match["name"]) != match["name"]:
        return None
    return MediaRef(match["name"], match["sha256"])


def safe_name(name: str) -> str:
    """A file name fit to store and to write in an export folder: its last path part, no
    control or format characters, no leading dots, at most MAX_NAME_CHARS; "file" if
    nothing is left."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = " ".join(name.split()).lstrip(".")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        keep = ext if dot and len(ext) <= 10 else ""
        name = name[: MAX_NAME_CHARS - len(keep) - 1] + ("." + keep if keep else "")
    return name or "file"


def is_media_type(value: object) -> bool:
    """`value` is a media type of the shape above."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_MEDIA_TYPE
        and MEDIA_TYPE_RE.fullmatch(value) is not None
    )


def parse_size(value: int | str | None) -> int | None:
    """Bytes from `20 MB`, `500 kB`, `1.5MB` or a number of bytes; None when unreadable."""
    if value is None:
        return DEFAULT_MAX_SIZE
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    match = _SIZE_RE.match(value)
    if match is None:
        return None
    number = float(match[1].replace(",", "."))
    size = int(number * _UNITS[(match[2] or "b").lower()])
    return size if size > 0 else None


def max_size(form: Form) -> int:
    """The largest file the form's media questions take (validation refuses bad text)."""
    return parse_size(form.max_size) or DEFAULT_MAX_SIZE


def accept_patterns(base_type: str, accept: str | None) -> list[str]:
    """The accepted patterns, lower case: `.pdf` extensions and `image/*` MIME types; []
    accepts anything."""
    text = accept if accept is not None else DEFAULT_ACCEPT.get(base_type, "")
    return [p.strip().lower() for p in text.split(",") if p.strip()]


def pattern_problem(pattern: str) -> bool:
    """True when an `accept` entry is neither `.ext` nor `type/subtype` (`*` allowed)."""
    if pattern.startswith("."):
        return len(pattern) < 2 or "/" in pattern
    kind, slash, sub = pattern.partition("/")
    return not (slash and kind and sub and re.fullmatch(r"[a-z0-9.+*-]+", kind + sub))


def accepts(patterns: list[str], name: str, mime_types: list[str]) -> bool:
    """Does a file named `name`, whose type is one of `mime_types`, match `patterns`?"""
    if not patterns:
        return True
    lowered = name.lower()
    for pattern in patterns:
        if pattern.startswith("."):
            if lowered.endswith(pattern):
                return True
            continue
        kind, _, sub = pattern.partition("/")
        for mime in mime_types:
            m_kind, _, m_sub = mime.lower().partition("/")
            if kind in ("*", m_kind) and sub in ("*", m_sub):
                return True
    return False


def media_refs(form: Form, answers: Any) -> Iterator[tuple[str, MediaRef]]:
    """(question name, MediaRef) of every media answer in `answers`, repeats included;
    nothing to walk for a form without media questions (most)."""
    if not form.media_names or not isinstance(answers, dict):
        return
    for key, value in answers.items():
        q = form.index.get(key)
        if q is None:
            continue
        if q.is_repeat and isinstance(value, list):
            for item in value:
                yield from media_refs(form, item)
        elif q.is_media:
            ref = parse_ref(value)
            if ref is not None:
                yield key, ref


def hashes_in_text(text: str) -> set[str]:
    """Every hash a stored JSON text names as a media answer (for purge: cheap and safe,
    since a text answer that happens to hold one only keeps a file longer)."""
    return set(re.findall(r" sha256:([0-9a-f]{64})", text))
