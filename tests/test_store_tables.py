"""The store's tables, read back through sqlite-utils; HQ's sqlite-utils writes stay atomic."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from yntymak_cli.store import hq as hq_store
from yntymak_cli.store.db import Store

from . import helpers
from .helpers import Field, collect_in, hq_db, rows, snapshot, yn


def _schema(path: Path) -> sqlite_utils.Database:
    Store(path).close()  # created and migrated as any command would
    return sqlite_utils.Database(path)


def test_keys_and_foreign_keys_of_a_migrated_database(tmp_path: Path) -> None:
    db = _schema(tmp_path / "yntymak.db")
    pks = {name: db.table(name).pks for name in db.table_names()}
    assert pks == {
        "_migrations": ["name"],
        "settings": ["key"],
        "forms": ["hash"],
        "submissions": ["uuid"],
        "revisions": ["uuid", "revision"],
        "drafts": ["uuid"],
        "sync_bundles": ["seq"],
        "hq_devices": ["device_id"],
        "hq_bundles": ["bundle_id"],
        "hq_refused": ["bundle_id", "uuid", "revision"],
        "reviews": ["decision_id"],
        "hq_receipts": ["bundle_id"],
        "received_receipts": ["receipt_id"],
        "hq_targets": ["form_id", "kind", "name"],
        "hq_timings": ["uuid"],
        "media": ["sha256"],
        "hq_media": ["sha256"],
    }
    revisions = db.table("revisions")
    assert {(fk.column, fk.other_table, fk.other_column) for fk in revisions.foreign_keys} == {
        ("uuid", "submissions", "uuid"),
        ("form_hash", "forms", "hash"),
    }
    # What exports, sync and HQ status look rows up by is indexed.
    indexed = {
        ix.name: (name, ix.columns) for name in db.table_names() for ix in db.table(name).indexes
    }
    assert indexed["submissions_by_form"] == (
        "submissions",
        ["form_id", "status", "submission_time"],
    )
    assert indexed["submissions_by_device"] == ("submissions", ["device_id"])
    assert indexed["submissions_id"] == ("submissions", ["id"])  # exports' _id, unique
    assert indexed["hq_bundles_by_device"] == ("hq_bundles", ["device_id", "seq"])
    # A submission's review status is one seek: its newest decision on its revision.
    assert indexed["reviews_by_submission"] == ("reviews", ["uuid", "revision", "decision_id"])


def test_columns_hq_writes_are_the_tables_columns(tmp_path: Path) -> None:
    # sqlite-utils writes by column name: a renamed column must fail here, not at HQ.
    db = _schema(tmp_path / "yntymak.db")
    assert set(hq_store._SUBMISSION_COLUMNS) <= set(db.table("submissions").columns_dict)
    assert set(hq_store._REVISION_COLUMNS) <= set(db.table("revisions").columns_dict)
    fields = [*hq_store.SubmissionRow._fields[:-1], "answers"]
    assert fields == hq_store._SUBMISSION_COLUMNS
    assert len(hq_store.RevisionRow._fields) == len(hq_store._REVISION_COLUMNS)


def test_an_import_failing_after_the_bulk_insert_leaves_nothing(
    field: Field, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sqlite-utils' insert_all runs inside the import's transaction (a SAVEPOINT); had it
    # committed (as sqlite-utils 3 did), the submissions would survive this failure.
    for village in ("Кара-Суу", "Ак-Суу"):
        collect_in(field.a, field.tmp, village)
    bundle = field.bundle(field.a)
    before = snapshot(field.hq)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("simulated failure after the merge")

    monkeypatch.setattr(hq_store, "record_bundle", fail)
    with pytest.raises(OSError, match="simulated"):
        from yntymak_cli.sync import hq, keys

        with hq_db(field.hq) as store:
            hq.import_bundle(store, keys.load_hq_identity(field.hq), bundle.read_bytes())
    assert snapshot(field.hq) == before
    monkeypatch.undo()
    field.import_(bundle)
    after = snapshot(field.hq)
    assert len(after["submissions"]) == len(before["submissions"]) + 2
    assert len(after["revisions"]) == len(before["revisions"]) + 2


def test_a_rename_and_a_revoke_change_only_their_device(field: Field) -> None:
    devices = {r["name"]: r for r in _devices(field)}
    aida = devices["Aida"]["device_id"]
    yn(field.hq, "hq", "enroll", field.tmp / "a.pub", "--name", "Aida K.", "--district", "osh")
    yn(field.hq, "hq", "revoke", aida)
    after = {r["device_id"]: r for r in _devices(field)}
    assert after[aida] == {
        **devices["Aida"],
        "name": "Aida K.",
        "district": "osh",
        "revoked_at": after[aida]["revoked_at"],
    }
    assert after[aida]["revoked_at"]
    assert after[devices["Bakyt"]["device_id"]] == devices["Bakyt"]


def _devices(field: Field) -> list[dict]:
    if field.hq in helpers.PG_HOMES:
        return rows(field.hq, "SELECT * FROM hq_devices")
    db = sqlite_utils.Database(field.hq / "yntymak.db")
    try:
        return list(db.table("hq_devices").rows)
    finally:
        db.close()
