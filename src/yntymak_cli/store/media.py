"""The laptop's media files: each kept once, under ``HOME/media/<first 2 hex>/<sha256>``.

A file is written whole or not at all (a temp file in the same folder, fsync, rename,
fsync the folder: files.write_atomic) with mode 0600, *before* the answer naming it is
saved (in the same write transaction), so an answer that survived a crash always finds its
file. The `media` table
(migration 011_media) says what each file is. A file stays while any submission,
revision or draft names its hash; `remove_unused` (run by purge) erases the others,
including files left by an answer that was never saved (a refused constraint) or by a
crash.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from yntymak_cli.files import fsync_dir, private_folder, write_atomic
from yntymak_cli.forms.media import MediaRef, hashes_in_text, safe_name
from yntymak_cli.store.db import Store, utcnow

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class MediaFile:
    """One row of the media table."""

    sha256: str
    size: int
    media_type: str
    original_name: str
    added_at: str


def media_root(store: Store) -> Path:
    """HOME/media: beside the database, so a moved or backed-up home keeps its files."""
    return store.path.parent / "media"


def media_path(store: Store, sha256: str) -> Path:
    return sharded_path(media_root(store), sha256)


def sharded_path(root: Path, sha256: str) -> Path:
    """Where a file of this hash lives under a media folder (the laptop's or HQ's):
    `root/<first 2 hex>/<sha256>`. ValueError for anything but 64 lower-case hex digits,
    so a hash from a device never makes a path of its own choosing."""
    if len(sha256) != 64 or not set(sha256) <= _HEX:
        raise ValueError(f"not a SHA-256: {sha256!r}")
    return root / sha256[:2] / sha256


def put_media(store: Store, data: bytes, name: str, media_type: str) -> MediaRef:
    """Keep `data` (unless a file with its hash is there already) and record it; the
    MediaRef an answer stores. OSError when the disk refuses.

    The file is written inside the store's write transaction: a caller that saves the
    answer in the same `store.write()` block makes file, row and answer one step, and
    purge (which takes the same lock) can never see a file whose answer is on its way."""
    sha256 = hashlib.sha256(data).hexdigest()
    path = media_path(store, sha256)
    name = safe_name(name)
    with store.write() as conn:
        if not (path.is_file() and path.stat().st_size == len(data)):
            private_folder(path.parent)
            write_atomic(path, data, mode=0o600)
        conn.execute(
            "INSERT OR IGNORE INTO media (sha256, size, media_type, original_name, added_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [sha256, len(data), media_type, name, utcnow()],
        )
    return MediaRef(name, sha256)


def get_media(store: Store, sha256: str) -> MediaFile | None:
    row = store.conn.execute(
        "SELECT sha256, size, media_type, original_name, added_at FROM media WHERE sha256 = ?",
        [sha256],
    ).fetchone()
    return MediaFile(*row) if row else None


def has_file(store: Store, sha256: str) -> bool:
    """The file is there with its recorded size (a cheap check, not a re-hash)."""
    row = get_media(store, sha256)
    if row is None:
        return False
    path = media_path(store, sha256)
    return path.is_file() and path.stat().st_size == row.size


def needed_hashes(store: Store) -> set[str]:
    """Hashes named by any answer still on the laptop: submissions, every revision (an
    edit or a void keeps the file an older revision used) and drafts."""
    needed: set[str] = set()
    queries = (
        "SELECT answers FROM submissions WHERE answers IS NOT NULL",
        "SELECT answers FROM revisions WHERE answers IS NOT NULL",
        "SELECT state FROM drafts",
    )
    for query in queries:
        for (text,) in store.conn.execute(query):
            if text and "sha256:" in text:
                needed |= hashes_in_text(text)
    return needed


def remove_unused(store: Store) -> int:
    """Erase the media rows and files no answer needs; how many files went.

    Runs inside one write transaction, files included: every media file is written under
    that lock too (put_media), so no file on its way to an answer is taken. A file with no
    row (left by a crash before its transaction committed) goes as well."""
    root = media_root(store)
    removed = 0
    with store.write() as conn:
        needed = needed_hashes(store)
        known = {row[0] for row in conn.execute("SELECT sha256 FROM media")}
        unused = known - needed
        conn.executemany("DELETE FROM media WHERE sha256 = ?", [(h,) for h in sorted(unused)])
        folders = [f for f in root.iterdir() if f.is_dir()] if root.is_dir() else []
        for folder in folders:
            for path in folder.iterdir():
                if path.name in needed:
                    continue
                path.unlink(missing_ok=True)  # unused, a leftover temp file, a stray name
                removed += not path.name.startswith(".")
            fsync_dir(folder)
            try:
                os.rmdir(folder)
            except OSError:
                pass  # not empty
    return removed
