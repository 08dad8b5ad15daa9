"""Erase the answers HQ already holds from this laptop, so a lost or seized laptop holds less.

Only submissions whose every revision (and void) HQ acknowledged with a signed receipt are
purged; drafts and anything unsynced are untouched. Ids, revision numbers, hashes and
metadata stay, so sync and `submissions list` still work. SQLite keeps deleted content in
free pages and in the WAL, so the purge runs with `secure_delete`, then truncates the WAL
and rebuilds the file with VACUUM.
"""

from __future__ import annotations

from dataclasses import dataclass

from yntymak_cli.errors import InvalidInput
from yntymak_cli.store.db import Store, utcnow

_PURGEABLE = """
SELECT s.uuid FROM submissions s
WHERE s.purged_at IS NULL
  AND s.status IN ('final', 'void')
  AND (s.status = 'final' OR s.void_synced = 1)
  AND EXISTS (SELECT 1 FROM revisions r WHERE r.uuid = s.uuid)
  AND NOT EXISTS (SELECT 1 FROM revisions r WHERE r.uuid = s.uuid AND r.synced_at IS NULL)
"""


@dataclass(frozen=True)
class PurgeResult:
    submissions: int  # submissions whose answers were erased
    revisions: int  # revision rows erased with them
    kept: int  # finalised submissions kept because HQ has not acknowledged all of them
    wal_truncated: bool  # False when another connection kept the WAL busy (run again)


def count_purgeable(store: Store) -> tuple[int, int]:
    """(submissions that would be purged, finalised submissions that would be kept)."""
    purgeable = len(store.conn.execute(_PURGEABLE).fetchall())
    total = store.conn.execute(
        "SELECT COUNT(*) FROM submissions WHERE purged_at IS NULL AND status IN ('final', 'void')"
    ).fetchone()[0]
    return purgeable, total - purgeable


def purge(store: Store, synced_only: bool = True) -> PurgeResult:
    if not synced_only:
        raise InvalidInput(
            "only acknowledged submissions can be purged; use --synced (answers HQ has not"
            " confirmed are never erased)"
        )
    conn = store.conn
    previous = conn.execute("PRAGMA secure_delete").fetchone()[0]
    # Overwrite freed content with zeros while we erase; a connection setting, so restore it.
    conn.execute("PRAGMA secure_delete = ON")
    try:
        with store.write() as c:
            uuids = [row[0] for row in c.execute(_PURGEABLE)]
            now = utcnow()
            params = [(u,) for u in uuids]
            # instance_name is computed from answers (e.g. the village), so it goes too.
            c.executemany(
                "UPDATE submissions SET answers = NULL, instance_name = NULL, purged_at = ? "
                "WHERE uuid = ?",
                [(now, u) for u in uuids],
            )
            revisions = 0
            for chunk_start in range(0, len(params), 5000):
                cur = c.executemany(
                    "UPDATE revisions SET answers = NULL, paradata = NULL, instance_name = NULL "
                    "WHERE uuid = ?",
                    params[chunk_start : chunk_start + 5000],
                )
                revisions += cur.rowcount
            kept = c.execute(
                "SELECT COUNT(*) FROM submissions WHERE purged_at IS NULL "
                "AND status IN ('final', 'void')"
            ).fetchone()[0]
    finally:
        conn.execute(f"PRAGMA secure_delete = {int(previous)}")
    truncated = True
    if uuids:
        # Old page images live on in the WAL until it is checkpointed and truncated; VACUUM
        # rebuilds the file without free pages, then a second checkpoint empties the WAL.
        truncated = _checkpoint(store)
        conn.execute("VACUUM")
        truncated = _checkpoint(store) and truncated
    return PurgeResult(len(uuids), revisions, kept, truncated)


def _checkpoint(store: Store) -> bool:
    busy, _log, _done = store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return busy == 0
