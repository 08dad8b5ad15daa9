"""Receipts that carry HQ's review decisions (v2): sealed to one laptop, signed by HQ, and
refused whole (changing nothing) when altered, misdelivered, replayed or forged."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Field, collect_in, device_id, hq_db, rows, snapshot, sqlite_only, yn
from yntymak_cli.errors import InvalidInput
from yntymak_cli.store.db import Store
from yntymak_cli.sync import container, keys
from yntymak_cli.sync.bundle import ack_receipt

COMMENT = "Respondent 34 named the akim: remove the name, ask Q7 again"


def laptop_state(home: Path) -> dict[str, Any]:
    """Everything a receipt may change on a laptop: sync marks, answers, decisions."""
    state: dict[str, Any] = snapshot(home)
    state["reviews"] = rows(home, "SELECT * FROM reviews ORDER BY decision_id")
    state["sync"] = rows(home, "SELECT seq, acked_at FROM sync_bundles ORDER BY seq")
    return state


def sent_and_acked(f: Field, home: Path) -> str:
    """Collect one submission on `home`, import it at HQ, apply the (v1) receipt."""
    uuid = collect_in(home, f.tmp, "Кара-Суу")
    bundle = f.bundle(home)
    f.import_(bundle)
    yn(home, "bundle", "ack", f.receipt(bundle))
    return uuid


def decisions_receipt(f: Field, home: Path, *args: str) -> Path:
    out = yn(f.hq, "hq", "receipt", device_id(home), "-o", f.receipts, *args)
    found = [p for p in f.receipts.glob(f"{device_id(home)}-decisions-*.ykr")]
    assert found, out
    return max(found, key=lambda p: p.stat().st_mtime_ns)


def test_a_decision_receipt_is_sealed_to_its_laptop(field: Field) -> None:
    f = field
    uuid = sent_and_acked(f, f.a)
    sent_and_acked(f, f.b)
    yn(f.hq, "hq", "review", "reject", uuid, "--comment", COMMENT, "--reviewer", "Nurlan")
    path = decisions_receipt(f, f.a)
    data = path.read_bytes()
    assert data[:4] == b"YKR\x02"
    # A coordinator carrying the file sees no comment, reviewer, submission or status.
    for secret in (COMMENT, "Nurlan", uuid, "rejected", "Respondent"):
        assert secret.encode() not in data
    # The other laptop cannot read it (its key), and refuses it as another device's.
    other = keys.load_or_create_device_identity(f.b)
    opened = container.read_receipt(data, keys.load_trusted_hq(f.b))
    with pytest.raises(container.BundleError) as info:
        opened.decisions(other.box_key)
    assert info.value.reason == "wrong-device"
    before = laptop_state(f.b)
    out = yn(f.b, "bundle", "ack", path, code=2)
    assert "receipt is for device" in out and len(out.strip().splitlines()) == 1
    assert laptop_state(f.b) == before
    # Its own laptop reads it.
    out = yn(f.a, "bundle", "ack", path)
    assert "1 decision(s): 1 rejected" in out
    assert COMMENT in yn(f.a, "inbox")


def test_every_flipped_byte_is_refused_and_changes_nothing(field: Field) -> None:
    f = field
    uuid = sent_and_acked(f, f.a)
    yn(f.hq, "hq", "review", "reject", uuid, "--comment", COMMENT, "--reviewer", "Nurlan")
    data = decisions_receipt(f, f.a).read_bytes()
    device = keys.load_or_create_device_identity(f.a)
    hq = keys.load_trusted_hq(f.a)
    assert hq is not None
    before = laptop_state(f.a)
    with Store(f.a / "yntymak.db") as store:
        for i in range(len(data)):
            for mask in (0x01, 0x80):
                flipped = bytearray(data)
                flipped[i] ^= mask
                with pytest.raises(InvalidInput):
                    ack_receipt(store, device, hq, bytes(flipped))
        # Cut short, or with a byte more: refused too.
        for bad in (data[:-1], data + b"\0", data[:100]):
            with pytest.raises(InvalidInput):
                ack_receipt(store, device, hq, bad)
    assert laptop_state(f.a) == before
    ack_receipt_ok = yn(f.a, "bundle", "ack", decisions_receipt(f, f.a, "--all"))
    assert "1 rejected" in ack_receipt_ok


def test_a_replayed_receipt_is_refused_after_a_newer_decision(field: Field) -> None:
    f = field
    uuid = sent_and_acked(f, f.a)
    yn(f.hq, "hq", "review", "hold", uuid, "--comment", "Waiting for the district office")
    first = decisions_receipt(f, f.a)
    copy = f.tmp / "copy-of-first.ykr"
    copy.write_bytes(first.read_bytes())
    yn(f.a, "bundle", "ack", first)
    yn(f.a, "bundle", "ack", first)  # the same (newest) receipt again: changes nothing
    yn(f.hq, "hq", "review", "approve", uuid, "--comment", "Checked with the office")
    yn(f.a, "bundle", "ack", decisions_receipt(f, f.a))
    before = laptop_state(f.a)
    out = yn(f.a, "bundle", "ack", copy, code=2)
    assert "older than decision" in out and "nothing applied" in out
    assert len(out.strip().splitlines()) == 1
    assert laptop_state(f.a) == before
    assert [r["status"] for r in json.loads(yn(f.a, "inbox", "--all", "--json"))] == ["approved"]


def test_a_receipt_made_by_another_hq_key_is_refused(field: Field, tmp_path: Path) -> None:
    f = field
    uuid = sent_and_acked(f, f.a)
    rogue = keys.create_hq_identity(tmp_path / "rogue")
    device = keys.load_or_create_device_identity(f.a)
    genuine = keys.load_hq_identity(f.hq)
    decision = {
        "decision_id": 99,
        "uuid": uuid,
        "revision": 1,
        "status": "approved",
        "comment": None,
        "reviewer": "someone",
        "decided_at": "2026-11-30T10:00:00Z",
    }
    assert device.box_key is not None
    box = bytes(device.box_key.public_key)
    # Signed by another key, though it claims to be the trusted HQ.
    impostor = dataclasses.replace(rogue, fingerprint=genuine.fingerprint)
    forged = container.sign_receipt_v2({"device_id": device.device_id}, impostor, [decision], box)
    path = tmp_path / "forged.ykr"
    path.write_bytes(forged)
    before = laptop_state(f.a)
    out = yn(f.a, "bundle", "ack", path, code=2)
    assert "signature" in out and len(out.strip().splitlines()) == 1
    assert laptop_state(f.a) == before
    # The same decision from the genuine HQ key is accepted: the test above is not vacuous.
    path.write_bytes(
        container.sign_receipt_v2({"device_id": device.device_id}, genuine, [decision], box)
    )
    assert "1 approved" in yn(f.a, "bundle", "ack", path)


def test_decisions_never_change_answers(field: Field) -> None:
    f = field
    uuid = sent_and_acked(f, f.a)
    answers = rows(f.a, "SELECT uuid, revision, answers, hash FROM revisions")
    yn(f.hq, "hq", "review", "reject", uuid, "--comment", COMMENT)
    yn(f.a, "bundle", "ack", decisions_receipt(f, f.a))
    assert rows(f.a, "SELECT uuid, revision, answers, hash FROM revisions") == answers
    hq_answers = rows(f.hq, "SELECT uuid, revision, answers, hash FROM revisions")
    yn(f.hq, "hq", "review", "approve", uuid)
    assert rows(f.hq, "SELECT uuid, revision, answers, hash FROM revisions") == hq_answers


def v1_device_pub(path: Path) -> None:
    """Turn a device.pub into what a laptop of an earlier version wrote (no box key)."""
    data = json.loads(path.read_text())
    for key in ("box_key", "box_signature"):
        del data[key]
    data["version"] = 1
    path.write_text(json.dumps(data))


def test_an_old_enrolment_gets_a_count_until_enroll_update(tmp_path: Path) -> None:
    hq, laptop, receipts = tmp_path / "hq", tmp_path / "a", tmp_path / "receipts"
    yn(hq, "hq", "init", "-o", tmp_path / "hq.pub")
    pub = tmp_path / "a.pub"
    yn(laptop, "keys", "export", "-o", pub)
    v1_device_pub(pub)
    out = yn(hq, "hq", "enroll", pub, "--name", "Aida")
    assert "no encryption key" in out
    yn(laptop, "keys", "trust-hq", tmp_path / "hq.pub")
    f = Field(tmp_path, hq, laptop, tmp_path / "b", receipts)
    uuid = sent_and_acked(f, laptop)
    yn(hq, "hq", "review", "reject", uuid, "--comment", COMMENT)
    # Nothing can be sealed: the receipt says how many wait, and nothing of the comment.
    out = yn(hq, "hq", "receipt", device_id(laptop), "-o", receipts)
    assert "No review decisions wait" not in out and "1 review decision(s) wait" in out
    assert "hq enroll --update" in out
    collect_in(laptop, tmp_path, "Ак-Суу")
    bundle = f.bundle(laptop)
    out = f.import_(bundle)
    assert "1 review decision(s) wait for device" in out
    receipt = f.receipt(bundle)
    assert receipt.read_bytes()[:4] == b"YKR\x02" and COMMENT.encode() not in receipt.read_bytes()
    out = yn(laptop, "bundle", "ack", receipt)
    assert "1 HQ decision(s) wait for this laptop" in out and "keys export" in out
    assert json.loads(yn(laptop, "inbox", "--json")) == []
    # --update needs a device.pub with the key; then the decision goes out.
    out = yn(hq, "hq", "enroll", pub, "--update", code=2)
    assert "holds no encryption key" in out
    new_pub = tmp_path / "a2.pub"
    yn(laptop, "keys", "export", "-o", new_pub)
    status = json.loads(yn(hq, "hq", "status", "--json"))["devices"][0]
    assert (status["encryption_key"], status["decisions_waiting"]) == (False, 1)
    shown = yn(hq, "hq", "status", env={"COLUMNS": "200"})
    assert "1 review decision(s) wait: re-enrol (hq enroll --update)" in shown
    out = yn(hq, "hq", "enroll", new_pub, "--update")
    assert "Aida" in out and "encryption key is known" in out
    status = json.loads(yn(hq, "hq", "status", "--json"))["devices"][0]
    assert (status["encryption_key"], status["decisions_waiting"]) == (True, 1)
    yn(laptop, "bundle", "ack", decisions_receipt(f, laptop))
    assert [r["comment"] for r in json.loads(yn(laptop, "inbox", "--json"))] == [COMMENT]


def test_a_device_pub_with_a_swapped_box_key_is_refused(tmp_path: Path) -> None:
    pub = tmp_path / "a.pub"
    yn(tmp_path / "a", "keys", "export", "-o", pub)
    data = json.loads(pub.read_text())
    # Another laptop's (genuine) encryption key in place of its own.
    data["box_key"] = json.loads(yn(tmp_path / "b", "keys", "show", "--json"))["box_key"]
    pub.write_text(json.dumps(data))
    yn(tmp_path / "hq", "hq", "init", "-o", tmp_path / "hq.pub")
    out = yn(tmp_path / "hq", "hq", "enroll", pub, "--name", "X", code=2)
    assert "not signed by this device's key" in out


def test_a_revoked_laptop_gets_no_decisions(field: Field) -> None:
    f = field
    uuid = sent_and_acked(f, f.a)
    yn(f.hq, "hq", "review", "reject", uuid, "--comment", COMMENT)
    yn(f.hq, "hq", "revoke", device_id(f.a))
    out = yn(f.hq, "hq", "receipt", device_id(f.a), "-o", f.receipts, code=2)
    assert "revoked" in out
    assert not list(f.receipts.glob("*-decisions-*.ykr"))


def test_receipts_without_decisions_stay_version_1(field: Field) -> None:
    f = field
    collect_in(f.a, f.tmp, "Кара-Суу")
    bundle = f.bundle(f.a)
    f.import_(bundle)
    data = f.receipt(bundle).read_bytes()
    assert data[:4] == container.RECEIPT_MAGIC  # what laptops of every version read
    assert "Acknowledged 1 revision(s)" in yn(f.a, "bundle", "ack", f.receipt(bundle))


def test_resuming_an_edit_of_a_since_approved_submission_needs_reopen(field: Field) -> None:
    from yntymak_cli.collect.session import Session

    f = field
    uuid = sent_and_acked(f, f.a)
    # An edit left open (Ctrl-C), then HQ's approval arrives.
    with Store(f.a / "yntymak.db") as store:
        Session.edit(store, uuid, lang="en", enumerator="aida", device_id=device_id(f.a))
    yn(f.hq, "hq", "review", "approve", uuid)
    yn(f.a, "bundle", "ack", decisions_receipt(f, f.a))
    out = yn(f.a, "resume", uuid, code=2)
    assert "approved at HQ on" in out and "--reopen" in out
    with Store(f.a / "yntymak.db") as store:
        assert Session.resume(store, uuid, lang="en", reopen=True) is not None


def test_a_late_receipt_loses_none_of_its_other_decisions(field: Field) -> None:
    # R1 (reject A, reject B) is held back by a courier; R2 (approve A) arrives first.
    f = field
    a = sent_and_acked(f, f.a)
    b = collect_in(f.a, f.tmp, "Ак-Суу")
    bundle = f.bundle(f.a)
    f.import_(bundle)
    yn(f.a, "bundle", "ack", f.receipt(bundle))
    yn(f.hq, "hq", "review", "reject", a, "--comment", "Q2 again")
    yn(f.hq, "hq", "review", "reject", b, "--comment", COMMENT)
    first = decisions_receipt(f, f.a)
    late = f.tmp / "late.ykr"
    late.write_bytes(first.read_bytes())
    first.unlink()
    yn(f.hq, "hq", "review", "approve", a)
    yn(f.a, "bundle", "ack", decisions_receipt(f, f.a))
    out = yn(f.a, "bundle", "ack", late)  # applied: B's rejection is not lost
    assert "1 older decision(s) skipped" in out
    statuses = {r["uuid"]: r["status"] for r in json.loads(yn(f.a, "inbox", "--all", "--json"))}
    assert statuses == {a: "approved", b: "rejected"}
    # A copy of that receipt again, now applied: a replay, refused.
    before = laptop_state(f.a)
    assert "nothing applied" in yn(f.a, "bundle", "ack", late, code=2)
    assert laptop_state(f.a) == before


def test_decisions_of_a_lost_receipt_come_again_with_the_next_bundle(field: Field) -> None:
    f = field
    uuid = sent_and_acked(f, f.a)
    yn(f.hq, "hq", "review", "reject", uuid, "--comment", COMMENT)
    collect_in(f.a, f.tmp, "Ак-Суу")
    lost = f.bundle(f.a)
    assert "1 review decision(s) for this device" in f.import_(lost)
    f.receipt(lost).unlink()  # the receipt never reaches the laptop
    # The laptop sends again what HQ did not acknowledge: HQ sees it had those revisions,
    # so that receipt was lost, and sends the newest decisions again.
    again = f.bundle(f.a)
    assert "1 review decision(s) for this device" in f.import_(again)
    yn(f.a, "bundle", "ack", f.receipt(again))
    assert [r["comment"] for r in json.loads(yn(f.a, "inbox", "--json"))] == [COMMENT]


def test_a_decision_number_reused_with_other_content_is_refused(field: Field) -> None:
    f = field
    uuid = sent_and_acked(f, f.a)
    yn(f.hq, "hq", "review", "reject", uuid, "--comment", COMMENT)
    yn(f.a, "bundle", "ack", decisions_receipt(f, f.a))
    (held,) = rows(f.a, "SELECT decision_id FROM reviews")
    device = keys.load_or_create_device_identity(f.a)
    assert device.box_key is not None
    other = {
        "decision_id": held["decision_id"],
        "uuid": uuid,
        "revision": 1,
        "status": "approved",
        "comment": None,
        "reviewer": "someone",
        "decided_at": "2026-12-01T10:00:00Z",
    }
    data = container.sign_receipt_v2(
        {"device_id": device.device_id},
        keys.load_hq_identity(f.hq),
        [other],
        bytes(device.box_key.public_key),
    )
    path = f.tmp / "reused.ykr"
    path.write_bytes(data)
    before = laptop_state(f.a)
    out = yn(f.a, "bundle", "ack", path, code=2)
    assert "differs from the decision of that number" in out
    assert laptop_state(f.a) == before


def test_decision_ids_keep_growing_after_hq_is_restored(field: Field) -> None:
    import shutil

    f = field
    sqlite_only(f, "restores a copy of the database file (pg_restore's case: docs/scaling.md)")
    uuid = sent_and_acked(f, f.a)
    backup = f.tmp / "hq-backup.db"
    shutil.copy(f.hq / "yntymak.db", backup)
    yn(f.hq, "hq", "review", "reject", uuid, "--comment", COMMENT)
    yn(f.a, "bundle", "ack", decisions_receipt(f, f.a))
    for side in ("-wal", "-shm"):
        (f.hq / f"yntymak.db{side}").unlink(missing_ok=True)
    shutil.copy(backup, f.hq / "yntymak.db")  # HQ's database restored: the decision is gone
    yn(f.hq, "hq", "review", "approve", uuid)
    yn(f.a, "bundle", "ack", decisions_receipt(f, f.a))
    assert [r["status"] for r in json.loads(yn(f.a, "inbox", "--all", "--json"))] == ["approved"]


def test_asking_for_the_decisions_marks_none_delivered(field: Field) -> None:
    from yntymak_cli.sync.review import current_decisions_receipt

    f = field
    uuid = sent_and_acked(f, f.a)
    yn(f.hq, "hq", "review", "reject", uuid, "--comment", COMMENT)
    with hq_db(f.hq) as store:
        assert current_decisions_receipt(store, keys.load_hq_identity(f.hq), device_id(f.a))
    # Still waiting for a receipt: the next file receipt carries it.
    assert "1 review decision(s)" in yn(f.hq, "hq", "receipt", device_id(f.a), "-o", f.receipts)


def test_an_enrolled_encryption_key_is_replaced_only_with_update(field: Field) -> None:
    f = field
    old_pub = f.tmp / "a-old.pub"
    yn(f.a, "keys", "export", "-o", old_pub)
    # The laptop is restored without its device_box.key: it makes a new one.
    (f.a / "device_box.key").unlink()
    new_pub = f.tmp / "a-new.pub"
    yn(f.a, "keys", "export", "-o", new_pub)
    old_fp, new_fp = (
        keys.box_key_fingerprint(keys.read_device_public(p).box_key or b"")
        for p in (old_pub, new_pub)
    )
    out = yn(f.hq, "hq", "enroll", new_pub, "--name", "Aida", code=2)
    assert old_fp in out and new_fp in out and "--update" in out
    out = yn(f.hq, "hq", "enroll", new_pub, "--update")
    assert f"{old_fp} replaced by {new_fp}" in out
    # An old (genuine) device.pub cannot roll the key back unnoticed either.
    out = yn(f.hq, "hq", "enroll", old_pub, "--name", "Aida", code=2)
    assert "--update" in out


def test_voiding_an_approved_submission_needs_reopen(field: Field) -> None:
    f = field
    uuid = sent_and_acked(f, f.a)
    yn(f.hq, "hq", "review", "approve", uuid)
    yn(f.a, "bundle", "ack", decisions_receipt(f, f.a))
    out = yn(f.a, "submissions", "void", uuid, "--reason", "duplicate", code=2)
    assert "approved at HQ on" in out and "--reopen" in out
    assert rows(f.a, "SELECT status FROM submissions") == [{"status": "final"}]
    yn(f.a, "submissions", "void", uuid, "--reason", "duplicate", "--reopen")
    assert rows(f.a, "SELECT status FROM submissions") == [{"status": "void"}]
