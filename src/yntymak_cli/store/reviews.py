"""HQ's review decisions (`reviews`): made at HQ, carried to laptops in sealed receipts.

One table serves both roles (migration 005). At HQ a row is a decision a reviewer made,
with `delivered_at` once a receipt first carried it to the device; on a laptop a row is a
decision a receipt brought, with `received_at`. `decision_id` is HQ's number on both sides.

A submission's review status is the newest decision on its *current* revision; a submission
without one is pending, so a new revision from the device makes it pending again. Decisions
never touch answers: only the volunteer's new revision changes them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

# The newest decision on each submission's current revision, as `rv` beside `s`; defined
# with the export's query in store/db.py, which this module imports (not the reverse).
from yntymak_cli.store.db import CURRENT_REVIEW_JOIN, tables
from yntymak_cli.store.db import REVIEW_PENDING as PENDING

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


# -- HQ ------------------------------------------------------------------------------------


def add_decision(
    conn: sqlite3.Connection,
    uuid: str,
    revision: int,
    status: str,
    comment: str | None,
    reviewer: str,
    decided_at: str,
) -> int:
    """Record a decision HQ made; returns its decision_id.

    The id is the next one, but at least HQ's clock in milliseconds: a database restored
    from a backup then never hands out an id a laptop already holds for another decision
    (laptops order decisions, and spot replays, by id).
    """
    table = tables(conn).table("reviews")
    last = conn.execute("SELECT MAX(decision_id) FROM reviews").fetchone()[0] or 0
    decision_id = max(last + 1, int(time.time() * 1000))
    table.insert(
        {
            "decision_id": decision_id,
            "uuid": uuid,
            "revision": revision,
            "status": status,
            "comment": comment,
            "reviewer": reviewer,
            "decided_at": decided_at,
        }
    )
    return decision_id


class ReviewRow(NamedTuple):
    """A line of `hq review list`: a submission (latest revision) and its review state."""

    uuid: str
    form_id: str
    form_version: str
    revision: int
    enumerator: str
    device_id: str
    device_name: str | None
    district: str | None
    submission_time: str | None
    status: str  # approved | rejected | on_hold | pending
    reviewer: str | None  # of the decision giving the status
    decided_at: str | None
    last_comment: str | None  # the newest comment on any revision


_LIST_SQL = f"""
SELECT s.uuid, s.form_id, s.form_version, s.revision, s.enumerator, s.device_id,
       d.name, d.district, s.submission_time, COALESCE(rv.status, '{PENDING}'),
       rv.reviewer, rv.decided_at,
       (SELECT c.comment FROM reviews c WHERE c.uuid = s.uuid AND c.comment IS NOT NULL
        ORDER BY c.decision_id DESC LIMIT 1)
FROM submissions s
{CURRENT_REVIEW_JOIN}
LEFT JOIN hq_devices d ON d.device_id = s.device_id
WHERE s.status = 'final'
"""


def review_list(
    conn: sqlite3.Connection,
    *,
    status: str | None = None,
    form_id: str | None = None,
    district: str | None = None,
    enumerator: str | None = None,
) -> list[ReviewRow]:
    """Final submissions with their review state, oldest first, filtered as asked."""
    sql, params = _LIST_SQL, []
    if status is not None:
        sql += f" AND COALESCE(rv.status, '{PENDING}') = ?"
        params.append(status)
    for column, value in (
        ("s.form_id", form_id),
        ("d.district", district),
        ("s.enumerator", enumerator),
    ):
        if value is not None:
            sql += f" AND {column} = ?"  # column names are ours; values are parameters
            params.append(value)
    sql += " ORDER BY s.submission_time, s.uuid"
    return [ReviewRow(*row) for row in conn.execute(sql, params)]


def to_deliver(conn: sqlite3.Connection, device_id: str, *, again: bool = False) -> list[Decision]:
    """The newest decision on each of a device's submissions that no receipt carried yet
    (with `again`: carried or not, to replace a lost receipt), oldest first.

    Only the newest: a laptop refuses a receipt holding a decision older than one it has
    (a replay), so a superseded decision is never sent, not even a first time.
    """
    undelivered = "" if again else "AND r.delivered_at IS NULL "
    return _decisions(
        conn.execute(
            f"SELECT {', '.join('r.' + c for c in _DECISION_COLUMNS.split(', '))} "
            "FROM reviews r JOIN submissions s ON s.uuid = r.uuid "
            "WHERE s.device_id = ? AND r.decision_id = "
            "(SELECT MAX(x.decision_id) FROM reviews x WHERE x.uuid = r.uuid) "
            f"{undelivered}ORDER BY r.decision_id",
            [device_id],
        )
    )


def mark_delivered(conn: sqlite3.Connection, decision_ids: Sequence[int], at: str) -> None:
    """The first receipt that carries a decision sets its delivered_at; later ones leave it."""
    for i in range(0, len(decision_ids), _CHUNK):
        chunk = list(decision_ids[i : i + _CHUNK])
        marks = ", ".join("?" for _ in chunk)
        conn.execute(
            "UPDATE reviews SET delivered_at = COALESCE(delivered_at, ?) "
            f"WHERE decision_id IN ({marks})",
            [at, *chunk],
        )


def set_box_key(conn: sqlite3.Connection, device_id: str, box_key_b64: str) -> None:
    """Learn (or replace) the X25519 key a device's decisions are sealed to."""
    tables(conn).table("hq_devices").update(device_id, {"box_key": box_key_b64})


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


def receive(conn: sqlite3.Connection, decisions: Iterable[Decision], at: str) -> int:
    """Store decisions a receipt brought; one already held is left as it is (the caller
    checked it is the same). Returns how many were new."""
    new = 0
    for d in decisions:
        new += conn.execute(
            f"INSERT OR IGNORE INTO reviews ({_DECISION_COLUMNS}, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [*d, at],
        ).rowcount
    return new


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
