"""Local SQLite storage: forms, drafts, submissions and their revisions.

Durability: WAL with synchronous=FULL, so an answer accepted is on disk before the next
prompt; a power cut or `kill -9` loses nothing. Every write is a short BEGIN IMMEDIATE
transaction with a busy timeout: a second terminal waits instead of failing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import shutil
import sqlite3
import stat
import uuid as uuid_mod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, overload

from yntymak_cli.canonical import canonical_text, sha256_hex
from yntymak_cli.errors import InvalidInput, NotFound, YntymakError
from yntymak_cli.forms.model import Form
from yntymak_cli.store.migrations import migrate
from yntymak_cli.store.records import SubmissionRecord, from_row, submission_record

if TYPE_CHECKING:
    import sqlite_utils


def _t(key: str, **params: object) -> str:
    """A message of the store in the language of this command's messages."""
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


BUSY_TIMEOUT_MS = 30_000
_MIN_PREFIX = 4  # characters of a UUID accepted for the whole (drafts and lists show 8)
_SQLITE_FULL = 13  # the result code (sqlite3.SQLITE_FULL exists from Python 3.11 only)
_SQLITE_READONLY = 8
# SQLite gives a new -wal or -shm the mode of the database file: one 0600 file keeps the
# three owner-only, as the keys beside them are.
_DB_MODE = 0o600
_COMPANIONS = ("-wal", "-shm", "-journal")


class DiskFull(YntymakError):
    """The disk (or SQLite's page limit) is full: the transaction was rolled back whole."""


def tables(conn: sqlite3.Connection) -> sqlite_utils.Database:
    """sqlite-utils over this connection: the laptop store's row writes (forms, settings,
    the bundles it made) and schema introspection in tests. (HQ's store speaks SQLite and
    PostgreSQL, so it is written with SQLAlchemy Core instead: store/hq.py.)

    Its writes join the caller's transaction: sqlite-utils 4 nests its atomic() as a
    SAVEPOINT when a transaction is open, so an import stays all or nothing. Constructing
    it runs no SQL (no plugins, no pragma); imported here, so `--help` never loads it.
    """
    import sqlite_utils

    return sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)


def utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _natural(version: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", version))


def _is_readonly(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == _SQLITE_READONLY
    return "readonly database" in str(exc)


def enumerator_problem(name: str) -> str | None:
    """Why `name` cannot be recorded as the enumerator (HQ refuses longer names for ever),
    or None: one rule for --enumerator, `config set enumerator`, the prompt and the store."""
    from yntymak_cli.limits import MAX_NAME_CHARS

    if len(name) > MAX_NAME_CHARS:
        return _t("enumerator_too_long", limit=MAX_NAME_CHARS)
    return None


def check_enumerator(name: str) -> str:
    """`name`, or InvalidInput (exit 2) when it cannot be recorded."""
    problem = enumerator_problem(name)
    if problem is not None:
        raise InvalidInput(problem)
    return name


def disk_full(path: Path) -> bool:
    """The disk holding the database `path` is full (less than 64 KiB free)."""
    try:
        return shutil.disk_usage(path.parent).free < 64 * 1024
    except (OSError, ValueError):
        return False


def _owner_only(path: Path) -> None:
    """Create the database 0600; tighten an existing one and its -wal/-shm to 0600.

    Tightening also makes writable again a -wal/-shm left 0444 by a read-only spell (SQLite
    opens such a database read-only). Only our own files are changed; any failure is left
    for SQLite to report when it opens or writes the file.
    """
    if os.name == "nt":  # no owner/group/other bits to speak of
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _DB_MODE))
    except OSError:
        pass  # it exists, or its folder does not: sqlite3.connect says which
    for name in (path, *(path.with_name(path.name + s) for s in _COMPANIONS)):
        try:
            info = os.stat(name)
            if (
                stat.S_ISREG(info.st_mode)
                and info.st_uid == os.geteuid()
                and stat.S_IMODE(info.st_mode) != _DB_MODE
            ):
                os.chmod(name, _DB_MODE)
        except OSError:
            continue


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        # An integer of more than 4,300 digits (int() refuses it) cannot be stored by
        # this program, but a hand-edited row may hold one: keep its digits as text
        # rather than fail every command that reads the row. Bad JSON still raises.
        return json.loads(text, parse_int=_int_or_digits)


def _int_or_digits(digits: str) -> int | str:
    try:
        return int(digits)
    except ValueError:
        return digits


# The newest review decision on each submission's current revision, as `rv` beside `s`
# (submissions): the export's join, and store/reviews.py's (which imports it from here). An
# index on reviews (uuid, revision, decision_id) makes the subquery one seek.
CURRENT_REVIEW_JOIN = (
    "LEFT JOIN reviews rv ON rv.decision_id = (SELECT MAX(x.decision_id) FROM reviews x "
    "WHERE x.uuid = s.uuid AND x.revision = s.revision)"
)
REVIEW_PENDING = "pending"  # reviews.PENDING: no decision on the current revision


@dataclass
class Draft:
    uuid: str
    form: Form
    form_hash: str
    base_revision: int
    enumerator: str
    device_id: str
    started_at: str
    updated_at: str
    state: dict
    paradata: dict


def export_record(row: Any) -> dict[str, Any]:
    """A row of an export query (a submission with `review_status` and `review_comment`)
    as the record export() takes: the laptop's Store and HQ's HqDb make them alike.

    A SubmissionRecord, handed over as the plain dict export() is typed to take: a cast,
    not a copy, on this hot path."""
    record = from_row(
        row,
        answers=_loads(row["answers"]) or {},
        review_status=row["review_status"],
        review_comment=row["review_comment"],
    )
    return cast("dict[str, Any]", record)


class Store:
    """One SQLite database, opened with `with Store.open() as store:` (YNTYMAK_HOME) or
    `with Store(path) as store:`, so its connection is closed when the block ends."""

    conn: sqlite3.Connection

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        _owner_only(self.path)
        conn: sqlite3.Connection | None = None
        try:
            conn = self.conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
            )
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            migrate(self.conn)
        except BaseException as exc:
            if conn is not None:  # no one else holds it: never left open
                conn.close()
            if not isinstance(exc, sqlite3.DatabaseError):
                raise
            if _is_readonly(exc):
                raise YntymakError(self._readonly_message(exc)) from None
            # With no room even for a new -wal/-shm, SQLite says "disk I/O error" or
            # "unable to open database file": name the real cause.
            detail = _t("os_disk_full") if disk_full(self.path) else exc
            raise YntymakError(_t("db_cannot_open", path=self.path, detail=detail)) from None
        self._forms: dict[str, Form] = {}

    @classmethod
    def open(cls, path: Path | None = None) -> Store:
        from yntymak_cli.home import db_path

        return cls(path or db_path())

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back). Twice is harmless."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction that takes the lock up front (no deadlock on upgrade).

        A write inside a write nests as a SAVEPOINT of the outer transaction, which alone
        commits (sqlite-utils' atomic()): a batch of submissions is saved all or nothing.
        """
        if self.conn.in_transaction:
            self.conn.execute("SAVEPOINT nested_write")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:  # SQLite may have rolled back the whole of it
                    self.conn.execute("ROLLBACK TO nested_write")
                    self.conn.execute("RELEASE nested_write")
                raise
            self.conn.execute("RELEASE nested_write")
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self._rollback()
                raise
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.OperationalError as exc:
            # sqlite_errorcode is Python 3.11+; older ones only have the message.
            code = getattr(exc, "sqlite_errorcode", None)
            if code == _SQLITE_FULL or (code is None and "disk is full" in str(exc)):
                raise DiskFull(_t("db_disk_full", path=self.path, detail=exc)) from None
            if _is_readonly(exc):
                raise YntymakError(self._readonly_message(exc)) from None
            raise

    def _readonly_message(self, exc: sqlite3.Error) -> str:
        """Say which file stops SQLite from writing, and the command that fixes it."""
        candidates = [self.path.parent, self.path]
        candidates += [self.path.with_name(self.path.name + s) for s in _COMPANIONS]
        stuck = [p for p in candidates if p.exists() and not os.access(p, os.W_OK)]
        if not stuck:  # e.g. a read-only file system or medium
            return _t("db_read_only_disk", path=self.path, detail=exc)
        names = " ".join(shlex.quote(str(p)) for p in stuck)
        return _t("db_read_only_files", path=self.path, names=names)

    def _rollback(self) -> None:
        # SQLite rolls a transaction back by itself after some errors (SQLITE_FULL, I/O
        # errors): a second ROLLBACK would fail and hide the real cause.
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    # -- settings ---------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self.write() as conn:
            tables(conn).table("settings").upsert({"key": key, "value": value}, pk="key")

    def delete_setting(self, key: str) -> None:
        with self.write() as conn:
            conn.execute("DELETE FROM settings WHERE key = ?", [key])

    # -- forms ------------------------------------------------------------------------

    def register_form(self, form: Form) -> str:
        """Keep the exact definition of this version; returns its hash. Idempotent.

        Inside a `write()` it joins that transaction (as a savepoint)."""
        definition = form.definition_dict()
        form_hash = form.definition_hash()  # sha256_hex(definition), once per form
        row = {
            "hash": form_hash,
            "form_id": form.id,
            "version": form.version,
            "definition": canonical_text(definition),
            "registered_at": utcnow(),
        }
        with self.write() as conn:
            tables(conn).table("forms").insert(row, ignore=True)
        self._forms[form_hash] = form
        return form_hash

    def form_by_hash(self, form_hash: str) -> Form:
        if form_hash not in self._forms:
            row = self.conn.execute(
                "SELECT definition FROM forms WHERE hash = ?", [form_hash]
            ).fetchone()
            if row is None:
                raise NotFound(_t("db_no_form_definition", hash=form_hash[:12]))
            from yntymak_cli.forms.loader import form_from_dict

            self._forms[form_hash] = form_from_dict(json.loads(row[0]))
        return self._forms[form_hash]

    def get_form(self, form_id: str, version: str | None = None) -> Form | None:
        """The newest version of a form id (or that version, as last registered)."""
        if version is None:
            versions = self.form_versions(form_id)
            return versions[0] if versions else None
        form_hash = self.form_hash(form_id, version)
        return self.form_by_hash(form_hash) if form_hash else None

    def form_hash(self, form_id: str, version: str) -> str | None:
        """The definition hash of that version as last registered (without rebuilding it)."""
        row = self.conn.execute(
            "SELECT hash FROM forms WHERE form_id = ? AND version = ? "
            "ORDER BY registered_at DESC, rowid DESC LIMIT 1",
            [form_id, version],
        ).fetchone()
        return row[0] if row else None

    def form_ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT form_id FROM forms ORDER BY 1")]

    def form_versions(self, form_id: str) -> list[Form]:
        """Every stored definition of a form id, newest version first.

        Versions are compared naturally ("2026-11-01" > "2026-10-01", "v10" > "v9"), not by
        when they reached this database: at HQ bundles arrive in any order.
        """
        rows = self.conn.execute(
            "SELECT hash, version FROM forms WHERE form_id = ? ORDER BY registered_at, rowid",
            [form_id],
        ).fetchall()
        ordered = sorted(
            enumerate(rows), key=lambda ir: (_natural(ir[1]["version"]), ir[0]), reverse=True
        )
        return [self.form_by_hash(row["hash"]) for _, row in ordered]

    def form_definitions(self, hashes: list[str]) -> list[dict]:
        out = []
        for form_hash in hashes:
            row = self.conn.execute(
                "SELECT definition FROM forms WHERE hash = ?", [form_hash]
            ).fetchone()
            if row:
                out.append(json.loads(row[0]))
        return out

    # -- drafts -----------------------------------------------------------------------

    def create_draft(
        self, form: Form, state: dict, enumerator: str, device_id: str, paradata: dict
    ) -> str:
        check_enumerator(enumerator)
        new_uuid = str(uuid_mod.uuid4())
        now = utcnow()
        with self.write() as conn:
            form_hash = self.register_form(form)  # a savepoint of this transaction
            conn.execute(
                "INSERT INTO drafts (uuid, form_hash, base_revision, enumerator, device_id, "
                "started_at, updated_at, state, paradata) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?)",
                [
                    new_uuid,
                    form_hash,
                    enumerator,
                    device_id,
                    now,
                    now,
                    canonical_text(state),
                    canonical_text(paradata),
                ],
            )
        return new_uuid

    def open_edit(
        self, submission_uuid: str, state: dict, enumerator: str, device_id: str, paradata: dict
    ) -> Draft:
        """Reopen a finalised submission as a draft of its next revision (or resume that draft)."""
        existing = self.get_draft(submission_uuid, missing_ok=True)
        if existing is not None:
            return existing
        sub = self.get_submission_row(submission_uuid)
        if sub["status"] == "void":
            raise InvalidInput(_t("db_void_not_editable", uuid=submission_uuid))
        if sub["answers"] is None and sub["purged_at"]:
            raise InvalidInput(_t("db_purged_not_editable", uuid=submission_uuid))
        now = utcnow()
        with self.write() as conn:
            conn.execute(
                "INSERT INTO drafts (uuid, form_hash, base_revision, enumerator, device_id, "
                "started_at, updated_at, state, paradata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    submission_uuid,
                    sub["form_hash"],
                    sub["revision"],
                    enumerator,
                    device_id,
                    now,
                    now,
                    canonical_text(state),
                    canonical_text(paradata),
                ],
            )
        return self.get_draft(submission_uuid)

    def save_draft(self, draft_uuid: str, state: dict, paradata: dict) -> None:
        """Autosave: called after every accepted answer."""
        with self.write() as conn:
            cur = conn.execute(
                "UPDATE drafts SET state = ?, paradata = ?, updated_at = ? WHERE uuid = ?",
                [canonical_text(state), canonical_text(paradata), utcnow(), draft_uuid],
            )
            if cur.rowcount != 1:
                raise NotFound(_t("db_no_draft", uuid=draft_uuid))

    @overload
    def get_draft(self, draft_uuid: str, missing_ok: Literal[False] = ...) -> Draft: ...
    @overload
    def get_draft(self, draft_uuid: str, missing_ok: bool) -> Draft | None: ...
    def get_draft(self, draft_uuid: str, missing_ok: bool = False) -> Draft | None:
        row = self.conn.execute("SELECT * FROM drafts WHERE uuid = ?", [draft_uuid]).fetchone()
        if row is None:
            row = self._unique_prefix("drafts", draft_uuid)
        if row is None:
            if missing_ok:
                return None
            final = self.conn.execute(
                "SELECT uuid FROM submissions WHERE uuid = ?", [draft_uuid]
            ).fetchone() or self._unique_prefix("submissions", draft_uuid)
            if final is not None:
                raise NotFound(_t("db_final_not_draft", uuid=final["uuid"]))
            why = self._prefix_problem("drafts", draft_uuid)
            raise NotFound(why or _t("db_no_draft_see", uuid=draft_uuid))
        return Draft(
            uuid=row["uuid"],
            form=self.form_by_hash(row["form_hash"]),
            form_hash=row["form_hash"],
            base_revision=row["base_revision"],
            enumerator=row["enumerator"],
            device_id=row["device_id"],
            started_at=row["started_at"],
            updated_at=row["updated_at"],
            state=json.loads(row["state"]),
            paradata=json.loads(row["paradata"]),
        )

    def list_drafts(self) -> list[dict]:
        rows = self.conn.execute(
            "SELECT d.uuid, f.form_id, f.version AS form_version, d.base_revision, d.enumerator, "
            "d.started_at, d.updated_at FROM drafts d JOIN forms f ON f.hash = d.form_hash "
            "ORDER BY d.updated_at DESC"
        ).fetchall()
        return [dict(r) for r in rows]

    def discard_draft(self, draft_uuid: str) -> None:
        with self.write() as conn:
            conn.execute("DELETE FROM drafts WHERE uuid = ?", [draft_uuid])

    def finalise(self, draft: Draft, answers: dict, instance_name: str | None) -> int:
        """Store the draft's answers as the submission's next revision. Returns the revision."""
        now = utcnow()
        with self.write() as conn:
            row = conn.execute(
                "SELECT revision, status, created_at FROM submissions WHERE uuid = ?",
                [draft.uuid],
            ).fetchone()
            revision = (row["revision"] if row else 0) + 1
            record = {
                "uuid": draft.uuid,
                "revision": revision,
                "form_hash": draft.form_hash,
                "answers": answers,
            }
            rev_hash = sha256_hex(record)
            answers_json = canonical_text(answers)
            if row is None:
                conn.execute(
                    "INSERT INTO submissions (uuid, form_id, form_version, form_hash, status, "
                    "revision, enumerator, device_id, created_at, updated_at, submission_time, "
                    "instance_name, answers) VALUES (?, ?, ?, ?, 'final', ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        draft.uuid,
                        draft.form.id,
                        draft.form.version,
                        draft.form_hash,
                        revision,
                        draft.enumerator,
                        draft.device_id,
                        draft.started_at,
                        now,
                        now,
                        instance_name,
                        answers_json,
                    ],
                )
            else:
                # The new revision's answers are here in clear again: no longer purged (an
                # edit opened before a purge), so export shows it and purge erases it once
                # HQ acknowledges it.
                conn.execute(
                    "UPDATE submissions SET revision = ?, form_id = ?, form_version = ?, "
                    "form_hash = ?, enumerator = ?, device_id = ?, updated_at = ?, "
                    "submission_time = ?, instance_name = ?, answers = ?, purged_at = NULL "
                    "WHERE uuid = ?",
                    [
                        revision,
                        draft.form.id,
                        draft.form.version,
                        draft.form_hash,
                        draft.enumerator,
                        draft.device_id,
                        now,
                        now,
                        instance_name,
                        answers_json,
                        draft.uuid,
                    ],
                )
            conn.execute(
                "INSERT INTO revisions (uuid, revision, form_hash, submission_time, enumerator, "
                "device_id, instance_name, answers, paradata, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    draft.uuid,
                    revision,
                    draft.form_hash,
                    now,
                    draft.enumerator,
                    draft.device_id,
                    instance_name,
                    answers_json,
                    canonical_text(draft.paradata),
                    rev_hash,
                ],
            )
            conn.execute("DELETE FROM drafts WHERE uuid = ?", [draft.uuid])
        return revision

    # -- submissions ------------------------------------------------------------------

    def _unique_prefix(self, table: str, prefix: str) -> sqlite3.Row | None:
        """Let people type the first characters of a UUID, as with git hashes."""
        rows = self._by_prefix(table, prefix)
        return rows[0] if len(rows) == 1 else None

    def _by_prefix(self, table: str, prefix: str) -> list[sqlite3.Row]:
        """Up to two rows whose UUID starts with `prefix` (none for a too-short prefix)."""
        if len(prefix) < _MIN_PREFIX or table not in ("drafts", "submissions"):
            return []
        return self.conn.execute(
            f"SELECT * FROM {table} WHERE uuid LIKE ? ESCAPE '\\' LIMIT 2",  # noqa: S608
            [prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"],
        ).fetchall()

    def _prefix_problem(self, table: str, prefix: str) -> str | None:
        """Why a short UUID named nothing: too short, or the start of several (else None)."""
        if not prefix or not all(c in "0123456789abcdef-" for c in prefix.lower()):
            return None
        if len(prefix) < _MIN_PREFIX:
            return _t("db_prefix_short", prefix=prefix, n=_MIN_PREFIX)
        if len(self._by_prefix(table, prefix)) > 1:
            return _t("db_prefix_ambiguous", prefix=prefix)
        return None

    def get_submission_row(self, submission_uuid: str) -> sqlite3.Row:
        row = self.conn.execute(
            "SELECT * FROM submissions WHERE uuid = ?", [submission_uuid]
        ).fetchone() or self._unique_prefix("submissions", submission_uuid)
        if row is None:
            why = self._prefix_problem("submissions", submission_uuid)
            raise NotFound(why or _t("db_no_submission", uuid=submission_uuid))
        return row

    def void(self, submission_uuid: str, reason: str) -> None:
        if not reason.strip():
            raise InvalidInput(_t("db_void_needs_reason", option="--reason"))
        row = self.get_submission_row(submission_uuid)
        if row["status"] == "void":
            raise InvalidInput(_t("db_already_void", uuid=row["uuid"]))
        now = utcnow()
        with self.write() as conn:
            conn.execute(
                "UPDATE submissions SET status = 'void', void_reason = ?, voided_at = ?, "
                "updated_at = ?, void_synced = 0 WHERE uuid = ?",
                [reason, now, now, row["uuid"]],
            )

    def record(self, row: sqlite3.Row) -> SubmissionRecord:
        """A submission row as the record shape of docs/design.md."""
        return from_row(row, answers=_loads(row["answers"]) or {})

    @staticmethod
    def draft_record(draft: Draft) -> SubmissionRecord:
        """A draft in the record shape (status 'draft', answers so far)."""
        return submission_record(
            uuid=draft.uuid,
            revision=draft.base_revision,
            form_id=draft.form.id,
            form_version=draft.form.version,
            form_hash=draft.form_hash,
            status="draft",
            created_at=draft.started_at,
            updated_at=draft.updated_at,
            submission_time=None,
            enumerator=draft.enumerator,
            device_id=draft.device_id,
            instance_name=None,
            void_reason=None,
            answers=draft.state.get("answers", {}),
            purged_at=None,
        )

    def get_record(self, submission_uuid: str) -> SubmissionRecord:
        return self.record(self.get_submission_row(submission_uuid))

    def hq_refusals(self) -> dict[str, str]:
        """uuid -> HQ's reason, for submissions whose latest revision (or void) HQ refused:
        the laptop no longer sends them, and the volunteer must see why."""
        rows = self.conn.execute(
            "SELECT s.uuid, COALESCE(s.void_refused_reason, r.refused_reason) AS reason"
            " FROM submissions s LEFT JOIN revisions r"
            " ON r.uuid = s.uuid AND r.revision = s.revision"
            " WHERE r.refused_at IS NOT NULL OR s.void_refused_at IS NOT NULL"
        )
        return {row["uuid"]: row["reason"] or "" for row in rows}

    def list_records(
        self, form_id: str | None = None, status: str | None = None
    ) -> list[SubmissionRecord]:
        """Submissions and drafts for `submissions list` (drafts appear with status 'draft')."""
        out: list[SubmissionRecord] = []
        if status in (None, "final", "void"):
            sql = "SELECT * FROM submissions WHERE 1 = 1"
            params: list[Any] = []
            if form_id:
                sql += " AND form_id = ?"
                params.append(form_id)
            if status:
                sql += " AND status = ?"
                params.append(status)
            out.extend(
                self.record(r) for r in self.conn.execute(sql + " ORDER BY created_at", params)
            )
        if status in (None, "draft"):
            for d in self.list_drafts():
                if form_id and d["form_id"] != form_id:
                    continue
                draft = self.get_draft(d["uuid"])
                assert draft is not None
                out.append(self.draft_record(draft))
        return out

    def _export_query(
        self,
        columns: str,
        form_id: str,
        include_void: bool,
        since: str | None,
        purged: bool = False,
        review: str | None = None,
        joined: bool = False,
    ) -> tuple[str, list[Any]]:
        """The export's SELECT over `submissions s`; `review` (approved, rejected, on_hold
        or pending) keeps the submissions whose current revision has that review status,
        and the review join (`rv`, the deciding decision) is there with it or `joined`."""
        # Purged submissions keep only ids and metadata on a laptop: nothing to export
        # (`purged=True` selects them instead, to be counted apart).
        statuses = ["final"] + (["void"] if include_void else [])
        join = f" {CURRENT_REVIEW_JOIN}" if review or joined else ""
        sql = (
            f"SELECT {columns} FROM submissions s{join} WHERE s.form_id = ? "
            f"AND s.purged_at IS {'NOT NULL' if purged else 'NULL'} "
            f"AND s.status IN ({', '.join('?' for _ in statuses)})"
        )
        params: list[Any] = [form_id, *statuses]
        if since:
            sql += " AND s.submission_time >= ?"
            params.append(since)
        if review == REVIEW_PENDING:
            sql += " AND rv.decision_id IS NULL"
        elif review:
            sql += " AND rv.status = ?"
            params.append(review)
        return sql, params

    def count_records(
        self,
        form_id: str,
        *,
        include_drafts: bool = False,
        include_void: bool = False,
        since: str | None = None,
        review: str | None = None,
    ) -> int:
        """How many records iter_records() will yield (for a progress bar)."""
        sql, params = self._export_query("count(*)", form_id, include_void, since, review=review)
        count = self.conn.execute(sql, params).fetchone()[0]
        if include_drafts and not review:
            count += sum(
                1 for d in self.list_drafts() if d["form_id"] == form_id and not d["base_revision"]
            )
        return count

    def count_purged(
        self,
        form_id: str,
        *,
        include_void: bool = False,
        since: str | None = None,
        review: str | None = None,
    ) -> int:
        """Submissions an export with these filters leaves out because purge erased them."""
        sql, params = self._export_query(
            "count(*)", form_id, include_void, since, purged=True, review=review
        )
        return self.conn.execute(sql, params).fetchone()[0]

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
        """Latest revision of each submission of a form, oldest first, streamed for export,
        each with its review status and comment (HQ's decision on that revision, None while
        pending). `review` keeps one review status (approved, rejected, on_hold, pending);
        drafts, which have none, are left out then. `include_paradata` adds `paradata`: the
        current revision's paradata as stored (JSON text, None once purged; None on drafts).

        Each is a SubmissionRecord, handed over as the plain dict export() is typed to take:
        a cast, not a copy, on this hot path."""
        columns = "s.*, rv.status AS review_status, rv.comment AS review_comment"
        if include_paradata:
            columns += (
                ", (SELECT r.paradata FROM revisions r"
                " WHERE r.uuid = s.uuid AND r.revision = s.revision) AS paradata"
            )
        sql, params = self._export_query(
            columns, form_id, include_void, since, review=review, joined=True
        )
        for row in self.conn.execute(sql + " ORDER BY s.submission_time, s.uuid", params):
            exported = export_record(row)
            if include_paradata:
                exported["paradata"] = row["paradata"]
            yield exported
        if include_drafts and not review:
            # Surveys never finalised; an edit in progress is not a second row of its
            # submission (the finalised revision above stands until the edit is saved).
            for record in self.list_records(form_id, "draft"):
                if not record["revision"]:
                    draft = cast("dict[str, Any]", record)
                    if include_paradata:
                        draft["paradata"] = None  # a survey not finalised has no revision
                    yield draft

    def revision_paradata(self, submission_uuid: str, revision: int) -> dict | None:
        row = self.conn.execute(
            "SELECT paradata FROM revisions WHERE uuid = ? AND revision = ?",
            [submission_uuid, revision],
        ).fetchone()
        return _loads(row[0]) if row else None

    def revision_answers(self, submission_uuid: str) -> dict[int, dict | None]:
        """Each revision's answers (None once erased), for `submissions show`'s history."""
        rows = self.conn.execute(
            "SELECT revision, answers FROM revisions WHERE uuid = ? ORDER BY revision",
            [submission_uuid],
        ).fetchall()
        return {r[0]: _loads(r[1]) for r in rows}

    def revisions(self, submission_uuid: str) -> list[dict]:
        rows = self.conn.execute(
            "SELECT uuid, revision, form_hash, submission_time, enumerator, device_id, hash "
            "FROM revisions WHERE uuid = ? ORDER BY revision",
            [submission_uuid],
        ).fetchall()
        return [dict(r) for r in rows]
