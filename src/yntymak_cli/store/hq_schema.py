"""HQ's tables as SQLAlchemy Core objects: one description for SQLite and PostgreSQL.

On SQLite, HQ's database is the same file format as a laptop's (store/migrations.py
creates these tables with the rest); these objects only describe them, for the portable
queries of store/hq.py. On PostgreSQL they also create the schema, through the named steps
of `PG_MIGRATIONS` (recorded in `_migrations`, as on SQLite). Keep both in step: a column
added by a SQLite migration needs a PostgreSQL step too (tests/test_hq_postgres.py
compares the two schemas).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text),
)

forms = sa.Table(
    "forms",
    metadata,
    sa.Column("hash", sa.Text, primary_key=True),
    sa.Column("form_id", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("registered_at", sa.Text, nullable=False),
    sa.Index("forms_by_id", "form_id", "registered_at"),
)

submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("uuid", sa.Text, primary_key=True),
    sa.Column("form_id", sa.Text, nullable=False),
    sa.Column("form_version", sa.Text, nullable=False),
    sa.Column("form_hash", sa.Text, sa.ForeignKey("forms.hash"), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False, server_default="0"),
    sa.Column("enumerator", sa.Text, nullable=False, server_default=""),
    sa.Column("device_id", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("submission_time", sa.Text),
    sa.Column("instance_name", sa.Text),
    sa.Column("void_reason", sa.Text),
    sa.Column("voided_at", sa.Text),
    sa.Column("answers", sa.Text),
    sa.Column("synced_revision", sa.Integer, nullable=False, server_default="0"),
    sa.Column("void_synced", sa.Integer, nullable=False, server_default="0"),
    sa.Column("purged_at", sa.Text),
    sa.Column("void_refused_at", sa.Text),
    sa.Column("void_refused_reason", sa.Text),
    # Exports' `_id`: given by the database in insert order (SQLite: a trigger, migration
    # 010_submission_ids; PostgreSQL: an identity column, pg_004_submission_ids).
    sa.Column("id", sa.BigInteger, sa.Identity()),  # unique: index of pg_004
    sa.CheckConstraint("status IN ('draft', 'final', 'void')", name="submissions_status"),
    sa.Index("submissions_by_form", "form_id", "status", "submission_time"),
    sa.Index("submissions_by_device", "device_id"),
)

revisions = sa.Table(
    "revisions",
    metadata,
    sa.Column("uuid", sa.Text, sa.ForeignKey("submissions.uuid"), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True),
    sa.Column("form_hash", sa.Text, sa.ForeignKey("forms.hash"), nullable=False),
    sa.Column("submission_time", sa.Text, nullable=False),
    sa.Column("enumerator", sa.Text, nullable=False, server_default=""),
    sa.Column("device_id", sa.Text, nullable=False, server_default=""),
    sa.Column("instance_name", sa.Text),
    sa.Column("answers", sa.Text),
    sa.Column("paradata", sa.Text),
    sa.Column("hash", sa.Text, nullable=False),
    sa.Column("synced_at", sa.Text),
    sa.Column("refused_at", sa.Text),
    sa.Column("refused_reason", sa.Text),
)

hq_devices = sa.Table(
    "hq_devices",
    metadata,
    sa.Column("device_id", sa.Text, primary_key=True),
    sa.Column("sign_key", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("district", sa.Text),
    sa.Column("enrolled_at", sa.Text, nullable=False),
    sa.Column("revoked_at", sa.Text),
    sa.Column("box_key", sa.Text),
)

hq_bundles = sa.Table(
    "hq_bundles",
    metadata,
    sa.Column("bundle_id", sa.Text, primary_key=True),
    sa.Column("device_id", sa.Text, sa.ForeignKey("hq_devices.device_id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("file_hash", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("n_records", sa.Integer, nullable=False),
    sa.Column("received_at", sa.Text, nullable=False),
    sa.Index("hq_bundles_by_device", "device_id", "seq"),
)

hq_refused = sa.Table(
    "hq_refused",
    metadata,
    sa.Column("bundle_id", sa.Text, sa.ForeignKey("hq_bundles.bundle_id"), primary_key=True),
    sa.Column("uuid", sa.Text, primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("refused_at", sa.Text, nullable=False),
)

# decision_id is at least HQ's clock in milliseconds: a 64-bit integer on PostgreSQL.
reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("decision_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("uuid", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("decided_at", sa.Text, nullable=False),
    sa.Column("delivered_at", sa.Text),
    sa.Column("received_at", sa.Text),
    sa.CheckConstraint("status IN ('approved', 'rejected', 'on_hold')", name="reviews_status"),
    sa.Index("reviews_by_submission", "uuid", "revision", "decision_id"),
)

hq_receipts = sa.Table(
    "hq_receipts",
    metadata,
    sa.Column("bundle_id", sa.Text, sa.ForeignKey("hq_bundles.bundle_id"), primary_key=True),
    sa.Column("device_id", sa.Text, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("issued_at", sa.Text, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Index("hq_receipts_by_device", "device_id", "seq"),
)

# How many final submissions HQ expects of a form per district or per enumerator
# (`hq targets set`; SQLite migration 008_targets, PostgreSQL pg_002_targets).
hq_targets = sa.Table(
    "hq_targets",
    metadata,
    sa.Column("form_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("target", sa.Integer, nullable=False),
    sa.Column("set_at", sa.Text, nullable=False),
    sa.CheckConstraint("kind IN ('district', 'enumerator')", name="hq_targets_kind"),
    sa.CheckConstraint("target >= 0", name="hq_targets_target"),
)

# Each submission's interview timing, worked out once when HQ imports its first revision
# (quality.paradata.stored), so that `hq checks` need not parse paradata on every run
# (SQLite migration 009_timings, PostgreSQL pg_003_timings). A submission imported before
# has no row: the checks time it from its paradata instead. started NULL: untimed.
hq_timings = sa.Table(
    "hq_timings",
    metadata,
    sa.Column("uuid", sa.Text, sa.ForeignKey("submissions.uuid"), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("started", sa.Float),
    sa.Column("ended", sa.Float),
    sa.Column("active_seconds", sa.Float),
    sa.Column("sessions", sa.Integer, nullable=False),
    sa.Column("seconds", sa.Text),
)

# The media files HQ received in bundles, each once (SQLite migration 012_hq_media,
# PostgreSQL pg_005_hq_media). The bytes are files beside the database on both engines:
# HQ_HOME/media/<2 hex>/<sha256> (sync/hq_media.py); this row says what each file is and
# which bundle first brought it.
hq_media = sa.Table(
    "hq_media",
    metadata,
    sa.Column("sha256", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("media_type", sa.Text, nullable=False),
    sa.Column("bundle_id", sa.Text, sa.ForeignKey("hq_bundles.bundle_id"), nullable=False),
    sa.Column("received_at", sa.Text, nullable=False),
)

# The tables of pg_001_hq: the schema when PostgreSQL support began. Later tables are
# created by steps of their own, so a database made before them gets them too.
_PG_001_TABLES = (settings, forms, submissions, revisions, hq_devices, hq_bundles,
                  hq_refused, reviews, hq_receipts)  # fmt: skip
# HQ's tables, in an order that respects their foreign keys (for copies and checks).
HQ_TABLES = (*_PG_001_TABLES, hq_targets, hq_timings, hq_media)

PgStep = Callable[[sa.Connection], None]


def _pg_001_hq(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=list(_PG_001_TABLES))


def _pg_002_targets(conn: sa.Connection) -> None:
    # checkfirst: a database whose pg_001 ran while it still created every table has it.
    hq_targets.create(conn, checkfirst=True)


def _pg_003_timings(conn: sa.Connection) -> None:
    hq_timings.create(conn, checkfirst=True)


def _pg_004_submission_ids(conn: sa.Connection) -> None:
    # pg_001 creates the column in a database made since. An older one gets it here, its
    # submissions numbered in the order they were finalised (PostgreSQL keeps no insert
    # order), then an identity that goes on after them. One rewrite of the table, under
    # this step's lock, once.
    found = conn.exec_driver_sql(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = 'submissions' AND column_name = 'id'"
    ).first()
    if found is None:
        conn.exec_driver_sql("ALTER TABLE submissions ADD COLUMN id BIGINT")
        conn.exec_driver_sql(
            "UPDATE submissions SET id = n.n FROM (SELECT uuid, row_number() OVER"
            " (ORDER BY submission_time, uuid) AS n FROM submissions) AS n"
            " WHERE submissions.uuid = n.uuid"
        )
        conn.exec_driver_sql("ALTER TABLE submissions ALTER COLUMN id SET NOT NULL")
        conn.exec_driver_sql(
            "ALTER TABLE submissions ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY"
        )
        continue_submission_ids(conn)
    conn.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS submissions_id ON submissions (id)")


def continue_submission_ids(conn: sa.Connection) -> None:
    """PostgreSQL: the next submission's id follows the highest held (after rows were
    given their ids explicitly: numbered by pg_004, or copied by `hq migrate`)."""
    conn.exec_driver_sql(
        "SELECT setval(pg_get_serial_sequence('submissions', 'id'),"
        " COALESCE((SELECT MAX(id) FROM submissions), 0) + 1, false)"
    )


def _pg_005_hq_media(conn: sa.Connection) -> None:
    hq_media.create(conn, checkfirst=True)


# Named, forward-only steps for a PostgreSQL HQ (SQLite's are store/migrations.py): the
# schema as it stood when PostgreSQL support began, then one step per change.
PG_MIGRATIONS: list[tuple[str, PgStep]] = [
    ("pg_001_hq", _pg_001_hq),
    ("pg_002_targets", _pg_002_targets),
    ("pg_003_timings", _pg_003_timings),
    ("pg_004_submission_ids", _pg_004_submission_ids),
    ("pg_005_hq_media", _pg_005_hq_media),
]
