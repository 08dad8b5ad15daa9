"""Schema as named, forward-only steps recorded in `_migrations`.

Never alter the user's data outside a step here. Answers are stored as JSON data: question
names never become SQL identifiers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Step = Callable[[sqlite3.Connection], None]


def _run(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the surrounding transaction; run statements one by one.
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)


def _001_core(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE forms (
            hash TEXT PRIMARY KEY,
            form_id TEXT NOT NULL,
            version TEXT NOT NULL,
            definition TEXT NOT NULL,
            registered_at TEXT NOT NULL
        );
        CREATE INDEX forms_by_id ON forms (form_id, registered_at);
        -- One row per submission: its latest finalised revision (or draft answers if it was
        -- never finalised), plus status and sync marks.
        CREATE TABLE submissions (
            uuid TEXT PRIMARY KEY,
            form_id TEXT NOT NULL,
            form_version TEXT NOT NULL,
            form_hash TEXT NOT NULL REFERENCES forms (hash),
            status TEXT NOT NULL CHECK (status IN ('draft', 'final', 'void')),
            revision INTEGER NOT NULL DEFAULT 0,
            enumerator TEXT NOT NULL DEFAULT '',
            device_id TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            submission_time TEXT,
            instance_name TEXT,
            void_reason TEXT,
            voided_at TEXT,
            answers TEXT,
            synced_revision INTEGER NOT NULL DEFAULT 0,
            void_synced INTEGER NOT NULL DEFAULT 0,
            purged_at TEXT
        );
        CREATE INDEX submissions_by_form ON submissions (form_id, status, submission_time);
        -- Every finalised revision, never overwritten.
        CREATE TABLE revisions (
            uuid TEXT NOT NULL REFERENCES submissions (uuid),
            revision INTEGER NOT NULL,
            form_hash TEXT NOT NULL REFERENCES forms (hash),
            submission_time TEXT NOT NULL,
            enumerator TEXT NOT NULL DEFAULT '',
            device_id TEXT NOT NULL DEFAULT '',
            instance_name TEXT,
            answers TEXT,
            paradata TEXT,
            hash TEXT NOT NULL,
            PRIMARY KEY (uuid, revision)
        );
        -- Work in progress: a new survey, or an edit of a finalised one (base_revision > 0).
        CREATE TABLE drafts (
            uuid TEXT PRIMARY KEY,
            form_hash TEXT NOT NULL REFERENCES forms (hash),
            base_revision INTEGER NOT NULL DEFAULT 0,
            enumerator TEXT NOT NULL DEFAULT '',
            device_id TEXT NOT NULL DEFAULT '',
            started_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            state TEXT NOT NULL,
            paradata TEXT NOT NULL DEFAULT '{}'
        );
        """,
    )


def _002_sync(conn: sqlite3.Connection) -> None:
    # Device side: which revisions HQ acknowledged, and the bundles this device made.
    # HQ side: enrolled devices and the bundles received. One schema serves both roles.
    _run(
        conn,
        """
        ALTER TABLE revisions ADD COLUMN synced_at TEXT;
        CREATE INDEX revisions_unsynced ON revisions (uuid) WHERE synced_at IS NULL;
        CREATE INDEX submissions_by_device ON submissions (device_id);
        CREATE TABLE sync_bundles (
            seq INTEGER PRIMARY KEY,
            bundle_id TEXT NOT NULL UNIQUE,
            file_name TEXT NOT NULL,
            file_hash TEXT NOT NULL,
            prev_hash TEXT,
            hq_fingerprint TEXT NOT NULL,
            created_at TEXT NOT NULL,
            contents TEXT NOT NULL,
            acked_at TEXT
        );
        CREATE TABLE hq_devices (
            device_id TEXT PRIMARY KEY,
            sign_key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            name TEXT NOT NULL,
            district TEXT,
            enrolled_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE TABLE hq_bundles (
            bundle_id TEXT PRIMARY KEY,
            device_id TEXT NOT NULL REFERENCES hq_devices (device_id),
            seq INTEGER NOT NULL,
            file_hash TEXT NOT NULL,
            prev_hash TEXT,
            created_at TEXT NOT NULL,
            n_records INTEGER NOT NULL,
            received_at TEXT NOT NULL
        );
        CREATE INDEX hq_bundles_by_device ON hq_bundles (device_id, seq);
        """,
    )


def _003_laptop_hardening(conn: sqlite3.Connection) -> None:
    # Before this step, finalising an edit opened before a purge left `purged_at` set on a
    # submission holding the new revision's answers: export hid it and purge never erased
    # it. Such a submission is not purged; the next purge erases it once HQ has it.
    conn.execute(
        "UPDATE submissions SET purged_at = NULL "
        "WHERE purged_at IS NOT NULL AND answers IS NOT NULL"
    )


def _004_hq_hardening(conn: sqlite3.Connection) -> None:
    # HQ side: records of an imported bundle that HQ refused one by one (the rest of the
    # bundle was merged), so a replayed bundle gets the same receipt.
    # Device side: what a receipt said HQ refused, so that `bundle create` stops sending it
    # (a revision, or the void of a submission) and the volunteer can see why.
    _run(
        conn,
        """
        CREATE TABLE hq_refused (
            bundle_id TEXT NOT NULL REFERENCES hq_bundles (bundle_id),
            uuid TEXT NOT NULL,
            revision INTEGER NOT NULL,
            reason TEXT NOT NULL,
            refused_at TEXT NOT NULL,
            PRIMARY KEY (bundle_id, uuid, revision)
        );
        ALTER TABLE revisions ADD COLUMN refused_at TEXT;
        ALTER TABLE revisions ADD COLUMN refused_reason TEXT;
        ALTER TABLE submissions ADD COLUMN void_refused_at TEXT;
        ALTER TABLE submissions ADD COLUMN void_refused_reason TEXT
        """,
    )


def _005_reviews(conn: sqlite3.Connection) -> None:
    # HQ's review decisions. One table serves both roles: at HQ, every decision made (and
    # when it first went out in a receipt); on a laptop, the decisions receipts brought.
    # decision_id is HQ's number on both sides, so a laptop can tell an old decision from
    # a newer one. A submission's review status is its newest decision on its current
    # revision: a newer revision has none, so it is pending again.
    # hq_devices.box_key: the device's X25519 key (base64) that decisions are sealed to,
    # NULL until HQ has it (enrolments from before this step: `hq enroll --update`).
    _run(
        conn,
        """
        CREATE TABLE reviews (
            decision_id INTEGER PRIMARY KEY,
            uuid TEXT NOT NULL,
            revision INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('approved', 'rejected', 'on_hold')),
            comment TEXT,
            reviewer TEXT NOT NULL,
            decided_at TEXT NOT NULL,
            delivered_at TEXT,
            received_at TEXT
        );
        CREATE INDEX reviews_by_submission ON reviews (uuid, revision, decision_id);
        ALTER TABLE hq_devices ADD COLUMN box_key TEXT
        """,
    )


def _006_hq_receipts(conn: sqlite3.Connection) -> None:
    # HQ side: the exact bytes of each receipt HQ issued, by bundle. A replayed bundle (a
    # laptop whose HTTP answer or USB copy was lost) gets the very same receipt back, with
    # the same sealed decisions, and `GET /api/v1/devices/{id}/receipt` serves the latest.
    _run(
        conn,
        """
        CREATE TABLE hq_receipts (
            bundle_id TEXT PRIMARY KEY REFERENCES hq_bundles (bundle_id),
            device_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            issued_at TEXT NOT NULL,
            data BLOB NOT NULL
        );
        CREATE INDEX hq_receipts_by_device ON hq_receipts (device_id, seq)
        """,
    )


def _007_received_receipts(conn: sqlite3.Connection) -> None:
    # Laptop side: the receipts v2 it applied. A copy of one of them arriving again after
    # a newer decision is a replay, refused; a receipt never applied that arrives late is
    # applied, its superseded decisions skipped (so none of its other decisions is lost).
    _run(
        conn,
        """
        CREATE TABLE received_receipts (
            receipt_id TEXT PRIMARY KEY,
            applied_at TEXT NOT NULL
        )
        """,
    )


def _008_targets(conn: sqlite3.Connection) -> None:
    # HQ side: how many final submissions HQ expects of a form, per district or per
    # enumerator (`hq targets set`), for `hq status --form` and the export's summary sheet.
    # One file sets one kind of a form's targets; set_at is when it was set.
    _run(
        conn,
        """
        CREATE TABLE hq_targets (
            form_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('district', 'enumerator')),
            name TEXT NOT NULL,
            target INTEGER NOT NULL CHECK (target >= 0),
            set_at TEXT NOT NULL,
            PRIMARY KEY (form_id, kind, name)
        )
        """,
    )


def _009_timings(conn: sqlite3.Connection) -> None:
    # HQ side: each submission's interview timing, worked out from its first revision's
    # paradata once, at import (quality.paradata.stored), for `hq checks`. Submissions
    # imported before this step have no row and are timed from their paradata.
    _run(
        conn,
        """
        CREATE TABLE hq_timings (
            uuid TEXT PRIMARY KEY REFERENCES submissions(uuid),
            revision INTEGER NOT NULL,
            started REAL,
            ended REAL,
            active_seconds REAL,
            sessions INTEGER NOT NULL,
            seconds TEXT
        )
        """,
    )


def _010_submission_ids(conn: sqlite3.Connection) -> None:
    # Exports' `_id` (KoboToolbox's): a stable integer per submission, on a laptop and at
    # HQ alike, in insert order. A column rather than the rowid: rowid is no column that
    # SQLAlchemy queries, exports and `hq migrate` see, and VACUUM (which purge runs) may
    # renumber it in a table without an INTEGER PRIMARY KEY. Submissions rows are never
    # deleted, so MAX + 1 never hands out an id twice; inserts run under the write lock.
    _run(
        conn,
        """
        ALTER TABLE submissions ADD COLUMN id INTEGER;
        UPDATE submissions SET id = rowid;
        CREATE UNIQUE INDEX submissions_id ON submissions (id);
        CREATE TRIGGER submissions_number AFTER INSERT ON submissions WHEN NEW.id IS NULL
        BEGIN
            UPDATE submissions SET id = (SELECT COALESCE(MAX(id), 0) + 1 FROM submissions)
            WHERE uuid = NEW.uuid; END
        """,
    )


def _011_media(conn: sqlite3.Connection) -> None:
    # Laptop side: the files of media answers, kept once each under HOME/media/ by their
    # SHA-256 (store/media.py). An answer names its file by hash; this row says what the
    # file is. Rows (and files) no answer, revision or draft names go at purge.
    _run(
        conn,
        """
        CREATE TABLE media (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            media_type TEXT NOT NULL,
            original_name TEXT NOT NULL,
            added_at TEXT NOT NULL
        )
        """,
    )


def _012_hq_media(conn: sqlite3.Connection) -> None:
    # HQ side: the media files bundles brought, kept once each beside the database under
    # media/ by their SHA-256 (sync/hq_media.py); the row says what the file is and which
    # bundle first brought it. (PostgreSQL: hq_schema pg_005_hq_media.)
    _run(
        conn,
        """
        CREATE TABLE hq_media (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            media_type TEXT NOT NULL,
            bundle_id TEXT NOT NULL REFERENCES hq_bundles(bundle_id),
            received_at TEXT NOT NULL
        )
        """,
    )


MIGRATIONS: list[tuple[str, Step]] = [
    ("001_core", _001_core),
    ("002_sync", _002_sync),
    ("003_laptop_hardening", _003_laptop_hardening),
    ("004_hq_hardening", _004_hq_hardening),
    ("005_reviews", _005_reviews),
    ("006_hq_receipts", _006_hq_receipts),
    ("007_received_receipts", _007_received_receipts),
    ("008_targets", _008_targets),
    ("009_timings", _009_timings),
    ("010_submission_ids", _010_submission_ids),
    ("011_media", _011_media),
    ("012_hq_media", _012_hq_media),
]


def migrate(conn: sqlite3.Connection, steps: list[tuple[str, Step]] | None = None) -> list[str]:
    """Apply the steps not yet recorded, each in its own transaction. Returns names applied."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for name, step in steps or MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied it while we waited for the lock.
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", [name]).fetchone():
                conn.execute("COMMIT")
                continue
            step(conn)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, datetime('now'))", [name]
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied
