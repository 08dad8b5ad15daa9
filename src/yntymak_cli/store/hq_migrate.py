"""`yntymak hq migrate --to URL`: move an HQ's SQLite file into an empty PostgreSQL database.

Every table of hq_schema.HQ_TABLES is copied in one PostgreSQL transaction, streamed in
batches (a SQLite cursor read in chunks, inserted with executemany), so memory stays flat
at a million submissions. Before the transaction commits, each table is counted and hashed
on both sides and must agree; otherwise it is rolled back and the target stays empty.

The SQLite file is opened read-only (`mode=ro`, `query_only`): never migrated, never
written. The copy reads one snapshot of it; a write committed by another process meanwhile
(`hq serve`, an import) is noticed through `PRAGMA data_version` and the copy refused.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from yntymak_cli.canonical import canonical_bytes
from yntymak_cli.errors import InvalidInput, YntymakError
from yntymak_cli.store import hq_schema
from yntymak_cli.store.hqdb import HqDb, _first_line, check_url

BATCH_ROWS = 2000  # rows per fetch from SQLite and per executemany into PostgreSQL


def _t(key: str, **params: object) -> str:
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


@dataclass(frozen=True)
class TableCopy:
    """One table as copied: its row count and content hash, equal on both sides."""

    table: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class MigrateResult:
    source: Path  # HQ's SQLite file, unchanged
    target: str  # the database URL without its password (what `config set hq_db` takes)
    tables: tuple[TableCopy, ...]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def without_password(url: str) -> str:
    parsed = sa.engine.make_url(url)
    if parsed.password is None:
        return url  # as given (render_as_string would %-encode a socket folder)
    return parsed.set(password=None).render_as_string(hide_password=False)


def migrate_to_postgres(url: str, path: Path) -> MigrateResult:
    """Copy HQ's tables from the SQLite file `path` into the empty PostgreSQL database at
    `url` (whether `path` belongs to an HQ home is the caller's question).

    InvalidInput (exit 2) when `url` is not PostgreSQL, the file is older than this program
    or the target already holds HQ data; YntymakError when the file cannot be read, or the
    copy fails or does not verify (nothing is kept in the target then)."""
    url = check_url(url)
    source = _open_read_only(path)
    try:
        try:
            src = source.connect()
        except sa.exc.DBAPIError as exc:
            raise YntymakError(_t("db_cannot_open", path=path, detail=_first_line(exc))) from None
        _check_schema(src, path)
        with HqDb.postgres(url) as target:
            tables = _copy_all(src, target, path, url)
    finally:
        source.dispose()
    return MigrateResult(path, without_password(url), tables)


def _open_read_only(path: Path) -> sa.Engine:
    from sqlalchemy.pool import StaticPool

    uri = path.resolve().as_uri() + "?mode=ro"

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        conn.execute("PRAGMA query_only = ON")  # a second lock on the door
        return conn

    return sa.create_engine(
        "sqlite://", creator=connect, poolclass=StaticPool, isolation_level="AUTOCOMMIT"
    )


def _check_schema(src: sa.Connection, path: Path) -> None:
    """The file must hold every SQLite migration this program knows: it is not migrated
    here (read-only), and a missing column would fail halfway."""
    from yntymak_cli.store.migrations import MIGRATIONS

    try:
        done = set(src.exec_driver_sql("SELECT name FROM _migrations").scalars())
    except sa.exc.DBAPIError as exc:
        raise YntymakError(_t("db_cannot_open", path=path, detail=_first_line(exc))) from None
    if any(name not in done for name, _ in MIGRATIONS):
        raise InvalidInput(_t("hq_migrate_old_file", path=path))


def _copy_all(src: sa.Connection, target: HqDb, path: Path, url: str) -> tuple[TableCopy, ...]:
    shown = without_password(url)
    version = src.exec_driver_sql("PRAGMA data_version").scalar()
    with target.write() as dst:
        # Writers wait until the copy commits or rolls back; readers do not.
        names = ", ".join(t.name for t in hq_schema.HQ_TABLES)  # our own table names
        dst.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")
        for table in hq_schema.HQ_TABLES:
            if dst.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first():
                raise InvalidInput(_t("hq_migrate_not_empty", url=shown, table=table.name))
        copies = []
        src.exec_driver_sql("BEGIN")  # one snapshot of the file for the copy and the check
        try:
            for table in hq_schema.HQ_TABLES:
                try:
                    copied = _copy(src, dst, table)
                    copies.append(_verify(src, dst, table, copied, shown))
                except sa.exc.DBAPIError as exc:
                    detail = _first_line(exc)
                    message = _t("hq_migrate_failed", table=table.name, url=shown, detail=detail)
                    raise YntymakError(message) from None
        finally:
            src.exec_driver_sql("COMMIT")  # ends the read; nothing was written
        # Submissions came with their ids: new ones continue after them.
        hq_schema.continue_submission_ids(dst)
        if src.exec_driver_sql("PRAGMA data_version").scalar() != version:
            raise YntymakError(_t("hq_migrate_source_changed", path=path, url=shown))
    return tuple(copies)


def _copy(src: sa.Connection, dst: sa.Connection, table: sa.Table) -> int:
    result = src.execute(_ordered(src, table), execution_options={"yield_per": BATCH_ROWS})
    copied = 0
    for part in result.partitions():
        _insert(dst, table, [row._asdict() for row in part])
        copied += len(part)
    return copied


def _insert(dst: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    dst.execute(table.insert(), rows)


def _verify(
    src: sa.Connection, dst: sa.Connection, table: sa.Table, copied: int, shown: str
) -> TableCopy:
    """Count and hash the table on both sides (the target inside the open transaction)."""
    counted = int(dst.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)
    src_rows, src_hash = table_hash(src, table)
    dst_rows, dst_hash = table_hash(dst, table)
    if not copied == counted == src_rows == dst_rows:
        what = f"{src_rows} != {dst_rows}" if src_rows != dst_rows else f"{copied} != {counted}"
        raise YntymakError(_t("hq_migrate_mismatch", table=table.name, what=what, url=shown))
    if src_hash != dst_hash:
        what = f"sha256 {src_hash[:16]} != {dst_hash[:16]}"
        raise YntymakError(_t("hq_migrate_mismatch", table=table.name, what=what, url=shown))
    return TableCopy(table.name, src_rows, src_hash)


def table_hash(conn: sa.Connection, table: sa.Table) -> tuple[int, str]:
    """(rows, sha256 hex) of a table on either engine: the canonical JSON of each row (a
    list of its values in column order; bytes as hex, None as null), one per line, in
    primary-key order. Equal data gives equal hashes on SQLite and PostgreSQL."""
    digest = hashlib.sha256()
    rows = 0
    # Options of this statement only (Connection.execution_options would keep them).
    options = {"stream_results": True, "yield_per": BATCH_ROWS}
    result = conn.execute(_ordered(conn, table), execution_options=options)
    for part in result.partitions():
        for row in part:
            digest.update(canonical_bytes([_plain(v) for v in row]) + b"\n")
            rows += 1
    return rows, digest.hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def _ordered(conn: sa.Connection, table: sa.Table) -> sa.Select[Any]:
    """The table in primary-key order, text compared byte by byte on both engines (SQLite's
    BINARY; PostgreSQL's "C", whatever the database's own collation)."""
    keys: list[Any] = list(table.primary_key.columns)
    if conn.dialect.name == "postgresql":
        keys = [sa.collate(c, "C") if isinstance(c.type, sa.Text) else c for c in keys]
    return sa.select(table).order_by(*keys)
