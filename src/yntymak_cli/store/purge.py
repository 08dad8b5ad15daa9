"""Erase the answers HQ already holds from this laptop, so a lost or seized laptop holds less.

Purge works revision by revision and can be run again at any time:

- every revision HQ acknowledged with a signed receipt loses its answers, paradata and
  instance name (computed from answers), whatever came before or after it;
- a submission's own copy of its latest answers goes, and `purged_at` is set, once that
  latest revision (and its void, if any) is acknowledged;
- nothing HQ has not acknowledged is touched: unacknowledged revisions, unsent voids and
  every draft. An edit in progress is a draft holding the answers being edited; it is kept
  (the edit is not at HQ yet) and reported, and once it is finalised and acknowledged the
  next purge erases that new revision too (finalising clears `purged_at`).

Media files (store/media.py) that no answer still on the laptop names are erased after
the answers; a file another revision or a draft still names stays.

Ids, revision numbers, hashes and metadata stay, so sync and `submissions list` still work.
SQLite keeps deleted content in free pages and in the WAL, so the purge runs with
`secure_delete`, then truncates the WAL and rebuilds the file with VACUUM. That clean-up
comes after the erasure is committed: if it fails (a full disk), the answers are erased
all the same, the result says what is left to do, and the next run finishes it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from yntymak_cli.errors import InvalidInput
from yntymak_cli.store.db import Store, utcnow
from yntymak_cli.store.media import remove_unused

# Submissions whose own copy of the answers can go: every revision, and the void, acked.
_PURGEABLE = """
SELECT s.uuid FROM submissions s
WHERE s.purged_at IS NULL
  AND s.status IN ('final', 'void')
  AND (s.status = 'final' OR s.void_synced = 1)
  AND EXISTS (SELECT 1 FROM revisions r WHERE r.uuid = s.uuid)
  AND NOT EXISTS (SELECT 1 FROM revisions r WHERE r.uuid = s.uuid AND r.synced_at IS NULL)
"""

# Acknowledged revisions still holding answers. A submission's latest revision goes with
# the submission (above): while the submission keeps its copy (an unsent void), erasing
# the revision's identical copy would protect nothing.
_ERASABLE_REVISIONS = """
FROM revisions r JOIN submissions s ON s.uuid = r.uuid
WHERE r.synced_at IS NOT NULL
  AND (r.answers IS NOT NULL OR r.paradata IS NOT NULL OR r.instance_name IS NOT NULL)
  AND (r.revision < s.revision OR s.purged_at IS NOT NULL)
"""

# Set in the transaction that erases, removed once the clean-up after it succeeded.
_CLEANUP_PENDING = "purge_cleanup_pending"

_KEPT = "SELECT COUNT(*) FROM submissions WHERE purged_at IS NULL AND status IN ('final', 'void')"

# Edits in progress of a submission HQ holds: the draft keeps answers (see above).
_EDIT_DRAFTS = """
SELECT COUNT(*) FROM drafts d JOIN submissions s ON s.uuid = d.uuid
WHERE d.base_revision > 0 AND s.purged_at IS NOT NULL
"""


@dataclass(frozen=True)
class PurgeResult:
    submissions: int  # submissions whose answers were erased
    revisions: int  # revision rows erased (with those submissions or on their own)
    kept: int  # finalised submissions kept because HQ has not acknowledged all of them
    wal_truncated: bool  # False when another connection kept the WAL busy (run again)
    edit_drafts: int = 0  # edits in progress of purged submissions: kept, hold answers
    # Why the clean-up after the (committed) erasure failed, e.g. "database or disk is
    # full": erased text may remain in free pages or the WAL until a later run.
    cleanup_error: str | None = None
    # Media files erased: those no remaining answer, revision or draft names (store/media.py)
    media_files: int = 0


def count_purgeable(store: Store) -> tuple[int, int]:
    """(submissions with answers to erase, finalised submissions that would be kept)."""
    conn = store.conn
    rows = {row[0] for row in conn.execute(_PURGEABLE)}
    revisions = {row[0] for row in conn.execute("SELECT DISTINCT r.uuid " + _ERASABLE_REVISIONS)}
    return len(rows | revisions), conn.execute(_KEPT).fetchone()[0] - len(rows)


def needs_cleanup(store: Store) -> bool:
    """An earlier purge did not finish its clean-up, or deleted drafts left free pages."""
    return (
        store.get_setting(_CLEANUP_PENDING) is not None
        or store.conn.execute("PRAGMA freelist_count").fetchone()[0] > 0
    )


def purge(store: Store, synced_only: bool = True) -> PurgeResult:
    if not synced_only:
        from yntymak_cli.i18n import current_lang, t

        raise InvalidInput(t("purge_synced_only", current_lang()))
    conn = store.conn
    previous = conn.execute("PRAGMA secure_delete").fetchone()[0]
    # Overwrite freed content with zeros while we erase; a connection setting, so restore it.
    conn.execute("PRAGMA secure_delete = ON")
    try:
        with store.write() as c:
            uuids = [row[0] for row in c.execute(_PURGEABLE)]
            now = utcnow()
            # instance_name is computed from answers (e.g. the village), so it goes too.
            c.executemany(
                "UPDATE submissions SET answers = NULL, instance_name = NULL, purged_at = ? "
                "WHERE uuid = ?",
                [(now, u) for u in uuids],
            )
            # After the submissions above: their latest revisions are now erasable too.
            revisions = c.execute(
                "UPDATE revisions SET answers = NULL, paradata = NULL, instance_name = NULL "
                "WHERE rowid IN (SELECT r.rowid " + _ERASABLE_REVISIONS + ")"
            ).rowcount
            kept = c.execute(_KEPT).fetchone()[0]
            edit_drafts = c.execute(_EDIT_DRAFTS).fetchone()[0]
            if uuids or revisions:
                c.execute(
                    "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                    [_CLEANUP_PENDING, now],
                )
    finally:
        conn.execute(f"PRAGMA secure_delete = {int(previous)}")
    truncated = True
    error = None
    media_files = 0
    try:
        # After the answers are erased: the files only they named are no longer needed.
        media_files = remove_unused(store)
    except OSError as exc:
        error = str(exc)
    if uuids or revisions or needs_cleanup(store):
        # Old page images live on in the WAL until it is checkpointed and truncated; VACUUM
        # rebuilds the file without free pages, then a second checkpoint empties the WAL.
        try:
            truncated = _checkpoint(store)
            conn.execute("VACUUM")
            with store.write() as c:
                c.execute("DELETE FROM settings WHERE key = ?", [_CLEANUP_PENDING])
            truncated = _checkpoint(store) and truncated
        except (sqlite3.Error, OSError) as exc:
            error = str(exc)
    return PurgeResult(len(uuids), revisions, kept, truncated, edit_drafts, error, media_files)


def _checkpoint(store: Store) -> bool:
    busy, _log, _done = store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return busy == 0
