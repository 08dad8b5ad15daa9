"""The store's lifecycle: every command closes what it opens, and writes nest.

`Store` is a context manager (STYLE.md habit 14): a command opens it with `with`, so its
connection is closed when the command returns, on success and on error alike. A write
inside a write is a SAVEPOINT of the outer transaction, so nobody passes connections.
"""

from __future__ import annotations

import inspect
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from yntymak_cli.cli import app
from yntymak_cli.errors import YntymakError
from yntymak_cli.store import db as db_mod
from yntymak_cli.store.db import Store

from .conftest import DATA

runner = CliRunner()
FORM = DATA / "village_safety.yaml"
ANSWERS = DATA / "village_safety_answers.yaml"


def _is_open(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
        return False
    return True


@pytest.fixture
def opened(monkeypatch) -> list[sqlite3.Connection]:
    """Every connection the store opens, held here (so none is closed by the collector)."""
    connections: list[sqlite3.Connection] = []
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        connections.append(conn)
        return conn

    monkeypatch.setattr(db_mod.sqlite3, "connect", connect)
    return connections


def _yn(opened: list[sqlite3.Connection], home: Path, *args: Any, ok: bool = True) -> str:
    """Run one command; it must succeed (or fail, `ok=False`) and leave no connection open."""
    before = len(opened)
    result = runner.invoke(app, ["--lang", "en", "--home", str(home), *map(str, args)])
    assert (result.exit_code == 0) is ok, (args, result.output, result.exception)
    assert not isinstance(result.exception, AssertionError), result.exception
    mine = opened[before:]
    left_open = [i for i, conn in enumerate(mine) if _is_open(conn)]
    assert not left_open, f"{args}: {len(left_open)} of {len(mine)} connection(s) left open"
    return result.output


def test_every_command_family_closes_its_connections(tmp_path, opened, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./forms folder: bare form ids come from the database
    device, hq = tmp_path / "device", tmp_path / "hq"
    out = tmp_path / "out"
    receipts = tmp_path / "receipts"
    receipts.mkdir()

    # config: settings kept in the database
    _yn(opened, device, "config", "set", "enumerator", "aida")
    _yn(opened, device, "config", "show")
    _yn(opened, device, "config", "unset", "enumerator")

    # collect from an answers file; a refused one fails and still closes
    uuid = _yn(opened, device, "collect", FORM, "--answers", ANSWERS, "--enumerator", "aida")
    uuid = uuid.strip().splitlines()[-1]
    bad = tmp_path / "bad.yaml"
    bad.write_text(ANSWERS.read_text(encoding="utf-8").replace("age: 34", "age: 7"), "utf-8")
    _yn(opened, device, "collect", FORM, "--answers", bad, "--enumerator", "aida", ok=False)

    # forms resolved by id from the database (no forms folder here)
    _yn(opened, device, "forms", "list")
    _yn(opened, device, "forms", "show", "village_safety")
    _yn(opened, device, "forms", "show", "no_such_form", ok=False)

    # drafts, resume and edit (both refuse without a terminal, after opening the store)
    with Store.open(device / "yntymak.db") as store:
        form = store.get_form("village_safety")
        assert form is not None
        draft = store.create_draft(form, {"answers": {}}, "aida", "dev", {})
    _yn(opened, device, "drafts")
    _yn(opened, device, "resume", draft, ok=False)
    _yn(opened, device, "submissions", "edit", uuid, ok=False)

    # submissions list / show / void, a missing one fails
    _yn(opened, device, "submissions", "list")
    _yn(opened, device, "submissions", "list", "--json")
    _yn(opened, device, "submissions", "show", uuid)
    _yn(opened, device, "submissions", "show", "ffffffff", ok=False)
    _yn(opened, device, "export", "village_safety", "-o", tmp_path / "vs.json")
    _yn(opened, device, "export", "no_such_form", "-o", tmp_path / "x.json", ok=False)

    # sync: HQ identity and enrolment, bundle, verify, import, ack, status, revoke
    _yn(opened, hq, "hq", "init", "-o", tmp_path / "hq.pub")
    _yn(opened, device, "keys", "export", "-o", tmp_path / "device.pub")
    _yn(opened, hq, "hq", "enroll", tmp_path / "device.pub", "--name", "Aida")
    _yn(opened, device, "keys", "trust-hq", tmp_path / "hq.pub")
    text = _yn(opened, device, "bundle", "create", "-o", out)
    found = re.search(r"^Wrote (.+\.ykb) \(bundle \d+\)", text, re.M)
    assert found, text
    bundle = Path(found.group(1))
    _yn(opened, hq, "bundle", "verify", bundle)
    _yn(opened, hq, "hq", "import", bundle, "--receipts", receipts)
    _yn(opened, device, "bundle", "ack", receipts / bundle.name.replace(".ykb", ".ykr"))
    _yn(opened, hq, "hq", "status")
    _yn(opened, hq, "hq", "export", "village_safety", "-o", tmp_path / "hq.json")
    device_id = json.loads(_yn(opened, device, "keys", "show", "--json"))["device_id"]
    _yn(opened, hq, "hq", "revoke", device_id)

    # purge, then void (the void is of a purged submission: allowed, kept for HQ)
    _yn(opened, device, "submissions", "purge", "--synced", "--yes")
    _yn(opened, device, "submissions", "void", uuid, "--reason", "duplicate")
    _yn(opened, device, "submissions", "void", uuid, "--reason", "again", ok=False)
    assert opened, "the tracker saw no connection: is sqlite3.connect still patched?"


def test_store_is_a_context_manager_and_closing_twice_is_harmless(tmp_path, opened) -> None:
    with Store(tmp_path / "y.db") as store:
        assert store.get_setting("x") is None
    assert not _is_open(store.conn)
    store.close()  # again: nothing happens
    with pytest.raises(RuntimeError), Store(tmp_path / "y.db"):
        raise RuntimeError("boom")
    assert opened and not any(_is_open(c) for c in opened)


def test_a_database_that_cannot_be_opened_leaves_no_connection(tmp_path, opened) -> None:
    path = tmp_path / "not-a-db.db"
    path.write_bytes(b"this is not an SQLite database, not even close" * 100)
    with pytest.raises(YntymakError):
        Store(path)
    assert opened and not any(_is_open(c) for c in opened)


def test_no_public_store_method_takes_a_connection() -> None:
    for name, method in inspect.getmembers(Store, inspect.isfunction):
        if not name.startswith("_"):
            assert "conn" not in inspect.signature(method).parameters, name


def _settings(store: Store) -> dict[str, str]:
    return dict(store.conn.execute("SELECT key, value FROM settings ORDER BY key").fetchall())


def test_a_failed_inner_write_rolls_back_only_itself(tmp_path) -> None:
    with Store(tmp_path / "y.db") as store:
        with store.write() as conn:
            conn.execute("INSERT INTO settings (key, value) VALUES ('a', '1')")
            with pytest.raises(RuntimeError), store.write() as inner:
                inner.execute("INSERT INTO settings (key, value) VALUES ('b', '2')")
                store.set_setting("c", "3")  # a write in the inner write: nests again
                raise RuntimeError("the inner part fails")
            assert conn.in_transaction  # the outer transaction goes on
            store.set_setting("d", "4")  # a public method inside: a savepoint, released
        assert not store.conn.in_transaction
    with Store(tmp_path / "y.db") as again:  # what was committed, seen afresh
        assert _settings(again) == {"a": "1", "d": "4"}


def test_an_outer_failure_rolls_back_the_released_inner_writes(tmp_path) -> None:
    with Store(tmp_path / "y.db") as store:
        with pytest.raises(RuntimeError), store.write():
            store.set_setting("a", "1")
            with store.write() as inner:
                inner.execute("INSERT INTO settings (key, value) VALUES ('b', '2')")
            raise RuntimeError("the outer part fails")
        assert _settings(store) == {}
        store.set_setting("c", "3")  # no transaction open: commits on its own
    with Store(tmp_path / "y.db") as again:
        assert _settings(again) == {"c": "3"}


def test_create_draft_registers_its_form_in_the_same_transaction(tmp_path, load) -> None:
    form = load(
        """
        id: tiny
        version: "1"
        title: Tiny
        questions:
          - {name: q, type: text, label: Q}
        """
    )
    with Store(tmp_path / "y.db") as store:
        with pytest.raises(RuntimeError), store.write():
            store.create_draft(form, {"answers": {}}, "aida", "dev", {})
            raise RuntimeError("abandon the batch")
        assert store.conn.execute("SELECT count(*) FROM forms").fetchone()[0] == 0
        assert store.list_drafts() == []
        store.create_draft(form, {"answers": {}}, "aida", "dev", {})
        assert [d["form_id"] for d in store.list_drafts()] == ["tiny"]
