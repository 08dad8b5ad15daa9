"""HQ's tables: enrolled devices, bundles received, refusals, and the merge's reads and writes.

Every SQL statement of HQ lives here; `sync.hq` keeps verification and merge policy and
calls these named, parameterised queries. Functions take the connection of the caller's
transaction (`Store.write()`), so an import stays one transaction. Writes go through
sqlite-utils (`insert_all`/`upsert_all` for the bulk of an import), reads are SQL. The row
shapes are NamedTuples whose fields are the tables' columns: their field names are the
header sqlite-utils takes before the rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

from yntymak_cli.store.db import tables

_CHUNK = 400  # bound on SQL parameters per query (SQLite's default limit is 999 on old builds)
_BATCH = 1000  # rows per INSERT of sqlite-utils (it lowers it to fit the parameter limit)


def _rows(columns: list[str], rows: Iterable[Sequence[Any]]) -> list[Sequence[Any]]:
    """sqlite-utils' list mode: a header of column names, then the rows as tuples."""
    return [columns, *rows]


class HeldSubmission(NamedTuple):
    """The fields of a `submissions` row that the merge reads."""

    uuid: str
    revision: int
    status: str
    device_id: str
    updated_at: str
    void_reason: str | None
    voided_at: str | None


class SubmissionRow(NamedTuple):
    """A whole `submissions` row as HQ writes it (column order of the INSERT below)."""

    uuid: str
    form_id: str
    form_version: str
    form_hash: str
    status: str
    revision: int
    enumerator: str
    device_id: str
    created_at: str
    updated_at: str
    submission_time: str
    instance_name: str | None
    void_reason: str | None
    voided_at: str | None
    answers: str | None  # canonical JSON


class VoidUpdate(NamedTuple):
    """A known submission voided: only these fields of its row change."""

    uuid: str
    status: str
    void_reason: str | None
    voided_at: str | None
    updated_at: str


class RevisionRow(NamedTuple):
    """A `revisions` row as HQ writes it (column order of the INSERT below)."""

    uuid: str
    revision: int
    form_hash: str
    submission_time: str
    enumerator: str
    device_id: str
    instance_name: str | None
    answers: str | None  # canonical JSON
    paradata: str | None  # canonical JSON
    hash: str


# sqlite-utils' header for each: the column names, in the NamedTuple's order.
_SUBMISSION_COLUMNS = list(SubmissionRow._fields)
_REVISION_COLUMNS = list(RevisionRow._fields)


class MergeRows(Protocol):
    """What `apply_merge` writes (sync.merge.MergePlan has this shape)."""

    @property
    def inserts(self) -> Sequence[SubmissionRow]: ...
    @property
    def updates(self) -> Sequence[SubmissionRow]: ...
    @property
    def voids(self) -> Sequence[VoidUpdate]: ...
    @property
    def revisions(self) -> Sequence[RevisionRow]: ...


# -- devices -------------------------------------------------------------------------------


def device_by_id(conn: sqlite3.Connection, device_id: str) -> sqlite3.Row | None:
    """The `hq_devices` row of a device, or None when it was never enrolled."""
    return conn.execute("SELECT * FROM hq_devices WHERE device_id = ?", [device_id]).fetchone()


def enroll_device(
    conn: sqlite3.Connection,
    device_id: str,
    sign_key_b64: str,
    fingerprint: str,
    name: str,
    district: str | None,
    enrolled_at: str,
    box_key_b64: str | None = None,
) -> None:
    """Add a device that was never enrolled."""
    tables(conn).table("hq_devices").insert(
        {
            "device_id": device_id,
            "sign_key": sign_key_b64,
            "fingerprint": fingerprint,
            "name": name,
            "district": district,
            "enrolled_at": enrolled_at,
            "box_key": box_key_b64,
        }
    )


def rename_device(
    conn: sqlite3.Connection, device_id: str, name: str, district: str | None
) -> None:
    """Set an enrolled device's name and district."""
    tables(conn).table("hq_devices").update(device_id, {"name": name, "district": district})


def revoke_device(conn: sqlite3.Connection, device_id: str, at: str) -> None:
    """Mark a device revoked at `at`."""
    tables(conn).table("hq_devices").update(device_id, {"revoked_at": at})


def all_devices(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every enrolled device, by name then id."""
    return conn.execute("SELECT * FROM hq_devices ORDER BY name, device_id").fetchall()


# -- forms ---------------------------------------------------------------------------------


def form_known(conn: sqlite3.Connection, form_hash: str) -> bool:
    """Whether HQ holds the definition with this hash."""
    return conn.execute("SELECT 1 FROM forms WHERE hash = ?", [form_hash]).fetchone() is not None


def first_form_hash(conn: sqlite3.Connection, form_id: str, version: str) -> str | None:
    """The hash of the first definition HQ registered for (form id, version), if any."""
    row = conn.execute(
        "SELECT hash FROM forms WHERE form_id = ? AND version = ? "
        "ORDER BY registered_at, rowid LIMIT 1",
        [form_id, version],
    ).fetchone()
    return None if row is None else row["hash"]


def add_forms(conn: sqlite3.Connection, rows: Iterable[tuple[str, str, str, str, str]]) -> None:
    """Register definitions (hash, form_id, version, definition, registered_at); idempotent."""
    header = ["hash", "form_id", "version", "definition", "registered_at"]
    tables(conn).table("forms").insert_all(_rows(header, rows), ignore=True)


# -- bundles and refusals ------------------------------------------------------------------


def bundle_file_hash(conn: sqlite3.Connection, bundle_id: str) -> str | None:
    """The file hash of a bundle HQ imported already, or None when it is new."""
    row = conn.execute(
        "SELECT file_hash FROM hq_bundles WHERE bundle_id = ?", [bundle_id]
    ).fetchone()
    return None if row is None else row["file_hash"]


def record_bundle(
    conn: sqlite3.Connection,
    bundle_id: str,
    device_id: str,
    seq: int,
    file_hash: str,
    prev_hash: str | None,
    created_at: str,
    n_records: int,
    received_at: str,
) -> None:
    """Remember an imported bundle (replays and status read it)."""
    tables(conn).table("hq_bundles").insert(
        {
            "bundle_id": bundle_id,
            "device_id": device_id,
            "seq": seq,
            "file_hash": file_hash,
            "prev_hash": prev_hash,
            "created_at": created_at,
            "n_records": n_records,
            "received_at": received_at,
        }
    )


def refusals_for_bundle(conn: sqlite3.Connection, bundle_id: str) -> dict[tuple[str, int], str]:
    """(uuid, revision) -> reason of the records refused when this bundle was imported."""
    return {
        (r["uuid"], r["revision"]): r["reason"]
        for r in conn.execute(
            "SELECT uuid, revision, reason FROM hq_refused WHERE bundle_id = ?", [bundle_id]
        )
    }


def record_refusals(
    conn: sqlite3.Connection, bundle_id: str, refusals: Iterable[tuple[str, int, str]], at: str
) -> None:
    """Remember the records of a bundle refused at import, each (uuid, revision, reason)."""
    header = ["bundle_id", "uuid", "revision", "reason", "refused_at"]
    rows = [(bundle_id, uuid, revision, reason, at) for uuid, revision, reason in refusals]
    tables(conn).table("hq_refused").insert_all(_rows(header, rows))


def save_receipt(
    conn: sqlite3.Connection, bundle_id: str, device_id: str, seq: int, at: str, data: bytes
) -> None:
    """Keep the bytes of the receipt issued for a bundle (the first one stays)."""
    tables(conn).table("hq_receipts").insert(
        {"bundle_id": bundle_id, "device_id": device_id, "seq": seq, "issued_at": at, "data": data},
        ignore=True,
    )


def receipt_of_bundle(conn: sqlite3.Connection, bundle_id: str) -> bytes | None:
    """The receipt HQ issued for a bundle, or None (none yet, or issued before 006)."""
    row = conn.execute("SELECT data FROM hq_receipts WHERE bundle_id = ?", [bundle_id]).fetchone()
    return None if row is None else bytes(row[0])


def latest_receipt(conn: sqlite3.Connection, device_id: str) -> bytes | None:
    """The receipt of a device's highest-seq bundle that has one, or None."""
    row = conn.execute(
        "SELECT data FROM hq_receipts WHERE device_id = ? ORDER BY seq DESC, issued_at DESC "
        "LIMIT 1",
        [device_id],
    ).fetchone()
    return None if row is None else bytes(row[0])


# -- merge ---------------------------------------------------------------------------------


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def load_state(
    conn: sqlite3.Connection, uuids: Sequence[str]
) -> tuple[dict[str, HeldSubmission], dict[tuple[str, int], str]]:
    """The submissions and revision hashes HQ holds for these uuids, fetched in chunks."""
    subs: dict[str, HeldSubmission] = {}
    revs: dict[tuple[str, int], str] = {}
    for chunk in _chunks(uuids):
        marks = ", ".join("?" for _ in chunk)  # only placeholders are spliced into the SQL
        for row in conn.execute(
            "SELECT uuid, revision, status, device_id, updated_at, void_reason, voided_at "
            f"FROM submissions WHERE uuid IN ({marks})",
            chunk,
        ):
            subs[row["uuid"]] = HeldSubmission(*row)
        for row in conn.execute(
            f"SELECT uuid, revision, hash FROM revisions WHERE uuid IN ({marks})", chunk
        ):
            revs[(row["uuid"], row["revision"])] = row["hash"]
    return subs, revs


def apply_merge(conn: sqlite3.Connection, plan: MergeRows) -> None:
    """Write a merge plan: new submissions and revisions, replaced rows, voids.

    New rows are inserted, never upserted: a uuid or (uuid, revision) HQ already holds
    fails the import (the plan said it was new), rather than being overwritten.
    """
    db = tables(conn)
    submissions = db.table("submissions")
    submissions.insert_all(_rows(_SUBMISSION_COLUMNS, plan.inserts), batch_size=_BATCH)
    db.table("revisions").insert_all(_rows(_REVISION_COLUMNS, plan.revisions), batch_size=_BATCH)
    # Whole rows of known submissions: upsert by uuid replaces every column.
    submissions.upsert_all(_rows(_SUBMISSION_COLUMNS, plan.updates), pk="uuid")
    for void in plan.voids:  # few; an update, as the other columns stay
        uuid, *changes = void
        submissions.update(uuid, dict(zip(void._fields[1:], changes, strict=True)))


# -- status --------------------------------------------------------------------------------


def bundles_of(conn: sqlite3.Connection, device_id: str) -> list[sqlite3.Row]:
    """A device's bundles (seq, file_hash, prev_hash, created_at, received_at), by seq."""
    return conn.execute(
        "SELECT seq, file_hash, prev_hash, created_at, received_at FROM hq_bundles "
        "WHERE device_id = ? ORDER BY seq, received_at",
        [device_id],
    ).fetchall()


def finals_by_form(conn: sqlite3.Connection, device_id: str) -> dict[str, int]:
    """form_id -> number of a device's final (not void) submissions, by form id."""
    return {
        r["form_id"]: r["n"]
        for r in conn.execute(
            "SELECT form_id, COUNT(*) AS n FROM submissions WHERE device_id = ? "
            "AND status = 'final' GROUP BY form_id ORDER BY form_id",
            [device_id],
        )
    }


def void_count(conn: sqlite3.Connection, device_id: str) -> int:
    """How many of a device's submissions are void."""
    return conn.execute(
        "SELECT COUNT(*) FROM submissions WHERE device_id = ? AND status = 'void'", [device_id]
    ).fetchone()[0]


def enumerators_of(conn: sqlite3.Connection, device_id: str) -> list[str]:
    """The enumerator names in a device's revisions, sorted."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT enumerator FROM revisions WHERE device_id = ? ORDER BY 1",
            [device_id],
        )
    ]
