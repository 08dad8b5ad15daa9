"""The device's sync tables: `sync_bundles` and the sync marks on revisions and submissions.

sync/bundle.py decides what to send and verifies receipts; the queries it needs are here.
A revision stays unacknowledged until a receipt of the trusted HQ lists it (`synced_at`);
what HQ refused is marked so that it is not sent again (`refused_at`, `void_refused_at`).
Functions that write open `store.write()`, so inside a caller's write they join it (as a
savepoint) and alone they are one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yntymak_cli.store.records import PayloadRecord, payload_record, submission_record

if TYPE_CHECKING:
    from yntymak_cli.store.db import Store

# (uuid, revision, status): one entry a bundle carried, status "final" or "void".
Carried = tuple[str, int, str]

# Every revision and void HQ has not acknowledged (nor refused): unsynced revisions, and the
# latest revision of a submission voided since.
_PENDING_WHERE = """
WHERE (r.synced_at IS NULL AND r.refused_at IS NULL)
   OR (s.status = 'void' AND s.void_synced = 0 AND s.void_refused_at IS NULL
       AND r.revision = s.revision)
"""

# Those records, oldest revision first per uuid.
_PENDING_SQL = (
    """
SELECT r.uuid, r.revision, r.form_hash, r.submission_time, r.enumerator, r.device_id,
       r.instance_name, r.answers, r.paradata, r.hash,
       s.created_at, s.status, s.revision AS latest, s.void_reason, s.voided_at, s.purged_at,
       f.form_id, f.version AS form_version
FROM revisions r
JOIN submissions s ON s.uuid = r.uuid
JOIN forms f ON f.hash = r.form_hash
"""
    + _PENDING_WHERE
    + "ORDER BY r.uuid, r.revision\n"
)

# How many there are.
_PENDING_COUNT_SQL = (
    "SELECT COUNT(*) FROM revisions r JOIN submissions s ON s.uuid = r.uuid\n" + _PENDING_WHERE
)

_BUNDLE_COLUMNS = (
    "seq, bundle_id, file_name, file_hash, prev_hash, hq_fingerprint, created_at, contents, "
    "acked_at"
)


def pending_records(store: Store) -> list[PayloadRecord]:
    """Every revision and void HQ has not acknowledged, oldest revision first per uuid."""
    return [_pending_record(row) for row in store.conn.execute(_PENDING_SQL)]


def pending_count(store: Store) -> int:
    """How many records pending_records would return, without building them."""
    return int(store.conn.execute(_PENDING_COUNT_SQL).fetchone()[0])


def _pending_record(row: Any) -> PayloadRecord:
    # A revision travels as "final"; the latest revision of a voided submission as "void".
    is_void = row["status"] == "void" and row["revision"] == row["latest"]
    record = submission_record(
        uuid=row["uuid"],
        revision=row["revision"],
        form_id=row["form_id"],
        form_version=row["form_version"],
        form_hash=row["form_hash"],
        status="void" if is_void else "final",
        created_at=row["created_at"],
        updated_at=row["voided_at"] if is_void else row["submission_time"],
        submission_time=row["submission_time"],
        enumerator=row["enumerator"],
        device_id=row["device_id"],
        instance_name=row["instance_name"],
        void_reason=row["void_reason"] if is_void else None,
        answers=json.loads(row["answers"]) if row["answers"] is not None else {},
        purged_at=row["purged_at"],
    )
    return payload_record(
        record,
        # Erased only for a purged revision that HQ already holds (a later void of it).
        answers_erased=row["answers"] is None,
        voided_at=row["voided_at"] if is_void else None,
        paradata=json.loads(row["paradata"]) if row["paradata"] is not None else None,
        rev_hash=row["hash"],
    )


@dataclass(frozen=True)
class SentBundle:
    """A row of `sync_bundles`: a bundle this device wrote, and what it carried."""

    seq: int
    bundle_id: str
    file_name: str
    file_hash: str
    prev_hash: str | None
    hq_fingerprint: str
    created_at: str
    contents: tuple[Carried, ...]
    acked_at: str | None

    def carried(self) -> dict[tuple[str, int], str]:
        """(uuid, revision) -> status, for each entry the bundle carried."""
        return {(u, r): status for u, r, status in self.contents}


def _sent_bundle(row: Any) -> SentBundle:
    return SentBundle(
        seq=row["seq"],
        bundle_id=row["bundle_id"],
        file_name=row["file_name"],
        file_hash=row["file_hash"],
        prev_hash=row["prev_hash"],
        hq_fingerprint=row["hq_fingerprint"],
        created_at=row["created_at"],
        contents=tuple((u, r, status) for u, r, status in json.loads(row["contents"])),
        acked_at=row["acked_at"],
    )


def last_bundle(store: Store) -> SentBundle | None:
    """The bundle of the highest seq, the link the next bundle of the chain follows."""
    row = store.conn.execute(
        f"SELECT {_BUNDLE_COLUMNS} FROM sync_bundles ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return _sent_bundle(row) if row is not None else None


def bundle_by_id(store: Store, bundle_id: str) -> SentBundle | None:
    row = store.conn.execute(
        f"SELECT {_BUNDLE_COLUMNS} FROM sync_bundles WHERE bundle_id = ?",
        [bundle_id],
    ).fetchone()
    return _sent_bundle(row) if row is not None else None


def record_bundle(
    store: Store,
    *,
    seq: int,
    bundle_id: str,
    file_name: str,
    file_hash: str,
    prev_hash: str | None,
    hq_fingerprint: str,
    created_at: str,
    contents: Iterable[Carried],
) -> None:
    """Remember a bundle written (before its file appears under its name)."""
    from yntymak_cli.store.db import tables

    row = {
        "seq": seq,
        "bundle_id": bundle_id,
        "file_name": file_name,
        "file_hash": file_hash,
        "prev_hash": prev_hash,
        "hq_fingerprint": hq_fingerprint,
        "created_at": created_at,
        "contents": json.dumps([list(entry) for entry in contents], separators=(",", ":")),
    }
    with store.write() as conn:
        tables(conn).table("sync_bundles").insert(row)


def forget_bundle(store: Store, seq: int) -> None:
    """Drop an unacknowledged bundle whose file never appeared, so its seq is used again."""
    with store.write() as conn:
        conn.execute("DELETE FROM sync_bundles WHERE seq = ? AND acked_at IS NULL", [seq])


def carried_by_unacknowledged(store: Store, hq_fingerprint: str) -> dict[Carried, int]:
    """Each entry of a bundle still on its way to this HQ -> the highest seq that carried
    it (when it last set out). On its way: sealed to this HQ, not acknowledged, and newer
    than every bundle HQ has acknowledged. A bundle older than one HQ acknowledged is
    presumed lost (HQ answered a later one), and one sealed to another HQ cannot be read
    by the HQ trusted now: what they carried is as good as unsent."""
    out: dict[Carried, int] = {}
    for row in store.conn.execute(
        "SELECT seq, contents FROM sync_bundles WHERE acked_at IS NULL AND hq_fingerprint = ?"
        " AND seq > COALESCE((SELECT MAX(seq) FROM sync_bundles"
        " WHERE acked_at IS NOT NULL AND hq_fingerprint = ?), 0) ORDER BY seq",
        [hq_fingerprint, hq_fingerprint],
    ):
        for u, r, status in json.loads(row["contents"]):
            out[(u, r, status)] = row["seq"]
    return out


def carried_form_hashes(store: Store, contents: Iterable[Carried]) -> set[str]:
    """The form definitions the revisions of a bundle were made with."""
    return {
        row[0]
        for u, r, _status in contents
        for row in store.conn.execute(
            "SELECT form_hash FROM revisions WHERE uuid = ? AND revision = ?", [u, r]
        )
    }


@dataclass(frozen=True)
class AckMarks:
    acknowledged: int  # revisions newly marked as synced
    voids: int  # voids newly marked as synced
    already: int  # entries marked before (a receipt applied twice)


def mark_acknowledged(store: Store, entries: Iterable[Carried], now: str) -> AckMarks:
    """Mark revisions (and, for a "void" entry, the void) as held by HQ, in order."""
    acknowledged = voids = already = 0
    with store.write() as conn:
        for u, r, status in entries:
            rev_new = conn.execute(
                "UPDATE revisions SET synced_at = ? WHERE uuid = ? AND revision = ? "
                "AND synced_at IS NULL",
                [now, u, r],
            ).rowcount
            conn.execute(
                "UPDATE submissions SET synced_revision = ? WHERE uuid = ? AND synced_revision < ?",
                [r, u, r],
            )
            void_new = 0
            if status == "void":
                void_new = conn.execute(
                    "UPDATE submissions SET void_synced = 1 WHERE uuid = ? AND status = 'void' "
                    "AND void_synced = 0",
                    [u],
                ).rowcount
            acknowledged += rev_new
            voids += void_new
            if not rev_new and not void_new:
                already += 1
    return AckMarks(acknowledged=acknowledged, voids=voids, already=already)


def mark_refused(store: Store, entries: Iterable[tuple[str, int, str, str]], now: str) -> None:
    """Mark what HQ refused, as (uuid, revision, status, reason), so it is not sent again.

    A refused revision (or void) stays here unacknowledged, never purged; an acknowledged
    one is left as it is.
    """
    with store.write() as conn:
        for u, r, status, reason in entries:
            conn.execute(
                "UPDATE revisions SET refused_at = COALESCE(refused_at, ?), refused_reason = ? "
                "WHERE uuid = ? AND revision = ? AND synced_at IS NULL",
                [now, reason, u, r],
            )
            if status == "void":
                conn.execute(
                    "UPDATE submissions SET void_refused_at = COALESCE(void_refused_at, ?), "
                    "void_refused_reason = ? WHERE uuid = ? AND status = 'void' "
                    "AND void_synced = 0",
                    [now, reason, u],
                )


def mark_bundle_acked(store: Store, bundle_id: str, now: str) -> None:
    """The first receipt of a bundle sets its acked_at; later ones leave it."""
    with store.write() as conn:
        conn.execute(
            "UPDATE sync_bundles SET acked_at = COALESCE(acked_at, ?) WHERE bundle_id = ?",
            [now, bundle_id],
        )
