"""HQ's database: the embedded SQLite file, or PostgreSQL, through SQLAlchemy Core.

`HqDb.open()` picks it: a URL given, else `YNTYMAK_HQ_DB`, else the `hq_db` setting
(`yntymak hq init --db URL`, `yntymak config set hq_db URL`), else HQ home's SQLite file.
Every HQ query (store/hq.py) is written once, for both.

The transaction model is the laptop Store's on both engines: one connection, in
autocommit mode outside `write()`; `write()` is one explicit transaction that takes the
write lock up front (SQLite `BEGIN IMMEDIATE`; PostgreSQL `BEGIN`, with per-device
advisory locks where imports need them), and a write inside a write nests as a SAVEPOINT.
On SQLite, the connection *is* the Store's (same pragmas, migrations, file modes and
disk-full messages); SQLAlchemy runs its statements on it.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from yntymak_cli.errors import InvalidInput, NotFound, YntymakError
from yntymak_cli.forms.model import Form
from yntymak_cli.store import hq_schema

if TYPE_CHECKING:
    from yntymak_cli.store.db import Store

# The newest decision on each submission's current revision (`rv`), as store/db.py's
# CURRENT_REVIEW_JOIN: one alias object, so every query names the same FROM item.
_RV = hq_schema.reviews.alias("rv")
_ENGINES: dict[str, sa.Engine] = {}  # one pool per PostgreSQL URL in this process
_X = hq_schema.reviews.alias("x")

ENV_VAR = "YNTYMAK_HQ_DB"
SETTING = "hq_db"
_PG_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")


def _t(key: str, **params: object) -> str:
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


def check_url(url: str) -> str:
    """A PostgreSQL URL as SQLAlchemy takes it (psycopg 3), or InvalidInput."""
    url = url.strip()
    if not url.startswith(_PG_SCHEMES):
        raise InvalidInput(_t("hqdb_bad_url", url=_shown(url)))
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def has_password(url: str) -> bool:
    return sa.engine.make_url(url).password is not None


def _shown(url: str) -> str:
    """A database URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def configured_url() -> str | None:
    """The PostgreSQL URL HQ was set up with, or None for the embedded SQLite file."""
    url = os.environ.get(ENV_VAR) or _setting()
    return check_url(url) if url else None


def _setting() -> str | None:
    from yntymak_cli.config import read_config

    return read_config().get(SETTING)


class HqDb:
    """HQ's database. Open with `with HqDb.open() as db:`."""

    conn: sa.Connection

    def __init__(self, conn: sa.Connection, store: Store | None, url: str | None) -> None:
        self.conn = conn
        self.store = store  # the SQLite Store whose connection this is, or None
        self.url = url
        self._depth = 0
        self._forms: dict[str, Form] = {}

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def open(cls, url: str | None = None) -> HqDb:
        url = check_url(url) if url else configured_url()
        if url is None:
            from yntymak_cli.store.db import Store

            return cls.over_store(Store.open())
        return cls.postgres(url)

    @classmethod
    def at(cls, path: Path | None, url: str | None) -> HqDb:
        """The database `hq serve` opened at start: a SQLite file, or a PostgreSQL URL."""
        if url is not None:
            return cls.postgres(url)
        from yntymak_cli.store.db import Store

        assert path is not None
        return cls.over_store(Store(path))

    @classmethod
    def over_store(cls, store: Store) -> HqDb:
        """HQ on the SQLite file of `store` (its connection, its transactions)."""
        from sqlalchemy.pool import StaticPool

        engine = sa.create_engine(
            "sqlite://",
            creator=lambda: store.conn,
            poolclass=StaticPool,
            isolation_level="AUTOCOMMIT",
        )
        return cls(engine.connect(), store, None)

    @classmethod
    def postgres(cls, url: str) -> HqDb:
        """A connection from this process's pool for `url`; the schema is brought up to
        date the first time the process opens it."""
        engine = _ENGINES.get(url)
        fresh = engine is None
        if engine is None:
            engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        try:
            conn = engine.connect()
        except sa.exc.OperationalError as exc:
            raise YntymakError(
                _t("hqdb_cannot_connect", url=_shown(url), detail=_first_line(exc))
            ) from None
        db = cls(conn, None, url)
        if fresh:
            try:
                db._migrate()
            except BaseException:
                conn.close()
                raise
            _ENGINES[url] = engine
        return db

    def _migrate(self) -> None:
        # One process migrates at a time (an advisory lock for the whole session step).
        with self.write() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7120331)"))
            conn.execute(
                sa.text(
                    "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, "
                    "applied_at TEXT)"
                )
            )
            done = {r[0] for r in conn.execute(sa.text("SELECT name FROM _migrations"))}
            for name, step in hq_schema.PG_MIGRATIONS:
                if name in done:
                    continue
                step(conn)
                conn.execute(
                    sa.text("INSERT INTO _migrations (name, applied_at) VALUES (:n, now())"),
                    {"n": name},
                )

    @property
    def is_postgres(self) -> bool:
        return self.store is None

    def close(self) -> None:
        engine = self.conn.engine
        self.conn.close()  # PostgreSQL: back to the pool
        if self.store is not None:
            engine.dispose()
            self.store.close()

    def __enter__(self) -> HqDb:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transactions -----------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """One write transaction (the lock taken up front); nested ones are SAVEPOINTs."""
        if self.store is not None:
            with self.store.write():
                try:
                    yield self.conn
                except sa.exc.DBAPIError as exc:
                    # The Store names SQLite's own errors (a full disk, a read-only file):
                    # hand it the error SQLAlchemy wrapped.
                    if isinstance(exc.orig, sqlite3.Error):
                        raise exc.orig from None
                    raise
            return
        conn = self.conn
        if self._depth:
            conn.exec_driver_sql("SAVEPOINT nested_write")
            self._depth += 1
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK TO SAVEPOINT nested_write")
                conn.exec_driver_sql("RELEASE SAVEPOINT nested_write")
                raise
            finally:
                self._depth -= 1
            conn.exec_driver_sql("RELEASE SAVEPOINT nested_write")
            return
        conn.exec_driver_sql("BEGIN")
        self._depth = 1
        try:
            yield conn
        except BaseException:
            self._depth = 0
            try:
                conn.exec_driver_sql("ROLLBACK")
            except sa.exc.DBAPIError:
                pass
            raise
        self._depth = 0
        conn.exec_driver_sql("COMMIT")

    # -- what HQ reads (as the laptop Store does) ---------------------------------------

    def form_by_hash(self, form_hash: str) -> Form:
        if form_hash not in self._forms:
            definition = self.conn.execute(
                sa.select(hq_schema.forms.c.definition).where(hq_schema.forms.c.hash == form_hash)
            ).scalar()
            if definition is None:
                raise NotFound(_t("db_no_form_definition", hash=form_hash[:12]))
            from yntymak_cli.forms.loader import form_from_dict

            self._forms[form_hash] = form_from_dict(json.loads(definition))
        return self._forms[form_hash]

    def form_ids(self) -> list[str]:
        f = hq_schema.forms
        return list(
            self.conn.execute(sa.select(f.c.form_id).distinct().order_by(f.c.form_id)).scalars()
        )

    def form_versions(self, form_id: str) -> list[Form]:
        """Every stored definition of a form id, newest version first (natural order)."""
        from yntymak_cli.store.db import _natural

        f = hq_schema.forms
        rows = self.conn.execute(
            sa.select(f.c.hash, f.c.version)
            .where(f.c.form_id == form_id)
            .order_by(f.c.registered_at, f.c.hash)
        ).all()
        ordered = sorted(
            enumerate(rows), key=lambda ir: (_natural(ir[1].version), ir[0]), reverse=True
        )
        return [self.form_by_hash(row.hash) for _, row in ordered]

    def get_submission_row(self, submission_uuid: str) -> dict[str, Any]:
        """A submission by its UUID or a unique prefix of at least 4 characters."""
        from yntymak_cli.store.db import _MIN_PREFIX

        s = hq_schema.submissions
        row = self.conn.execute(sa.select(s).where(s.c.uuid == submission_uuid)).mappings().first()
        if row is not None:
            return dict(row)
        prefix = submission_uuid.lower()
        if len(prefix) >= _MIN_PREFIX and all(c in "0123456789abcdef-" for c in prefix):
            found = (
                self.conn.execute(
                    sa.select(s).where(s.c.uuid.startswith(prefix, autoescape=True)).limit(2)
                )
                .mappings()
                .all()
            )
            if len(found) == 1:
                return dict(found[0])
            if len(found) > 1:
                raise NotFound(_t("db_prefix_ambiguous", prefix=submission_uuid))
        elif prefix and all(c in "0123456789abcdef-" for c in prefix):
            raise NotFound(_t("db_prefix_short", prefix=submission_uuid, n=_MIN_PREFIX))
        raise NotFound(_t("db_no_submission", uuid=submission_uuid))

    # -- export -------------------------------------------------------------------------

    def _export_select(
        self,
        columns: list[Any],
        form_id: str,
        include_void: bool,
        since: str | None,
        review: str | None,
    ) -> sa.Select[Any]:
        from yntymak_cli.store.db import REVIEW_PENDING

        s, r, x = hq_schema.submissions, _RV, _X
        newest = (
            sa.select(sa.func.max(x.c.decision_id))
            .where(x.c.uuid == s.c.uuid, x.c.revision == s.c.revision)
            .scalar_subquery()
        )
        statuses = ["final"] + (["void"] if include_void else [])
        query = (
            sa.select(*columns)
            .select_from(s.outerjoin(r, r.c.decision_id == newest))
            .where(s.c.form_id == form_id, s.c.purged_at.is_(None), s.c.status.in_(statuses))
        )
        if since:
            query = query.where(s.c.submission_time >= since)
        if review == REVIEW_PENDING:
            query = query.where(r.c.decision_id.is_(None))
        elif review:
            query = query.where(r.c.status == review)
        return query

    def count_records(
        self,
        form_id: str,
        *,
        include_drafts: bool = False,
        include_void: bool = False,
        since: str | None = None,
        review: str | None = None,
    ) -> int:
        """How many records iter_records() yields (HQ holds no drafts)."""
        query = self._export_select([sa.func.count()], form_id, include_void, since, review)
        return int(self.conn.execute(query).scalar() or 0)

    def count_purged(self, form_id: str, **_filters: Any) -> int:
        """HQ never purges: nothing is left out for that reason."""
        return 0

    def iter_records(
        self,
        form_id: str,
        *,
        include_drafts: bool = False,
        include_void: bool = False,
        since: str | None = None,
        review: str | None = None,
        include_paradata: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """As Store.iter_records, streamed from the server (flat memory at any size);
        `include_paradata` adds the current revision's `paradata` (JSON text or None)."""
        from yntymak_cli.store.db import export_record

        s, rv = hq_schema.submissions, _RV
        columns = [*s.c, rv.c.status.label("review_status"), rv.c.comment.label("review_comment")]
        if include_paradata:
            columns.append(_current_paradata().label("paradata"))
        query = self._export_select(columns, form_id, include_void, since, review).order_by(
            s.c.submission_time, s.c.uuid
        )
        for row in self.stream(query):
            record = export_record(row)
            if include_paradata:
                record["paradata"] = row["paradata"]
            yield record

    def iter_quality_rows(
        self,
        form_id: str,
        *,
        since: str | None = None,
        uuids: Sequence[str] | None = None,
    ) -> Iterator[Mapping[str, Any]]:
        """For HQ's checks: each final submission of a form (not void, not purged), as its
        current revision: uuid, revision, form_version, form_hash, enumerator, device_id,
        enrolled_district (the district its device was enrolled with), submission_time,
        created_at, answers (JSON text, not decoded), and the timing of the interview
        itself, i.e. of the first revision HQ holds (an edit records only its own sitting:
        timed alone, a two-minute correction would look like a two-minute interview):
        hq_timings' columns as timing_revision, started, ended, active_seconds, sessions,
        seconds, when HQ worked them out at import; else timing_revision is None and
        paradata is that revision's paradata (may be None). Oldest first
        (submission_time, uuid), streamed; `since` as iter_records'; `uuids`: only these
        submissions (a slice of quality_uuids)."""
        s, d, tm = hq_schema.submissions, hq_schema.hq_devices, hq_schema.hq_timings
        first = hq_schema.revisions.alias("first_revision")
        interview = (
            sa.select(first.c.paradata)
            .where(first.c.uuid == s.c.uuid)
            .order_by(first.c.revision)
            .limit(1)
            .scalar_subquery()
        )
        columns = [
            s.c.uuid,
            s.c.revision,
            s.c.form_version,
            s.c.form_hash,
            s.c.enumerator,
            s.c.device_id,
            d.c.district.label("enrolled_district"),
            s.c.submission_time,
            s.c.created_at,
            s.c.answers,
            tm.c.revision.label("timing_revision"),
            tm.c.started,
            tm.c.ended,
            tm.c.active_seconds,
            tm.c.sessions,
            tm.c.seconds,
            # Read only when there is no timing row: paradata is most of a row's bytes.
            sa.case((tm.c.uuid.is_(None), interview), else_=sa.null()).label("paradata"),
        ]
        query = self._quality_select(columns, form_id, since).select_from(
            s.outerjoin(d, d.c.device_id == s.c.device_id).outerjoin(tm, tm.c.uuid == s.c.uuid)
        )
        if uuids is not None:
            query = query.where(s.c.uuid.in_(list(uuids)))  # one expanding bound parameter
        yield from self.stream(query)

    def quality_uuids(self, form_id: str, *, since: str | None = None) -> Iterator[str]:
        """The uuid of each row iter_quality_rows yields, in its order."""
        s = hq_schema.submissions
        for row in self.stream(self._quality_select([s.c.uuid], form_id, since)):
            yield row["uuid"]

    def quality_slices(self, form_id: str, *, since: str | None = None) -> QualitySlices:
        """iter_quality_rows in slices that worker processes read for themselves."""
        path = self.store.path if self.store is not None else None
        return QualitySlices(path, self.url, form_id, since, self)

    def _quality_select(
        self, columns: list[Any], form_id: str, since: str | None
    ) -> sa.Select[Any]:
        s = hq_schema.submissions
        query = (
            sa.select(*columns)
            .where(s.c.form_id == form_id, s.c.status == "final", s.c.purged_at.is_(None))
            .order_by(s.c.submission_time, s.c.uuid)
        )
        return query.where(s.c.submission_time >= since) if since else query

    def stream(self, query: sa.Select[Any]) -> Iterator[Mapping[str, Any]]:
        """The rows of a query by column name, streamed (a server-side cursor on
        PostgreSQL, inside its read transaction): memory stays flat at any size."""
        with self._reading():
            result = self.conn.execute(
                query, execution_options={"stream_results": True, "yield_per": 1000}
            )
            # RowMapping is a Mapping keyed by column name (typed with Any keys).
            yield from cast("Iterator[Mapping[str, Any]]", iter(result.mappings()))

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A read transaction around a streamed query: PostgreSQL's server-side cursors
        live inside one (SQLite reads from its WAL snapshot as it is)."""
        if self.store is not None or self._depth:
            yield
            return
        self.conn.exec_driver_sql("BEGIN READ ONLY")
        try:
            yield
        finally:
            self.conn.exec_driver_sql("COMMIT")


class QualitySlices:
    """A form's rows for HQ's checks as slices of consecutive submissions, for
    quality.checks' worker processes: the parent streams only the uuids, in order, and
    hands out slices of them; each worker opens HQ's database itself (SQLite file or
    PostgreSQL URL) and reads its slices' rows, which so never pass through the parent.

    The slices are fixed by uuid, not by (submission_time, uuid) ranges: an edit imported
    while the checks run moves a submission's time, and a range would then lose it or read
    it twice. Each slice is read in a transaction of its own, so that submission is read
    once, as it stands when its slice is read; one imported meanwhile is not read at all."""

    def __init__(
        self, path: Path | None, url: str | None, form_id: str, since: str | None, db: HqDb
    ) -> None:
        self.path, self.url, self.form_id, self.since = path, url, form_id, since
        self._parent: HqDb | None = db  # for the uuids; rows come over a connection of
        self._db: HqDb | None = None  # their own (a stream inside a stream would end it)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_parent": None, "_db": None}  # connections stay home

    def bounds(self, size: int) -> Iterator[list[str]]:
        """The uuids of each slice of `size` submissions, in order."""
        assert self._parent is not None
        slice_: list[str] = []
        for uuid in self._parent.quality_uuids(self.form_id, since=self.since):
            slice_.append(uuid)
            if len(slice_) == size:
                yield slice_
                slice_ = []
        if slice_:
            yield slice_

    def rows(self, uuids: list[str]) -> Iterator[Mapping[str, Any]]:
        """A slice's rows, in the slice's order (a row whose submission is gone: skipped)."""
        if self._db is None:
            self._db = HqDb.at(self.path, self.url)
        found = {row["uuid"]: row for row in self._db.iter_quality_rows(
            self.form_id, since=self.since, uuids=uuids)}  # fmt: skip
        for uuid in uuids:
            row = found.get(uuid)
            if row is not None:
                yield row


def _current_paradata() -> Any:
    """The paradata of a submission's current revision, as a scalar subquery."""
    s, r = hq_schema.submissions, hq_schema.revisions
    return (
        sa.select(r.c.paradata)
        .where(r.c.uuid == s.c.uuid, r.c.revision == s.c.revision)
        .scalar_subquery()
    )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def default_sqlite_path() -> Path:
    from yntymak_cli.home import db_path

    return db_path()
