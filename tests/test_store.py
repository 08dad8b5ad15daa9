"""SQLite storage: durability settings, migrations, revisions, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from yntymak_cli.forms.loader import load_form
from yntymak_cli.store.db import Store
from yntymak_cli.store.migrations import MIGRATIONS, migrate

from .conftest import DATA


def form():
    return load_form(DATA / "village_safety.yaml").require()


def test_pragmas_and_migrations(tmp_path):
    store = Store(tmp_path / "a.db")
    conn = store.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    names = [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == sorted(name for name, _ in MIGRATIONS)
    assert migrate(conn) == []  # idempotent
    store.close()
    Store(tmp_path / "a.db").close()  # reopening applies nothing again


def test_revisions_are_kept_never_overwritten(tmp_path):
    store = Store(tmp_path / "a.db")
    f = form()
    uuid = store.create_draft(f, {"answers": {"village": "A"}}, "aida", "dev1", {})
    rev1 = store.finalise(store.get_draft(uuid), {"village": "A"}, "A")
    store.open_edit(uuid, {"answers": {"village": "B"}}, "aida", "dev1", {})
    # While the edit is in progress the finalised revision stays what exports see.
    assert store.get_record(uuid)["answers"] == {"village": "A"}
    rev2 = store.finalise(store.get_draft(uuid), {"village": "B"}, "B")
    assert (rev1, rev2) == (1, 2)
    revisions = store.revisions(uuid)
    assert [r["revision"] for r in revisions] == [1, 2]
    rows = store.conn.execute(
        "SELECT answers FROM revisions WHERE uuid = ? ORDER BY revision", [uuid]
    ).fetchall()
    assert [r[0] for r in rows] == ['{"village":"A"}', '{"village":"B"}']
    assert store.get_record(uuid)["answers"] == {"village": "B"}


def test_form_versions_newest_first_by_version_not_arrival(tmp_path, load):
    store = Store(tmp_path / "a.db")
    for version in ("2026-11-01", "2026-09-01", "2026-10-01"):
        store.register_form(
            load(
                f"id: f\nversion: '{version}'\nquestions:\n  - {{name: a, type: text, label: A}}\n"
            )
        )
    assert [f.version for f in store.form_versions("f")] == [
        "2026-11-01",
        "2026-10-01",
        "2026-09-01",
    ]
    assert store.get_form("f").version == "2026-11-01"


def _writer(path: str, n: int, queue) -> None:
    try:
        store = Store(__import__("pathlib").Path(path))
        f = form()
        uuid = store.create_draft(f, {"answers": {}}, "x", "d", {})
        for i in range(n):
            store.save_draft(uuid, {"answers": {"village": str(i)}}, {})
        queue.put("ok")
    except Exception as exc:  # reported to the parent, which fails the test
        queue.put(repr(exc))


@pytest.mark.slow
def test_two_writers_wait_instead_of_failing(tmp_path):
    path = str(tmp_path / "shared.db")
    Store(tmp_path / "shared.db").close()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(path, 150, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sorted(queue.get(timeout=5) for _ in procs) == ["ok", "ok"]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM drafts").fetchone()[0] == 2
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_export_with_drafts_does_not_duplicate_an_edit_in_progress(tmp_path):
    store = Store(tmp_path / "a.db")
    f = form()
    done = store.create_draft(f, {"answers": {"village": "A"}}, "aida", "dev1", {})
    store.finalise(store.get_draft(done), {"village": "A"}, "A")
    store.open_edit(done, {"answers": {"village": "B"}}, "aida", "dev1", {})
    fresh = store.create_draft(f, {"answers": {"village": "C"}}, "aida", "dev1", {})
    records = list(store.iter_records(f.id, include_drafts=True))
    assert [(r["uuid"], r["status"]) for r in records] == [(done, "final"), (fresh, "draft")]
    assert store.count_records(f.id, include_drafts=True) == 2
