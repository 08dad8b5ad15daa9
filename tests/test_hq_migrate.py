"""`yntymak hq migrate --to URL` (issue 17): an HQ's SQLite file moved into PostgreSQL.

A real SQLite HQ is built through the CLI (two laptops, a refused record, a void, an edit,
review decisions, receipts), moved into a real PostgreSQL server, and compared table by
table and through HQ's own commands. Refusals and a failure midway leave the target as it
was; the SQLite file is never changed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image

from yntymak_cli.store import hq_migrate, hq_schema

from .helpers import Field, collect_in, device_id, relabelled_form, write_answers, yn

# Only the SQLite run of `field`: its HQ is the source of every migration here.
sqlite_field = pytest.mark.parametrize("hq_backend", ["sqlite"], indirect=True)
COMMENT = "Жашы анкета менен дал келбейт: тактаңыз (Q2)"


@pytest.fixture
def hq(field: Field, tmp_path: Path) -> Field:
    """The field's SQLite HQ with something in every table."""
    f = field
    ua1 = collect_in(f.a, f.tmp, "Кара-Суу")
    ua2 = collect_in(f.a, f.tmp, "Ош")
    ub1 = collect_in(f.b, f.tmp, "Ат-Башы")
    first = [f.bundle(f.a), f.bundle(f.b)]
    f.import_(*first)
    for home, bundle in zip((f.a, f.b), first, strict=True):
        yn(home, "bundle", "ack", f.receipt(bundle))

    yn(f.hq, "hq", "review", "reject", ua1, "--comment", COMMENT, "--reviewer", "Nurlan")
    yn(f.hq, "hq", "review", "approve", ub1, "--reviewer", "Nurlan")
    yn(f.hq, "hq", "receipt", device_id(f.a), "-o", f.receipts)  # the rejection, delivered
    (decisions,) = f.receipts.glob(f"{device_id(f.a)}-decisions-*.ykr")
    yn(f.a, "bundle", "ack", decisions)

    fix = tmp_path / "fix.yaml"
    fix.write_text("age: 43\n", encoding="utf-8")
    yn(f.a, "submissions", "edit", ua1, "--answers", fix)  # revision 2
    yn(f.a, "submissions", "void", ua2, "--reason", "эки жолу жазылган")
    f.import_(f.bundle(f.a))
    yn(f.hq, "hq", "review", "approve", ua1, "--comment", "Рахмат", "--reviewer", "Nurlan")

    # Laptop B's form of the same id and version with other labels: refused at HQ.
    answers = write_answers(f.tmp / "answers-relabelled.yaml", "Нарын")
    yn(f.b, "collect", relabelled_form(f.tmp), "--answers", answers, "--enumerator", "bakyt")
    f.import_(f.bundle(f.b), code=2)
    targets = f.tmp / "targets.csv"
    targets.write_text("district,target\nkara_suu,4\nat_bashy,2\n", encoding="utf-8")
    yn(f.hq, "hq", "targets", "set", "village_safety", "--file", targets)

    # A photo, so that hq_media has a row (its file stays in HQ's home: not moved).
    form = f.tmp / "photo.yaml"
    form.write_text(
        'id: photo_visit\nversion: "1"\ntitle: Photo\nquestions:\n'
        "  - {name: photo, type: image, label: Photo}\n",
        encoding="utf-8",
    )
    Image.new("RGB", (8, 8), (0, 90, 0)).save(f.tmp / "p.png", "PNG")
    (f.tmp / "photo.yaml.answers.yaml").write_text("photo: p.png\n", encoding="utf-8")
    yn(f.a, "collect", form, "--answers", f.tmp / "photo.yaml.answers.yaml", "--enumerator", "A")
    f.import_(f.bundle(f.a))
    return f


def _sqlite_rows(path: Path, table: sa.Table) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        cols = ", ".join(c.name for c in table.columns)
        return sorted(conn.execute(f"SELECT {cols} FROM {table.name}"), key=repr)
    finally:
        conn.close()


def _pg_rows(url: str, table: sa.Table) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted((tuple(r) for r in conn.execute(sa.select(table))), key=repr)
    finally:
        engine.dispose()


def _pg_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in hq_schema.HQ_TABLES
            }
    finally:
        engine.dispose()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _views(f: Field, tmp: Path, env: dict[str, str] | None) -> dict[str, Any]:
    """What HQ staff see: status, the review list and a full export."""
    out = tmp / f"export-{'pg' if env else 'sqlite'}.jsonl"
    yn(f.hq, "hq", "export", "village_safety", "-o", out, "--include-void", env=env)
    return {
        "status": json.loads(yn(f.hq, "hq", "status", "--json", env=env)),
        "review": json.loads(yn(f.hq, "hq", "review", "list", "--json", env=env)),
        "export": out.read_text(encoding="utf-8"),
    }


@pytest.mark.slow
@sqlite_field
def test_every_table_arrives_verified_and_hq_sees_the_same(
    hq: Field, pg_server: Any, tmp_path: Path
) -> None:
    source = hq.hq / "yntymak.db"
    before = _digest(source)
    sqlite_views = _views(hq, tmp_path, None)
    url = pg_server.new_database()

    out = yn(hq.hq, "hq", "migrate", "--to", url)

    assert _digest(source) == before  # only read
    for table in hq_schema.HQ_TABLES:
        expected = _sqlite_rows(source, table)
        assert _pg_rows(url, table) == expected, table.name
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            n, digest = hq_migrate.table_hash(conn, table)
        engine.dispose()
        assert f"  {table.name}: {len(expected)} row(s), sha256 {digest[:16]}…" in out
        assert n == len(expected)
    counts = _pg_counts(url)
    # The scenario reached every table but settings (HQ keeps none of its own).
    assert all(counts[t.name] for t in hq_schema.HQ_TABLES if t.name != "settings"), counts
    assert counts["hq_refused"] == 1
    assert f"Moved HQ's {sum(counts.values())} row(s) from {source}" in out
    assert "counts and content hashes of all 12 tables agree" in out
    assert "run `yntymak config set hq_db postgresql+psycopg://postgres@/" in out
    (revision_2,) = [r for r in _pg_rows(url, hq_schema.revisions) if r[1] == 2]
    assert json.loads(revision_2[7])["age"] == 43
    assert {r[4] for r in _pg_rows(url, hq_schema.submissions)} == {"final", "void"}

    # HQ's commands, pointed at PostgreSQL, see exactly what they saw on SQLite.
    assert _views(hq, tmp_path, {"YNTYMAK_HQ_DB": url}) == sqlite_views
    assert _digest(source) == before


@pytest.mark.slow
@sqlite_field
def test_switch_then_a_second_migration_is_refused_and_changes_nothing(
    hq: Field, pg_server: Any, tmp_path: Path
) -> None:
    source = hq.hq / "yntymak.db"
    sqlite_views = _views(hq, tmp_path, None)
    url = pg_server.new_database()
    out = yn(hq.hq, "hq", "migrate", "--to", url, "--switch")
    assert "HQ commands use postgresql+psycopg://postgres@/" in out
    assert json.loads((hq.hq / "config.json").read_text())["hq_db"] == url
    assert _views(hq, tmp_path, None) == sqlite_views  # no env: the setting chose PostgreSQL
    # Submissions came with their ids (exports' _id); a new one goes on after them.
    ids = [r[-1] for r in _pg_rows(url, hq_schema.submissions)]
    later = collect_in(hq.b, hq.tmp, "Нарын")
    hq.import_(hq.bundle(hq.b), code=2)  # with the relabelled one, refused again
    new_ids = {r[0]: r[-1] for r in _pg_rows(url, hq_schema.submissions)}
    assert new_ids[later] == max(ids) + 1 and len(set(new_ids.values())) == len(new_ids)

    counts, before = _pg_counts(url), _digest(source)
    out = yn(hq.hq, "hq", "migrate", "--to", url, code=2)
    assert "already holds HQ data (table " in out and "nothing was copied" in out
    assert len(out.strip().splitlines()) == 1
    assert _pg_counts(url) == counts and _digest(source) == before


@pytest.mark.slow
@sqlite_field
def test_a_failure_midway_leaves_the_target_empty(
    hq: Field, pg_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pg_server.new_database()
    insert, calls = hq_migrate._insert, []

    def failing(dst: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        calls.append(table.name)
        if table.name == "hq_bundles":  # forms, submissions, revisions, devices went in
            raise sa.exc.OperationalError("INSERT", {}, Exception("server closed the line"))
        insert(dst, table, rows)

    monkeypatch.setattr(hq_migrate, "BATCH_ROWS", 2)  # several batches per table
    monkeypatch.setattr(hq_migrate, "_insert", failing)
    out = yn(hq.hq, "hq", "migrate", "--to", url, code=1)
    assert "copying table hq_bundles into" in out and "server closed the line" in out
    assert "nothing was kept there" in out
    assert calls.count("submissions") >= 2 and "hq_devices" in calls
    assert set(_pg_counts(url).values()) == {0}

    # A write to the SQLite file during the copy: refused, nothing kept.
    def writing(dst: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if not calls.count("late"):
            calls.append("late")
            other = sqlite3.connect(hq.hq / "yntymak.db", isolation_level=None)
            other.execute("INSERT INTO settings (key, value) VALUES ('late', 'x')")
            other.close()
        insert(dst, table, rows)

    monkeypatch.setattr(hq_migrate, "_insert", writing)
    out = yn(hq.hq, "hq", "migrate", "--to", url, code=1)
    assert "changed during the copy" in out
    assert set(_pg_counts(url).values()) == {0}

    # A value changed on its way (as a lossy type would): the hashes disagree, nothing kept.
    def altering(dst: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if table.name == "reviews":
            rows = [{**rows[0], "comment": "?"}, *rows[1:]]
        insert(dst, table, rows)

    monkeypatch.setattr(hq_migrate, "_insert", altering)
    out = yn(hq.hq, "hq", "migrate", "--to", url, code=1)
    assert "the copy of table reviews does not match the SQLite file (sha256 " in out
    assert set(_pg_counts(url).values()) == {0}

    monkeypatch.setattr(hq_migrate, "_insert", insert)  # the cause gone, it goes through
    assert "agree" in yn(hq.hq, "hq", "migrate", "--to", url)


@pytest.mark.parametrize(
    "url", ["sqlite:///hq.db", "mysql://hq@db/hq", "https://hq.example.org", "hq.db"]
)
def test_a_target_that_is_not_postgresql_is_refused(tmp_path: Path, url: str) -> None:
    out = yn(tmp_path / "hq", "hq", "migrate", "--to", url, code=2)
    assert "is not a PostgreSQL address" in out and len(out.strip().splitlines()) == 1


def test_a_home_without_an_hq_is_refused_before_connecting(tmp_path: Path) -> None:
    laptop = tmp_path / "laptop"
    yn(laptop, "keys", "show")  # a device key, no HQ key
    nowhere = "postgresql://hq@/hq?host=/nonexistent"
    out = yn(laptop, "hq", "migrate", "--to", nowhere, code=2)
    assert f"there is no HQ to move in {laptop}: it needs hq.key and yntymak.db" in out
    assert len(out.strip().splitlines()) == 1
    yn(laptop, "hq", "init", "-o", tmp_path / "hq.pub")  # a key, and no database yet
    assert "there is no HQ to move" in yn(laptop, "hq", "migrate", "--to", nowhere, code=2)


def test_switch_refuses_a_password_before_copying(tmp_path: Path) -> None:
    out = yn(tmp_path, "hq", "migrate", "--to", "postgresql://hq:s3cret@/hq", "--switch", code=2)
    assert "~/.pgpass" in out and "s3cret" not in out


def test_the_hash_is_the_same_for_equal_data_on_both_engines(pg_server: Any) -> None:
    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("k", sa.Text, primary_key=True),
        sa.Column("n", sa.BigInteger),
        sa.Column("data", sa.LargeBinary),
        sa.Column("note", sa.Text),
    )
    keys = ["b", "B", "é", "Ж", "a b", "a", "10", "9", "ё", "Ё"]
    rows = [
        {"k": k, "n": i * 10**12, "data": bytes([i, 0, 255]), "note": None if i % 2 else "жок"}
        for i, k in enumerate(keys)
    ]
    hashes = []
    for url in ("sqlite://", pg_server.new_database()):
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            table.create(conn)
            conn.execute(table.insert(), rows)
            hashes.append(hq_migrate.table_hash(conn, table))
            conn.execute(table.update().where(table.c.k == "a").values(data=b"\x00"))
            hashes.append(hq_migrate.table_hash(conn, table))  # one value changed
        engine.dispose()
    assert hashes[0] == hashes[2] and hashes[0][0] == len(rows)
    assert hashes[1] == hashes[3] and hashes[1][1] != hashes[0][1]
