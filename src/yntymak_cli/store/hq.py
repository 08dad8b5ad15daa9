"""HQ's tables: enrolled devices, bundles received, refusals, receipts, review decisions,
and the merge's reads and writes.

Every SQL statement of HQ lives here, written once with SQLAlchemy Core for both engines
HQ runs on (SQLite, PostgreSQL; store/hqdb.py). `sync.hq` and `sync.review` keep the
policy and call these named, parameterised queries. Functions take the connection of the
caller's transaction (`HqDb.write()`), so an import stays one transaction. Inserts of many
rows are one executemany (SQLAlchemy batches them into multi-row INSERTs); "insert or
ignore" and upserts are each dialect's ON CONFLICT. The row shapes are NamedTuples whose
fields are the tables' columns.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa

from yntymak_cli.store.hq_schema import (
    forms,
    hq_bundles,
    hq_devices,
    hq_media,
    hq_receipts,
    hq_refused,
    hq_timings,
    reviews,
    revisions,
    submissions,
)
from yntymak_cli.store.reviews import PENDING, Decision

_CHUNK = 400  # bound on SQL parameters per IN (...) list


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ON CONFLICT (SQLite and PostgreSQL alike)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def _dicts(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


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


class TimingRow(NamedTuple):
    """An `hq_timings` row: the interview timing of a submission's first revision."""

    uuid: str
    revision: int
    started: float | None
    ended: float | None
    active_seconds: float | None
    sessions: int
    seconds: str | None


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
    @property
    def timings(self) -> Sequence[TimingRow]: ...


# -- devices -------------------------------------------------------------------------------

Row = sa.RowMapping


def device_by_id(conn: sa.Connection, device_id: str) -> Row | None:
    """The `hq_devices` row of a device, or None when it was never enrolled."""
    return (
        conn.execute(sa.select(hq_devices).where(hq_devices.c.device_id == device_id))
        .mappings()
        .first()
    )


def enroll_device(
    conn: sa.Connection,
    device_id: str,
    sign_key_b64: str,
    fingerprint: str,
    name: str,
    district: str | None,
    enrolled_at: str,
    box_key_b64: str | None = None,
) -> None:
    """Add a device that was never enrolled."""
    conn.execute(
        sa.insert(hq_devices).values(
            device_id=device_id,
            sign_key=sign_key_b64,
            fingerprint=fingerprint,
            name=name,
            district=district,
            enrolled_at=enrolled_at,
            box_key=box_key_b64,
        )
    )


def _update_device(conn: sa.Connection, device_id: str, **values: Any) -> None:
    conn.execute(sa.update(hq_devices).where(hq_devices.c.device_id == device_id).values(**values))


def rename_device(conn: sa.Connection, device_id: str, name: str, district: str | None) -> None:
    """Set an enrolled device's name and district."""
    _update_device(conn, device_id, name=name, district=district)


def revoke_device(conn: sa.Connection, device_id: str, at: str) -> None:
    """Mark a device revoked at `at`."""
    _update_device(conn, device_id, revoked_at=at)


def set_box_key(conn: sa.Connection, device_id: str, box_key_b64: str) -> None:
    """Learn (or replace) the X25519 key a device's decisions are sealed to."""
    _update_device(conn, device_id, box_key=box_key_b64)


def all_devices(conn: sa.Connection) -> list[Row]:
    """Every enrolled device, by name then id."""
    query = sa.select(hq_devices).order_by(hq_devices.c.name, hq_devices.c.device_id)
    return list(conn.execute(query).mappings())


# -- forms ---------------------------------------------------------------------------------


def form_known(conn: sa.Connection, form_hash: str) -> bool:
    """Whether HQ holds the definition with this hash."""
    query = sa.select(sa.literal(1)).where(forms.c.hash == form_hash)
    return conn.execute(query).first() is not None


def first_form_hash(conn: sa.Connection, form_id: str, version: str) -> str | None:
    """The hash of the first definition HQ registered for (form id, version), if any.

    An import stores at most one definition of an (id, version) new to HQ, so the earliest
    registration time names it."""
    query = (
        sa.select(forms.c.hash)
        .where(forms.c.form_id == form_id, forms.c.version == version)
        .order_by(forms.c.registered_at, forms.c.hash)
        .limit(1)
    )
    return conn.execute(query).scalar()


def add_forms(conn: sa.Connection, rows: Iterable[tuple[str, str, str, str, str]]) -> None:
    """Register definitions (hash, form_id, version, definition, registered_at); idempotent."""
    values = _dicts(("hash", "form_id", "version", "definition", "registered_at"), rows)
    if values:
        conn.execute(_insert(conn, forms).on_conflict_do_nothing(), values)


# -- bundles, refusals and receipts --------------------------------------------------------


def bundle_file_hash(conn: sa.Connection, bundle_id: str) -> str | None:
    """The file hash of a bundle HQ imported already, or None when it is new."""
    query = sa.select(hq_bundles.c.file_hash).where(hq_bundles.c.bundle_id == bundle_id)
    return conn.execute(query).scalar()


def record_bundle(
    conn: sa.Connection,
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
    conn.execute(
        sa.insert(hq_bundles).values(
            bundle_id=bundle_id,
            device_id=device_id,
            seq=seq,
            file_hash=file_hash,
            prev_hash=prev_hash,
            created_at=created_at,
            n_records=n_records,
            received_at=received_at,
        )
    )


def refusals_for_bundle(conn: sa.Connection, bundle_id: str) -> dict[tuple[str, int], str]:
    """(uuid, revision) -> reason of the records refused when this bundle was imported."""
    query = sa.select(hq_refused.c.uuid, hq_refused.c.revision, hq_refused.c.reason).where(
        hq_refused.c.bundle_id == bundle_id
    )
    return {(r.uuid, r.revision): r.reason for r in conn.execute(query)}


def record_refusals(
    conn: sa.Connection, bundle_id: str, refusals: Iterable[tuple[str, int, str]], at: str
) -> None:
    """Remember the records of a bundle refused at import, each (uuid, revision, reason)."""
    values = [
        {"bundle_id": bundle_id, "uuid": u, "revision": r, "reason": why, "refused_at": at}
        for u, r, why in refusals
    ]
    if values:
        conn.execute(sa.insert(hq_refused), values)


def save_receipt(
    conn: sa.Connection, bundle_id: str, device_id: str, seq: int, at: str, data: bytes
) -> None:
    """Keep the bytes of the receipt issued for a bundle (the first one stays)."""
    conn.execute(
        _insert(conn, hq_receipts)
        .values(bundle_id=bundle_id, device_id=device_id, seq=seq, issued_at=at, data=data)
        .on_conflict_do_nothing()
    )


def receipt_of_bundle(conn: sa.Connection, bundle_id: str) -> bytes | None:
    """The receipt HQ issued for a bundle, or None (none yet, or issued before 006)."""
    data = conn.execute(
        sa.select(hq_receipts.c.data).where(hq_receipts.c.bundle_id == bundle_id)
    ).scalar()
    return None if data is None else bytes(data)


def latest_receipt(conn: sa.Connection, device_id: str) -> bytes | None:
    """The receipt of a device's highest-seq bundle that has one, or None."""
    data = conn.execute(
        sa.select(hq_receipts.c.data)
        .where(hq_receipts.c.device_id == device_id)
        .order_by(hq_receipts.c.seq.desc(), hq_receipts.c.issued_at.desc())
        .limit(1)
    ).scalar()
    return None if data is None else bytes(data)


def lock_device(conn: sa.Connection, device_id: str) -> None:
    """Serialise the imports of one device, until the transaction ends. SQLite's write lock
    serialises every import already; on PostgreSQL, workers importing bundles of other
    devices go on in parallel, and two copies of one bundle are imported once."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:d))"), {"d": device_id})


def lock_form_version(conn: sa.Connection, form_id: str, version: str) -> None:
    """Serialise the imports that bring a form version, until the transaction ends (on
    PostgreSQL; SQLite's write lock serialises every import already)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"form\n{form_id}\n{version}"},  # (a collision only serialises)
        )


# -- merge ---------------------------------------------------------------------------------


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def load_state(
    conn: sa.Connection, uuids: Sequence[str]
) -> tuple[dict[str, HeldSubmission], dict[tuple[str, int], str]]:
    """The submissions and revision hashes HQ holds for these uuids, fetched in chunks."""
    subs: dict[str, HeldSubmission] = {}
    revs: dict[tuple[str, int], str] = {}
    held = [getattr(submissions.c, name) for name in HeldSubmission._fields]
    for chunk in _chunks(uuids):
        for row in conn.execute(sa.select(*held).where(submissions.c.uuid.in_(chunk))):
            subs[row.uuid] = HeldSubmission(*row)
        query = sa.select(revisions.c.uuid, revisions.c.revision, revisions.c.hash).where(
            revisions.c.uuid.in_(chunk)
        )
        for row in conn.execute(query):
            revs[(row.uuid, row.revision)] = row.hash
    return subs, revs


def apply_merge(conn: sa.Connection, plan: MergeRows) -> None:
    """Write a merge plan: new submissions and revisions, replaced rows, voids.

    New rows are inserted, never upserted: a uuid or (uuid, revision) HQ already holds
    fails the import (the plan said it was new), rather than being overwritten.
    """
    if plan.inserts:
        conn.execute(sa.insert(submissions), [r._asdict() for r in plan.inserts])
    if plan.revisions:
        conn.execute(sa.insert(revisions), [r._asdict() for r in plan.revisions])
    if plan.updates:
        # Whole rows of known submissions: every column of the row is replaced.
        stmt = _insert(conn, submissions)
        changed = {c: stmt.excluded[c] for c in _SUBMISSION_COLUMNS if c != "uuid"}
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["uuid"], set_=changed),
            [r._asdict() for r in plan.updates],
        )
    for void in plan.voids:  # few; an update, as the other columns stay
        changes = void._asdict()
        uuid = changes.pop("uuid")
        conn.execute(sa.update(submissions).where(submissions.c.uuid == uuid).values(**changes))
    if plan.timings:
        # A lower revision arriving late (bundles out of order) replaces a higher one's.
        stmt = _insert(conn, hq_timings)
        newer = {c.name: stmt.excluded[c.name] for c in hq_timings.columns if c.name != "uuid"}
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["uuid"],
                set_=newer,
                where=stmt.excluded.revision < hq_timings.c.revision,
            ),
            [r._asdict() for r in plan.timings],
        )


# -- status --------------------------------------------------------------------------------


def bundles_of(conn: sa.Connection, device_id: str) -> list[Row]:
    """A device's bundles (seq, file_hash, prev_hash, created_at, received_at), by seq."""
    b = hq_bundles
    query = (
        sa.select(b.c.seq, b.c.file_hash, b.c.prev_hash, b.c.created_at, b.c.received_at)
        .where(b.c.device_id == device_id)
        .order_by(b.c.seq, b.c.received_at)
    )
    return list(conn.execute(query).mappings())


def finals_by_form(conn: sa.Connection, device_id: str) -> dict[str, int]:
    """form_id -> number of a device's final (not void) submissions, by form id."""
    s = submissions
    query = (
        sa.select(s.c.form_id, sa.func.count())
        .where(s.c.device_id == device_id, s.c.status == "final")
        .group_by(s.c.form_id)
        .order_by(s.c.form_id)
    )
    return {form_id: n for form_id, n in conn.execute(query)}


def void_count(conn: sa.Connection, device_id: str) -> int:
    """How many of a device's submissions are void."""
    s = submissions
    query = sa.select(sa.func.count()).where(s.c.device_id == device_id, s.c.status == "void")
    return int(conn.execute(query).scalar() or 0)


def enumerators_of(conn: sa.Connection, device_id: str) -> list[str]:
    """The enumerator names in a device's revisions, sorted."""
    r = revisions
    query = (
        sa.select(r.c.enumerator)
        .distinct()
        .where(r.c.device_id == device_id)
        .order_by(r.c.enumerator)
    )
    return list(conn.execute(query).scalars())


# -- review decisions ----------------------------------------------------------------------

_DECISION = [getattr(reviews.c, name) for name in Decision._fields]
_X = reviews.alias("x")
_RV = reviews.alias("rv")


def _newest_on(uuid_col: Any, revision_col: Any) -> Any:
    """The newest decision id on (uuid, revision): one seek in reviews_by_submission."""
    return (
        sa.select(sa.func.max(_X.c.decision_id))
        .where(_X.c.uuid == uuid_col, _X.c.revision == revision_col)
        .scalar_subquery()
    )


def add_decision(
    conn: sa.Connection,
    uuid: str,
    revision: int,
    status: str,
    comment: str | None,
    reviewer: str,
    decided_at: str,
) -> int:
    """Record a decision HQ made; returns its decision_id.

    The id is the next one, but at least HQ's clock in milliseconds: a database restored
    from a backup then never hands out an id a laptop already holds for another decision.
    """
    last = conn.execute(sa.select(sa.func.max(reviews.c.decision_id))).scalar() or 0
    decision_id = max(int(last) + 1, int(time.time() * 1000))
    conn.execute(
        sa.insert(reviews).values(
            decision_id=decision_id,
            uuid=uuid,
            revision=revision,
            status=status,
            comment=comment,
            reviewer=reviewer,
            decided_at=decided_at,
        )
    )
    return decision_id


def decision_history(conn: sa.Connection, uuid: str) -> list[Decision]:
    """Every decision on a submission, oldest first."""
    query = sa.select(*_DECISION).where(reviews.c.uuid == uuid).order_by(reviews.c.decision_id)
    return [Decision(*row) for row in conn.execute(query)]


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


def review_list(
    conn: sa.Connection,
    *,
    status: str | None = None,
    form_id: str | None = None,
    district: str | None = None,
    enumerator: str | None = None,
) -> list[ReviewRow]:
    """Final submissions with their review state, oldest first, filtered as asked."""
    s, d, c = submissions, hq_devices, reviews.alias("c")
    state = sa.func.coalesce(_RV.c.status, PENDING)
    last_comment = (
        sa.select(c.c.comment)
        .where(c.c.uuid == s.c.uuid, c.c.comment.is_not(None))
        .order_by(c.c.decision_id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        sa.select(
            s.c.uuid,
            s.c.form_id,
            s.c.form_version,
            s.c.revision,
            s.c.enumerator,
            s.c.device_id,
            d.c.name,
            d.c.district,
            s.c.submission_time,
            state,
            _RV.c.reviewer,
            _RV.c.decided_at,
            last_comment,
        )  # fmt: skip
        .select_from(
            s.outerjoin(_RV, _RV.c.decision_id == _newest_on(s.c.uuid, s.c.revision)).outerjoin(
                d, d.c.device_id == s.c.device_id
            )
        )
        .where(s.c.status == "final")
        .order_by(s.c.submission_time, s.c.uuid)
    )
    if status is not None:
        query = query.where(state == status)
    if form_id is not None:
        query = query.where(s.c.form_id == form_id)
    if district is not None:
        query = query.where(d.c.district == district)
    if enumerator is not None:
        query = query.where(s.c.enumerator == enumerator)
    return [ReviewRow._make(row) for row in conn.execute(query)]


def to_deliver(conn: sa.Connection, device_id: str, *, again: bool = False) -> list[Decision]:
    """The newest decision on each of a device's submissions that no receipt carried yet
    (with `again`: carried or not), oldest first.

    Only the newest: a laptop skips or refuses a decision older than one it has, so a
    superseded decision is never sent, not even a first time.
    """
    newest = (
        sa.select(sa.func.max(_X.c.decision_id))
        .where(_X.c.uuid == reviews.c.uuid)
        .scalar_subquery()
    )
    query = (
        sa.select(*_DECISION)
        .select_from(reviews.join(submissions, submissions.c.uuid == reviews.c.uuid))
        .where(submissions.c.device_id == device_id, reviews.c.decision_id == newest)
        .order_by(reviews.c.decision_id)
    )
    if not again:
        query = query.where(reviews.c.delivered_at.is_(None))
    return [Decision(*row) for row in conn.execute(query)]


def mark_delivered(conn: sa.Connection, decision_ids: Sequence[int], at: str) -> None:
    """The first receipt that carries a decision sets its delivered_at; later ones leave it."""
    for i in range(0, len(decision_ids), _CHUNK):
        chunk = list(decision_ids[i : i + _CHUNK])
        conn.execute(
            sa.update(reviews)
            .where(reviews.c.decision_id.in_(chunk))
            .values(delivered_at=sa.func.coalesce(reviews.c.delivered_at, at))
        )


# -- media ---------------------------------------------------------------------------------


def media_sizes(conn: sa.Connection, hashes: Iterable[str]) -> dict[str, int]:
    """sha256 -> size of the media files HQ holds among `hashes`."""
    wanted = sorted(set(hashes))
    out: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        query = sa.select(hq_media.c.sha256, hq_media.c.size).where(
            hq_media.c.sha256.in_(wanted[start : start + 500])
        )
        out.update({row.sha256: row.size for row in conn.execute(query)})
    return out


def add_media(
    conn: sa.Connection, rows: Sequence[tuple[str, int, str]], bundle_id: str, at: str
) -> None:
    """Record media files (sha256, size, media_type) a bundle brought; one HQ holds stays."""
    values = [
        {"sha256": h, "size": n, "media_type": m, "bundle_id": bundle_id, "received_at": at}
        for h, n, m in rows
    ]
    if values:
        conn.execute(_insert(conn, hq_media).on_conflict_do_nothing(), values)
