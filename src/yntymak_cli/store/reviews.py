"""HQ's review decisions on a laptop (`reviews`): what receipts brought.

One table serves both roles (migration 005). At HQ a row is a decision a reviewer made,
with `delivered_at` once a receipt first carried it to the device (HQ's queries, for
SQLite and PostgreSQL, are in store/hq.py); on a laptop a row is a decision a receipt
brought, with `received_at`. `decision_id` is HQ's number on both sides.

A submission's review status is the newest decision on its *current* revision; a submission
without one is pending, so a new revision from the device makes it pending again. Decisions
never touch answers: only the volunteer's new revision changes them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import NamedTuple

# The newest decision on each submission's current revision, as `rv` beside `s`; defined
# with the export's query in store/db.py, which this module imports (not the reverse).
from yntymak_cli.store.db import CURRENT_REVIEW_JOIN
from yntymak_cli.store.db import REVIEW_PENDING as PENDING  # noqa: F401 (store.hq, sync.review)

STATUSES = ("approved", "rejected", "on_hold")
# KoboToolbox's `_validation_status` values, so analysts' filters keep working.
KOBO_VALIDATION = {
    "approved": "validation_status_approved",
    "rejected": "validation_status_not_approved",
    "on_hold": "validation_status_on_hold",
}

_CHUNK = 400  # SQL parameters per query


class Decision(NamedTuple):
    """One review decision; the fields are the columns a receipt carries."""

    decision_id: int
    uuid: str
    revision: int
    status: str
    comment: str | None
    reviewer: str
    decided_at: str


_DECISION_COLUMNS = "decision_id, uuid, revision, status, comment, reviewer, decided_at"


def _decisions(rows: Iterable[sqlite3.Row]) -> list[Decision]:
    return [Decision(*row) for row in rows]


# -- both sides ----------------------------------------------------------------------------


def history(conn: sqlite3.Connection, uuid: str) -> list[Decision]:
    """Every decision on a submission, oldest first."""
    return _decisions(
        conn.execute(
            f"SELECT {_DECISION_COLUMNS} FROM reviews WHERE uuid = ? ORDER BY decision_id",
            [uuid],
        )
    )


def current(conn: sqlite3.Connection, uuid: str) -> Decision | None:
    """The decision that gives a submission its status now, or None (pending)."""
    row = conn.execute(
        f"SELECT {', '.join('rv.' + c for c in _DECISION_COLUMNS.split(', '))} "
        f"FROM submissions s {CURRENT_REVIEW_JOIN} "
        "WHERE s.uuid = ? AND rv.decision_id IS NOT NULL",
        [uuid],
    ).fetchone()
    return None if row is None else Decision(*row)


# -- laptop --------------------------------------------------------------------------------


def newest_ids(conn: sqlite3.Connection, uuids: Sequence[str]) -> dict[str, int]:
    """uuid -> the newest decision_id this laptop holds for it (uuids without none left out)."""
    out: dict[str, int] = {}
    for i in range(0, len(uuids), _CHUNK):
        chunk = list(uuids[i : i + _CHUNK])
        marks = ", ".join("?" for _ in chunk)
        for uuid, newest in conn.execute(
            f"SELECT uuid, MAX(decision_id) FROM reviews WHERE uuid IN ({marks}) GROUP BY uuid",
            chunk,
        ):
            out[uuid] = newest
    return out


def held(conn: sqlite3.Connection, decision_ids: Sequence[int]) -> dict[int, Decision]:
    """The decisions this laptop holds among these ids."""
    out: dict[int, Decision] = {}
    for i in range(0, len(decision_ids), _CHUNK):
        chunk = list(decision_ids[i : i + _CHUNK])
        marks = ", ".join("?" for _ in chunk)
        for d in _decisions(
            conn.execute(
                f"SELECT {_DECISION_COLUMNS} FROM reviews WHERE decision_id IN ({marks})", chunk
            )
        ):
            out[d.decision_id] = d
    return out


def receive(conn: sqlite3.Connection, decisions: Iterable[Decision], at: str) -> list[Decision]:
    """Store decisions a receipt brought; one already held is left as it is (the caller
    checked it is the same). Returns those this laptop did not hold yet."""
    return [
        d
        for d in decisions
        if conn.execute(
            f"INSERT OR IGNORE INTO reviews ({_DECISION_COLUMNS}, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [*d, at],
        ).rowcount
    ]


def receipt_applied(conn: sqlite3.Connection, receipt_id: str) -> bool:
    """Whether this laptop applied the receipt v2 with this id before."""
    return (
        conn.execute(
            "SELECT 1 FROM received_receipts WHERE receipt_id = ?", [receipt_id]
        ).fetchone()
        is not None
    )


def record_receipt(conn: sqlite3.Connection, receipt_id: str, at: str) -> None:
    """Remember a receipt v2 applied (a later copy of it is a replay)."""
    conn.execute(
        "INSERT OR IGNORE INTO received_receipts (receipt_id, applied_at) VALUES (?, ?)",
        [receipt_id, at],
    )


class InboxRow(NamedTuple):
    """A submission HQ returned (rejected) or put on hold, on its current revision."""

    uuid: str
    form_id: str
    instance_name: str | None
    revision: int
    status: str
    comment: str | None
    reviewer: str
    decided_at: str


def inbox(
    conn: sqlite3.Connection, statuses: Sequence[str] = ("rejected", "on_hold")
) -> list[InboxRow]:
    """Submissions whose current revision HQ rejected (or put on hold), oldest decision
    first. A fix (a newer revision) takes a submission out of it."""
    marks = ", ".join("?" for _ in statuses)
    return [
        InboxRow(*row)
        for row in conn.execute(
            "SELECT s.uuid, s.form_id, s.instance_name, s.revision, rv.status, rv.comment, "
            f"rv.reviewer, rv.decided_at FROM submissions s {CURRENT_REVIEW_JOIN} "
            f"WHERE s.status = 'final' AND rv.status IN ({marks}) ORDER BY rv.decision_id",
            list(statuses),
        )
    ]
