"""Sync end to end through the CLI: two field laptops and one HQ, each in its own home."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from yntymak_cli.cli import app

from . import helpers
from .conftest import ROOT
from .helpers import (
    CONTRACT,
    Field,
    collect_in,
    db,
    device_id,
    rows,
    runner,
    snapshot,
    sqlite_only,
    yn,
)

WIDE = {"COLUMNS": "160"}  # rich wraps table cells to the terminal width


def hq_row(f: Field, uuid: str) -> dict[str, Any]:
    (row,) = rows(f.hq, "SELECT * FROM submissions WHERE uuid = ?", uuid)
    return row


def edit(home: Path, uuid: str, village: str) -> None:
    """A second revision through the Store API (`submissions edit` is interactive only)."""
    from yntymak_cli.store.db import Store

    store = Store(home / "yntymak.db")
    try:
        record = store.get_record(uuid)
        answers = {**record["answers"], "village": village}
        draft = store.open_edit(uuid, {"answers": answers}, "aida", record["device_id"], {})
        assert store.finalise(draft, answers, village) == 2
    finally:
        store.close()


# -- the whole flow ----------------------------------------------------------------------


@pytest.mark.slow
def test_two_devices_and_hq_end_to_end(field: Field) -> None:
    f = field
    a1 = collect_in(f.a, f.tmp, "Ак-Суу")
    a2 = collect_in(f.a, f.tmp, "Кызыл-Кия")

    # First bundle: both submissions, named <device-id>-1.ykb.
    bundle1 = f.bundle(f.a)
    assert bundle1.name == f"{device_id(f.a)}-1.ykb"
    out = yn(f.hq, "bundle", "verify", bundle1)
    assert "ok: bundle 1" in out and "Aida" in out and "village_safety: 2" in out
    assert rows(f.hq, "SELECT * FROM submissions") == []  # verify writes nothing

    out = f.import_(bundle1)
    assert f"{bundle1}: 2 new, 0 updated, 0 unchanged" in out
    assert hq_row(f, a1)["answers"] and json.loads(hq_row(f, a1)["answers"])["village"] == "Ак-Суу"
    assert f.receipt(bundle1).exists()

    out = yn(f.a, "bundle", "ack", f.receipt(bundle1))
    assert "Acknowledged 2 revision(s) from bundle 1" in out
    out_dir = f.tmp / "out-a"
    assert "Nothing to send" in yn(f.a, "bundle", "create", "-o", out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == [bundle1.name]  # nothing written

    # An edit and a void travel in the next bundle.
    edit(f.a, a1, "Ак-Суу (edited)")
    yn(f.a, "submissions", "void", a2, "--reason", "duplicate interview")
    bundle2 = f.bundle(f.a)
    assert bundle2.name.endswith("-2.ykb")
    out = f.import_(bundle2)
    assert f"{bundle2}: 0 new, 2 updated, 0 unchanged" in out
    row = hq_row(f, a1)
    assert row["revision"] == 2 and json.loads(row["answers"])["village"] == "Ак-Суу (edited)"
    history = rows(f.hq, "SELECT revision, answers FROM revisions WHERE uuid = ?", a1)
    assert [r["revision"] for r in sorted(history, key=lambda r: r["revision"])] == [1, 2]
    row = hq_row(f, a2)
    assert row["status"] == "void" and row["void_reason"] == "duplicate interview"

    # HQ exports the merged data with the device's exporter: latest revision, no voids.
    export_path = f.tmp / "hq.json"
    yn(f.hq, "hq", "export", "village_safety", "--format", "json", "-o", export_path)
    exported = json.loads(export_path.read_text(encoding="utf-8"))["submissions"]
    assert [(s["uuid"], s["revision"]) for s in exported] == [(a1, 2)]
    assert exported[0]["answers"]["village"] == "Ак-Суу (edited)"

    # Replayed bundle: nothing new.
    out = f.import_(bundle2)
    assert f"{bundle2}: 0 new, 0 updated, 2 unchanged" in out

    # Receipt 2 lost: bundle 3 carries the same again (a lost stick heals), HQ is unchanged.
    f.receipt(bundle2).unlink()
    bundle3 = f.bundle(f.a)
    out = f.import_(bundle3)
    assert f"{bundle3}: 0 new, 0 updated, 2 unchanged" in out
    out = yn(f.a, "bundle", "ack", f.receipt(bundle3))
    assert "Acknowledged 1 revision(s) and 1 void(s) from bundle 3" in out
    assert "Nothing to send" in yn(f.a, "bundle", "create", "-o", out_dir)
    # Applying a receipt twice changes nothing.
    assert "Acknowledged 0 revision(s)" in yn(f.a, "bundle", "ack", f.receipt(bundle3))

    # Device B: three bundles, each carrying everything unacknowledged; 2 is lost and
    # 3 arrives before 1.
    b_ids = []
    b_bundles = []
    for village in ("Ат-Башы", "Нарын", "Бугучу"):
        b_ids.append(collect_in(f.b, f.tmp, village))
        b_bundles.append(f.bundle(f.b))
    out = f.import_(b_bundles[2])
    assert f"{b_bundles[2]}: 3 new" in out
    out = f.import_(b_bundles[0])
    assert f"{b_bundles[0]}: 0 new, 0 updated, 1 unchanged" in out

    status = json.loads(yn(f.hq, "hq", "status", "--json"))
    assert status["format_version"] == 1
    devices = {d["name"]: d for d in status["devices"]}
    assert devices["Bakyt"]["gaps"] == [2]
    assert devices["Bakyt"]["last_seq"] == 3 and devices["Bakyt"]["chain_breaks"] == []
    assert devices["Aida"]["gaps"] == [] and devices["Aida"]["last_seq"] == 3
    assert devices["Aida"]["enumerators"] == ["aida"]
    assert devices["Aida"]["submissions_by_form"] == {"village_safety": 1}
    assert devices["Aida"]["void"] == 1
    assert devices["Bakyt"]["submissions_by_form"] == {"village_safety": 3}
    assert status["totals"]["by_form"] == {"village_safety": 4}
    assert status["totals"]["by_district"] == {"at_bashy": 3, "kara_suu": 1}
    table = yn(f.hq, "hq", "status", env=WIDE)
    assert "Bakyt" in table and "missing: 2" in table

    # Revoked: new bundles refused, nothing written; what was imported stays.
    yn(f.hq, "hq", "revoke", device_id(f.b))
    collect_in(f.b, f.tmp, "Кочкор")
    b4 = f.bundle(f.b)
    before = snapshot(f.hq)
    out = f.import_(b4, code=2)
    assert f"{b4}: refused:" in out and "revoked" in out
    assert snapshot(f.hq) == before
    assert len(rows(f.hq, "SELECT * FROM submissions WHERE device_id = ?", device_id(f.b))) == 3
    out = yn(f.hq, "bundle", "verify", b4, code=2)
    assert "revoked" in out


@pytest.mark.slow
def test_bundles_in_any_order_give_the_same_database(field: Field, request) -> None:
    f = field
    # A second HQ database with the same key and enrolments, to import in another order.
    hq2 = f.tmp / "hq2"
    shutil.copytree(f.hq, hq2)
    env = None
    if f.hq in helpers.PG_HOMES:  # a second PostgreSQL database, the same devices enrolled
        url = request.getfixturevalue("pg_server").new_database()
        env = {"YNTYMAK_HQ_DB": url}
        request.getfixturevalue("monkeypatch").setitem(helpers.PG_HOMES, hq2, url)
        for home, name, district in ((f.a, "Aida", "kara_suu"), (f.b, "Bakyt", "at_bashy")):
            pub = f.tmp / f"{home.name}.pub"
            yn(hq2, "hq", "enroll", pub, "--name", name, "--district", district, env=env)
    bundles = []

    def send(home: Path) -> None:
        # Acknowledged each time, so every bundle carries only what is new since the last.
        bundles.append(f.bundle(home))
        f.import_(bundles[-1])
        yn(home, "bundle", "ack", f.receipt(bundles[-1]))

    a1 = collect_in(f.a, f.tmp, "Ак-Суу")
    send(f.a)
    a2 = collect_in(f.a, f.tmp, "Ош")
    edit(f.a, a1, "Ак-Суу 2")
    send(f.a)  # a1 revision 2, a2 revision 1
    yn(f.a, "submissions", "void", a2, "--reason", "test")
    send(f.a)  # the void of a2
    collect_in(f.b, f.tmp, "Нарын")
    send(f.b)

    # Reverse order: the void arrives before the revision it voids, revision 2 before 1.
    out = yn(hq2, "hq", "import", *reversed(bundles), "--receipts", f.tmp, env=env)
    assert f"{bundles[2]}: 1 new" in out  # a2 first seen as a void
    assert f"{bundles[0]}: 0 new, 1 updated" in out  # a1 revision 1, history only
    yn(hq2, "hq", "import", bundles[1], bundles[0], "--receipts", f.tmp, env=env)  # replays
    first, second = snapshot(f.hq), snapshot(hq2)
    assert first == second
    assert len(first["revisions"]) == 4 and len(first["hq_bundles"]) == 4
    subs = {r[0]: r for r in first["submissions"]}
    assert subs[a2][4] == "void" and subs[a1][5] == 2  # status, revision columns


def test_import_is_one_transaction(field: Field, monkeypatch: pytest.MonkeyPatch) -> None:
    from yntymak_cli.sync import hq as hq_mod

    f = field
    for village in ("Ак-Суу", "Ош", "Нарын"):
        collect_in(f.a, f.tmp, village)
    bundle = f.bundle(f.a)
    before = snapshot(f.hq)

    def power_cut(*args: Any) -> None:
        raise RuntimeError("power cut")

    # Fails at the last step of the merge, after forms, submissions and revisions were written.
    monkeypatch.setattr(hq_mod, "_record_bundle", power_cut)
    result = runner.invoke(app, ["--home", str(f.hq), "hq", "import", str(bundle)])
    assert result.exit_code == 1 and "power cut" in result.output
    assert snapshot(f.hq) == before
    assert not f.receipt(bundle).exists()
    monkeypatch.undo()
    assert f"{bundle}: 3 new" in f.import_(bundle)


def _synthetic(home: Path, n: int) -> None:
    """n finalised submissions straight into the device DB (collect is too slow for this)."""
    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from sync_bench import insert_synthetic
    finally:
        sys.path.pop(0)
    store = Store(home / "yntymak.db")
    try:
        insert_synthetic(store, load_form(CONTRACT).require(), device_id(home), n)
    finally:
        store.close()


def _kill_midway(hq: Path, bundle: Path, receipts: Path) -> bool:
    """Run `hq import` in a subprocess and SIGKILL it once it writes; True if killed."""
    wal = hq / "yntymak.db-wal"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "yntymak_cli", "--home", str(hq), "hq", "import"]
    cmd += [str(bundle), "--receipts", str(receipts)]
    start_size = wal.stat().st_size if wal.exists() else 0
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The merge spills pages to the WAL before it commits: kill as soon as it grows.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if wal.exists() and wal.stat().st_size > start_size + 256 * 1024:
            break
        time.sleep(0.002)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return killed


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_import_killed_midway_leaves_the_database_as_before(field: Field) -> None:
    f = field
    sqlite_only(f, "copies of the database file, killed writers, integrity_check")
    n = 6000
    _synthetic(f.a, n)
    bundle = f.bundle(f.a)
    pristine = f.tmp / "hq-pristine"
    shutil.copytree(f.hq, pristine)
    mid_transaction = False
    for attempt in range(3):  # a kill that lands just after COMMIT proves nothing: retry
        hq = f.tmp / f"hq-{attempt}"
        shutil.copytree(pristine, hq)
        killed = _kill_midway(hq, bundle, f.receipts)
        counts = rows(hq, "SELECT (SELECT COUNT(*) FROM submissions) AS s, "
                          "(SELECT COUNT(*) FROM revisions) AS r, "
                          "(SELECT COUNT(*) FROM hq_bundles) AS b")[0]  # fmt: skip
        # All or nothing, whenever the kill landed.
        assert counts in ({"s": 0, "r": 0, "b": 0}, {"s": n, "r": n, "b": 1}), counts
        assert rows(hq, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]
        if killed and counts["b"] == 0:
            mid_transaction = True
            break
    assert mid_transaction, "could not kill the import mid-transaction"
    assert not f.receipt(bundle).exists()
    # Running it again completes the import.
    out = yn(hq, "hq", "import", bundle, "--receipts", f.receipts)
    assert f"{bundle}: {n} new, 0 updated, 0 unchanged" in out
    assert rows(hq, "SELECT COUNT(*) AS n FROM submissions") == [{"n": n}]


# -- smaller contracts -------------------------------------------------------------------


def test_bundle_create_needs_a_trusted_hq(tmp_path: Path) -> None:
    home = tmp_path / "lonely"
    collect_in(home, tmp_path, "Ак-Суу")
    out = yn(home, "bundle", "create", "-o", tmp_path, code=2)
    assert "trust-hq" in out
    assert not list(tmp_path.glob("*.ykb"))


@pytest.mark.slow
def test_trust_hq_refuses_to_switch_silently(field: Field, tmp_path: Path) -> None:
    yn(tmp_path / "hq2", "hq", "init", "-o", tmp_path / "hq2.pub")
    out = yn(field.a, "keys", "trust-hq", tmp_path / "hq2.pub", code=2)
    assert "--replace" in out
    old = json.loads((tmp_path / "hq.pub").read_text())["fingerprint"]
    assert json.loads(yn(field.a, "keys", "show", "--json"))["hq"]["fingerprint"] == old
    yn(field.a, "keys", "trust-hq", tmp_path / "hq2.pub", "--replace")
    new = json.loads((tmp_path / "hq2.pub").read_text())["fingerprint"]
    assert json.loads(yn(field.a, "keys", "show", "--json"))["hq"]["fingerprint"] == new


def test_keys_show_prints_id_key_and_fingerprint(tmp_path: Path) -> None:
    home = tmp_path / "d"
    data = json.loads(yn(home, "keys", "show", "--json"))
    assert set(data) == {"device_id", "public_key", "box_key", "fingerprint", "hq"}
    assert data["hq"] is None
    text = yn(home, "keys", "show")
    assert data["device_id"] in text and data["fingerprint"] in text
    assert data["public_key"] in text


def _purge(home: Path, *args: str) -> Any:
    return runner.invoke(app, ["--home", str(home), "submissions", "purge", *args])


def _raw(home: Path) -> bytes:
    data = (home / "yntymak.db").read_bytes()
    wal = home / "yntymak.db-wal"
    return data + (wal.read_bytes() if wal.exists() else b"")


@pytest.mark.slow
def test_purge_erases_acknowledged_answers_only(field: Field) -> None:
    f = field
    secret = "Zxq-тайна-7731"
    kept = "Keep-сакта-4410"
    done = collect_in(f.a, f.tmp, secret)
    edit(f.a, done, f"{secret} edited")
    bundle = f.bundle(f.a)
    f.import_(bundle)
    yn(f.a, "bundle", "ack", f.receipt(bundle))
    waiting = collect_in(f.a, f.tmp, kept)  # never sent
    # As after days of use: the answers have reached the main file, not only the WAL.
    conn = db(f.a)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert secret.encode() in (f.a / "yntymak.db").read_bytes()

    result = _purge(f.a, "--synced")  # stdin is not a terminal: --yes is required
    assert result.exit_code == 2 and "--yes" in result.output
    result = _purge(f.a)
    assert result.exit_code == 2 and "--synced" in result.output
    assert secret.encode() in _raw(f.a)

    result = _purge(f.a, "--synced", "--yes")
    assert result.exit_code == 0, result.output
    assert "Purged the answers of 1 submission(s) (2 revision(s)); kept 1" in result.output
    assert secret.encode() not in _raw(f.a)
    assert kept.encode() in _raw(f.a)

    (purged,) = rows(f.a, "SELECT * FROM submissions WHERE uuid = ?", done)
    assert purged["answers"] is None and purged["purged_at"] and purged["revision"] == 2
    revs = rows(f.a, "SELECT * FROM revisions WHERE uuid = ? ORDER BY revision", done)
    assert [r["revision"] for r in revs] == [1, 2]
    assert all(r["answers"] is None and r["paradata"] is None and r["hash"] for r in revs)
    (other,) = rows(f.a, "SELECT answers FROM submissions WHERE uuid = ?", waiting)
    assert json.loads(other["answers"])["village"] == kept
    # The unsynced one still travels; HQ still has everything.
    b2 = f.bundle(f.a)
    assert f"{b2}: 1 new" in f.import_(b2)
    assert json.loads(hq_row(f, done)["answers"])["village"] == f"{secret} edited"
    # A void after the purge still reaches HQ, without answers.
    yn(f.a, "submissions", "void", done, "--reason", "wrong village")
    b3 = f.bundle(f.a)
    assert f"{b3}: 0 new, 1 updated" in f.import_(b3)
    assert hq_row(f, done)["status"] == "void"
    assert json.loads(hq_row(f, done)["answers"])["village"] == f"{secret} edited"


@pytest.mark.slow
def test_device_restored_from_backup_shows_a_chain_break(field: Field) -> None:
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    backup = f.tmp / "a-backup"
    shutil.copytree(f.a, backup)
    first = f.bundle(f.a)
    f.import_(first)
    first_receipt = f.receipt(first)
    first = first.rename(f.tmp / "first-1.ykb")
    # The laptop is restored from the backup: it makes its own bundle 1 and 2 again.
    shutil.rmtree(f.a)
    shutil.copytree(backup, f.a)
    again = f.bundle(f.a)
    assert again.name == first_receipt.name.replace(".ykr", ".ykb")
    assert again.read_bytes() != first.read_bytes()
    again.rename(f.tmp / "again-1.ykb")
    collect_in(f.a, f.tmp, "Ош")
    second = f.bundle(f.a)
    assert "1 new, 0 updated, 1 unchanged" in f.import_(second)
    (device,) = json.loads(yn(f.hq, "hq", "status", "--json"))["devices"][:1]
    assert device["name"] == "Aida" and device["chain_breaks"] == [2] and device["gaps"] == []
    assert "chain break: 2" in yn(f.hq, "hq", "status", env=WIDE)
    # The receipt of the first bundle names a bundle this database never made.
    out = yn(f.a, "bundle", "ack", first_receipt, code=2)
    assert "did not create" in out
    f.import_(f.tmp / "again-1.ykb")
    (device,) = json.loads(yn(f.hq, "hq", "status", "--json"))["devices"][:1]
    assert device["chain_breaks"] == [] and device["repeated_seqs"] == [1]


@pytest.mark.slow
def test_bundle_create_never_replaces_an_existing_file(field: Field) -> None:
    """A device restored from a backup reuses a seq: the older file may be the only copy."""
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    out = f.tmp / "stick"
    out.mkdir()
    older = out / f"{device_id(f.a)}-1.ykb"
    older.write_bytes(b"bundle 1 made before the database was restored")
    msg = yn(f.a, "bundle", "create", "-o", out, code=2)
    assert "already exists" in msg and "Traceback" not in msg
    assert older.read_bytes() == b"bundle 1 made before the database was restored"
    assert rows(f.a, "SELECT * FROM sync_bundles") == []
    assert [p.name for p in out.iterdir()] == [older.name]  # no temp file left behind
    older.unlink()
    assert "(bundle 1)" in yn(f.a, "bundle", "create", "-o", out)


@pytest.mark.slow
def test_receipt_from_another_hq_than_the_bundle_went_to(field: Field) -> None:
    """After `trust-hq --replace`, the new HQ cannot acknowledge data sealed to the old one."""
    from yntymak_cli.sync import container, keys

    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    bundle = f.bundle(f.a)
    hq2 = keys.create_hq_identity(f.tmp / "hq2")
    keys.write_hq_public(f.tmp / "hq2.pub", hq2.public())
    yn(f.a, "keys", "trust-hq", f.tmp / "hq2.pub", "--replace")
    (row,) = rows(f.a, "SELECT bundle_id, seq FROM sync_bundles")
    uid = rows(f.a, "SELECT uuid FROM revisions")[0]["uuid"]
    fake = f.tmp / "hq2.ykr"
    fake.write_bytes(
        container.sign_receipt(
            {**row, "device_id": device_id(f.a), "accepted": [{"uuid": uid, "revision": 1}]}, hq2
        )
    )
    out = yn(f.a, "bundle", "ack", fake, code=2)
    assert "was sent to HQ" in out
    assert rows(f.a, "SELECT synced_at FROM revisions") == [{"synced_at": None}]
    assert bundle.exists()
