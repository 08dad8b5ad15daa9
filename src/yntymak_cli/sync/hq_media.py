"""HQ's media files: checked against the bundle's answers, decrypted a chunk at a time,
kept once each under ``HQ_HOME/media/<first 2 hex>/<sha256>``.

Both engines keep the bytes on disk beside HQ's home (for PostgreSQL too: the home of the
HQ that runs `hq import` or `hq serve`), and the `hq_media` table says what each file is.
The order matters: every check runs before anything is written, and a bundle whose media
does not match is refused whole (reason `media-mismatch`):

1. every hash a media answer of an accepted record names is in the bundle or already at
   HQ; every file the bundle carries is named by a media answer of the bundle (through
   the media questions of the record's form, never a text answer);
2. each file decrypts and hashes to its listed sha256: written meanwhile to a hidden temp
   file in HQ_HOME/media, so memory holds one chunk (a file HQ holds is not written again
   unless its bytes are gone or no longer hash to its name);
3. inside the import's transaction the temp files get their names and folders (before the
   commit, as the laptop does, so a committed row always finds its file) and `hq_media`
   its rows. A replayed bundle runs this step too: it restores a file HQ lost.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yntymak_cli.files import create_temp, fsync_dir, private_folder, sha256_file
from yntymak_cli.forms.media import hashes_in_text
from yntymak_cli.i18n import current_lang, t
from yntymak_cli.store import hq as hq_store
from yntymak_cli.store.hqdb import HqDb
from yntymak_cli.store.media import sharded_path as media_path
from yntymak_cli.sync.container import BundleError, OpenedContainer
from yntymak_cli.sync.media_section import MediaEntry, MediaMismatch


@dataclass
class Staged:
    """A file of a bundle, checked: `tmp` holds its bytes until the import names it; None
    when HQ held the file already, intact (it was still decrypted and checked), or when it
    is not to be kept (`kept` False: named only by a record HQ cannot read)."""

    entry: MediaEntry
    tmp: Path | None
    kept: bool = True


def media_root(db: HqDb) -> Path:
    """HQ_HOME/media: beside the SQLite file, or in the home of the HQ using PostgreSQL."""
    if db.store is not None:
        return db.store.path.parent / "media"
    from yntymak_cli.home import home_dir

    return home_dir() / "media"


def held(db: HqDb, hashes: Iterable[str]) -> set[str]:
    """Of `hashes`, the files HQ holds: a row, and the file there with its size."""
    root = media_root(db)
    out = set()
    for sha256, size in hq_store.media_sizes(db.conn, hashes).items():
        path = media_path(root, sha256)
        if path.is_file() and path.stat().st_size == size:
            out.add(sha256)
    return out


def locate(db: HqDb, sha256: str) -> Path | None:
    """The path of a file HQ holds (for `hq export --media`), or None."""
    return media_path(media_root(db), sha256) if sha256 in held(db, [sha256]) else None


def check_names(
    db: HqDb,
    opened: OpenedContainer,
    named: dict[str, str],
    mentioned: set[str],
    unreadable: list[str],
) -> tuple[set[str], set[str]]:
    """Step 1: what the answers name against what the bundle carries. Returns (the hashes
    of the bundle's files HQ holds already, those to check but not keep).

    `named`: sha256 -> uuid of the first accepted record whose media answer names it.
    `mentioned`: every hash a media answer names, of any record whose form HQ reads
    (accepted or refused), through its form's media questions only: a `sha256:` written in
    a text answer names nothing, so a device cannot have HQ keep a file that no media
    answer stands for. `unreadable`: the answers (JSON) of records refused because HQ
    cannot read their form; a file only they name is checked with the others but not
    kept (its record is refused, and the receipt tells the laptop not to send it again).
    """
    lang = current_lang()
    carried = {e.sha256 for e in opened.media}
    have = held(db, set(named) | carried)
    for sha256, uuid in named.items():
        if sha256 not in carried and sha256 not in have:
            raise BundleError(
                "media-mismatch", t("bundle_err_media_missing", lang, uuid=uuid, sha256=sha256)
            )
    maybe: set[str] = set()
    for text in unreadable:
        if "sha256:" in text:
            maybe |= hashes_in_text(text)
    dropped: set[str] = set()
    for entry in opened.media:
        if entry.sha256 in mentioned:
            continue
        if entry.sha256 not in maybe:
            raise BundleError(
                "media-mismatch", t("bundle_err_media_unnamed", lang, sha256=entry.sha256)
            )
        dropped.add(entry.sha256)
    return have, dropped


def extract(
    db: HqDb | None, opened: OpenedContainer, have: set[str], dropped: frozenset[str] = frozenset()
) -> list[Staged]:
    """Step 2: decrypt and hash every file; with `db`, keep the ones HQ lacks in temp files
    (discard() them if the import does not go ahead). BundleError media-mismatch, nothing
    left behind, when one does not match.

    A file HQ holds (`have`: its row, and a file of that size) is read and hashed first: if
    its bytes no longer hash to its name (a damaged disk, a hand edit) it is written again
    from the bundle like a missing one. The temp files wait in the media folder itself:
    the `xx` folders are made only when a file is named (keep), so a refused import leaves
    no empty folder behind."""
    staged: list[Staged] = []
    root = media_root(db) if db is not None else None
    try:
        for entry, chunks in opened.media_files():
            if entry.sha256 in dropped:
                for _chunk in chunks:
                    pass
                staged.append(Staged(entry, None, kept=False))
                continue
            if root is None or (
                entry.sha256 in have and sha256_file(media_path(root, entry.sha256)) == entry.sha256
            ):
                for _chunk in chunks:
                    pass
                staged.append(Staged(entry, None))
                continue
            private_folder(root)
            tmp = create_temp(root / entry.sha256, mode=0o600)
            staged.append(Staged(entry, tmp))
            with open(tmp, "r+b") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
    except MediaMismatch as exc:
        discard(staged)
        raise BundleError(
            "media-mismatch",
            t(
                "bundle_err_media_mismatch",
                current_lang(),
                sha256=exc.entry.sha256,
                detail=exc.detail,
            ),
        ) from None
    except BaseException:
        discard(staged)
        raise
    return staged


def keep(db: HqDb, conn: Any, staged: list[Staged], bundle_id: str, now: str) -> int:
    """Step 3, inside the import's transaction: name the temp files (making their `xx`
    folders), record every file of the bundle to keep (a row HQ has stays). How many files
    were written: new ones, and ones HQ had lost or damaged (a replay restores them too)."""
    root = media_root(db)
    new = 0
    folders: set[Path] = set()
    for item in staged:
        if item.tmp is None:
            continue
        final = media_path(root, item.entry.sha256)
        private_folder(final.parent)
        os.replace(item.tmp, final)  # the same verified bytes if a copy was there already
        item.tmp = None
        folders.add(final.parent)
        new += 1
    if folders:
        folders.add(root)  # the temp files' names left it
    for folder in folders:
        fsync_dir(folder)
    hq_store.add_media(
        conn,
        [(s.entry.sha256, s.entry.size, s.entry.media_type) for s in staged if s.kept],
        bundle_id,
        now,
    )
    return new


def discard(staged: list[Staged]) -> None:
    for item in staged:
        if item.tmp is not None:
            item.tmp.unlink(missing_ok=True)
            item.tmp = None
