"""Damaged, forged and misaddressed bundles and receipts are refused through the CLI, and
a refused bundle writes nothing to the HQ database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from yntymak_cli.sync import container, keys

from .helpers import (
    Field,
    collect_in,
    device_id,
    hq_db,
    open_genuine,
    resign,
    rows,
    seal_raw,
    snapshot,
    yn,
)


@pytest.fixture
def sent(field: Field) -> tuple[Field, Path]:
    """Device A has collected two submissions and made bundle 1 for HQ."""
    collect_in(field.a, field.tmp, "Ак-Суу")
    collect_in(field.a, field.tmp, "Ош")
    return field, field.bundle(field.a)


def refused(f: Field, path: Path, reason: str) -> str:
    before = snapshot(f.hq)
    out = f.import_(path, code=2)
    assert f"{path}: refused:" in out and reason in out, out
    assert snapshot(f.hq) == before
    assert not f.receipt(path).exists()
    return out


def test_flipped_bytes_are_refused_and_write_nothing(sent: tuple[Field, Path]) -> None:
    f, bundle = sent
    data = bundle.read_bytes()
    positions = sorted({0, 1, 3, 4, 8, 9, 60, len(data) // 3, len(data) // 2, len(data) - 200}
                       | {len(data) - 65, len(data) - 64, len(data) - 30, len(data) - 1}
                       | {i * len(data) // 7 for i in range(1, 7)})  # fmt: skip
    assert len(positions) >= 18
    damaged = f.tmp / "damaged"
    damaged.mkdir()
    for i in positions:
        raw = bytearray(data)
        raw[i] ^= 0x01
        path = damaged / f"flip-{i}.ykb"
        path.write_bytes(bytes(raw))
    before = snapshot(f.hq)
    out = f.import_(damaged, code=2)
    assert out.count("refused:") == len(positions)
    assert snapshot(f.hq) == before
    assert not list(f.receipts.iterdir())
    yn(f.hq, "bundle", "verify", damaged / f"flip-{len(data) - 1}.ykb", code=2)
    # The intact file still imports afterwards.
    assert "2 new" in f.import_(bundle)


def record_refused(f: Field, path: Path, reason: str) -> str:
    """The bundle is imported, but its records are refused one by one: none is merged,
    and the receipt lists them so that the device stops sending them."""
    before = snapshot(f.hq)
    out = f.import_(path, code=2)
    assert f"{path}: 0 new, 0 updated, 0 unchanged" in out and reason in out, out
    after = snapshot(f.hq)
    for table in ("submissions", "revisions"):
        assert after[table] == before[table]
    hq_public = keys.load_hq_identity(f.hq).public()
    header = container.inspect_bundle(path.read_bytes())
    name = f"{header['device_id']}-{header['seq']}.ykr"
    receipt = container.open_receipt((f.receipts / name).read_bytes(), hq_public)
    assert receipt["accepted"] == [] and receipt["refused"]
    assert all(reason in r["reason"] for r in receipt["refused"])
    return out


def test_good_bundles_import_beside_a_refused_one(sent: tuple[Field, Path]) -> None:
    f, bundle = sent
    bad = f.tmp / "bad.ykb"
    data = bundle.read_bytes()
    bad.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))
    out = f.import_(bad, bundle, code=2)
    assert f"{bad}: refused: bundle signature" in out
    assert f"{bundle}: 2 new" in out
    assert len(rows(f.hq, "SELECT * FROM submissions")) == 2


@pytest.mark.slow
def test_a_bundle_lost_in_transit_names_no_submission(sent: tuple[Field, Path]) -> None:
    """Whoever copies a bundle (a messenger, a found USB stick, another enrolled laptop)
    learns no submission id, hash or answer: with the ids, an enrolled device could submit
    them first and HQ would refuse the genuine bundle ("belongs to device") for good."""
    import uuid

    f, bundle = sent
    data = bundle.read_bytes()
    revisions = rows(f.a, "SELECT uuid, hash, answers, instance_name FROM revisions")
    assert len(revisions) == 2
    needles: list[str] = []
    for r in revisions:
        needles += [r["uuid"], r["uuid"].replace("-", ""), r["hash"], r["instance_name"]]
        answers = json.loads(r["answers"])
        answers.pop("today")  # the collection date: the clear created_at tells as much
        needles += [v for v in answers.values() if isinstance(v, str)]
    needles += [row["hash"] for row in rows(f.a, "SELECT hash FROM forms")]
    # Only needles of 6 bytes and more: a shorter one ("no") may occur in random ciphertext.
    needles = [n for n in needles if len(n.encode("utf-8")) >= 6]
    assert {"Ак-Суу", "kara_suu", "40.53 72.8"} <= set(needles)
    for needle in needles:
        for text in {needle, needle.upper()}:
            assert text.encode("utf-8") not in data, needle
    for r in revisions:
        assert uuid.UUID(r["uuid"]).bytes not in data
    # What anyone can read without HQ's key: who sent it, which seq, when, to which HQ.
    header = container.inspect_bundle(data)
    assert sorted(header) == ["bundle_id", "created_at", "device_id", "format_version",
                              "hq_fingerprint", "prev_hash", "seq"]  # fmt: skip
    # HQ learns the counts once it has decrypted the bundle.
    summary = json.loads(yn(f.hq, "bundle", "verify", bundle, "--json"))
    assert (summary["submissions"], summary["records"], summary["forms"]) == (2, 2, 1)
    assert "2 submission(s), 2 revision(s)" in yn(f.hq, "bundle", "verify", bundle)
    assert f"{bundle}: 2 new, 0 updated, 0 unchanged" in f.import_(bundle)


@pytest.mark.slow
def test_truncated_bundles(sent: tuple[Field, Path]) -> None:
    f, bundle = sent
    data = bundle.read_bytes()
    for n in (0, 3, 100, len(data) // 2, len(data) - 10):
        path = f.tmp / f"cut-{n}.ykb"
        path.write_bytes(data[:n])
        refused(f, path, "truncated" if n else "empty")


@pytest.mark.slow
def test_unknown_device_is_refused(field: Field) -> None:
    f = field
    stranger = f.tmp / "stranger"
    yn(stranger, "keys", "trust-hq", f.tmp / "hq.pub")
    collect_in(stranger, f.tmp, "Ак-Суу")
    bundle = f.bundle(stranger)
    out = refused(f, bundle, "unknown device")
    assert device_id(stranger) in out


@pytest.mark.slow
def test_bundle_signed_by_another_key_is_refused(sent: tuple[Field, Path]) -> None:
    f, bundle = sent
    impostor = keys.load_or_create_device_identity(f.tmp / "impostor")
    data = bundle.read_bytes()
    forged = f.tmp / "forged.ykb"
    forged.write_bytes(data[:-64] + impostor.signing_key.sign(data[:-64]).signature)
    refused(f, forged, "signature does not match")


@pytest.mark.slow
def test_bundle_for_another_hq_is_refused(field: Field) -> None:
    f = field
    yn(f.tmp / "hq2", "hq", "init", "-o", f.tmp / "hq2.pub")
    yn(f.a, "keys", "trust-hq", f.tmp / "hq2.pub", "--replace")
    collect_in(f.a, f.tmp, "Ак-Суу")
    refused(f, f.bundle(f.a), "addressed to HQ")


@pytest.mark.slow
def test_oversized_payload_is_refused(
    sent: tuple[Field, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    f, bundle = sent
    monkeypatch.setattr(container, "DEFAULT_MAX_PAYLOAD", 100)  # refused before decrypting
    refused(f, bundle, "larger than the limit")
    # Refused while inflating: the sealed JSON (about 6 kB) is above the bound, and the
    # ciphertext (about 2.2 kB) within it.
    monkeypatch.setattr(container, "DEFAULT_MAX_PAYLOAD", 2500)
    refused(f, bundle, "expands to more than 2500 bytes")
    monkeypatch.undo()
    assert "2 new" in f.import_(bundle)


# -- records that a genuine device signs but HQ must not merge -----------------------------


@pytest.mark.slow
def test_record_naming_another_device_is_refused(field: Field) -> None:
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")

    def other_device(records: list[dict]) -> None:
        records[0]["device_id"] = device_id(f.b)

    record_refused(f, resign(f, f.a, other_device, "x.ykb"), "signed by")


def test_answers_not_matching_the_revision_hash_are_refused(field: Field) -> None:
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")

    def tamper(records: list[dict]) -> None:
        records[0]["answers"]["village"] = "Ош"

    record_refused(f, resign(f, f.a, tamper, "x.ykb"), "do not match")


@pytest.mark.slow
def test_device_cannot_overwrite_another_devices_submission(field: Field) -> None:
    f = field
    uid = collect_in(f.b, f.tmp, "Нарын")
    f.import_(f.bundle(f.b))
    collect_in(f.a, f.tmp, "Ак-Суу")

    def hijack(records: list[dict]) -> None:
        from yntymak_cli.sync.hq import revision_hash

        rec = records[0]
        rec.update(uuid=uid, revision=2)
        rec["hash"] = revision_hash(rec)

    record_refused(f, resign(f, f.a, hijack, "x.ykb"), "belongs to device")
    (row,) = rows(f.hq, "SELECT * FROM submissions WHERE uuid = ?", uid)
    assert row["revision"] == 1 and json.loads(row["answers"])["village"] == "Нарын"


# -- receipts --------------------------------------------------------------------------------


@pytest.mark.slow
def test_tampered_or_misdirected_receipts_are_refused(field: Field) -> None:
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    collect_in(f.b, f.tmp, "Нарын")
    a1, b1 = f.bundle(f.a), f.bundle(f.b)
    f.import_(a1, b1)
    receipt = f.receipt(a1).read_bytes()
    for i in (0, 5, len(receipt) // 2, len(receipt) - 1):
        raw = bytearray(receipt)
        raw[i] ^= 0x01
        bad = f.tmp / f"bad-{i}.ykr"
        bad.write_bytes(bytes(raw))
        yn(f.a, "bundle", "ack", bad, code=2)
    out = yn(f.a, "bundle", "ack", f.receipt(b1), code=2)
    assert "for device" in out
    # A receipt signed by another HQ.
    other = keys.create_hq_identity(f.tmp / "hq2")
    doc = json.loads(receipt[9:-64])
    fake = f.tmp / "fake.ykr"
    fake.write_bytes(container.sign_receipt({**doc, "hq_fingerprint": other.fingerprint}, other))
    assert "signature" in yn(f.a, "bundle", "ack", fake, code=2)
    # Nothing was acknowledged: the next bundle carries the submission again.
    assert rows(f.a, "SELECT synced_at FROM revisions") == [{"synced_at": None}]
    assert "Nothing to send" not in yn(f.a, "bundle", "create", "-o", f.tmp)
    assert "Acknowledged 1 revision(s)" in yn(f.a, "bundle", "ack", f.receipt(a1))


# -- what an enrolled but malicious (or broken) device could sign ---------------------------


def _reseal(f: Field, home: Path, name: str, change=None, **header_changes: Any) -> Path:
    """Like resign, but seals with any header (build_bundle refuses out-of-range ones)."""
    header, payload, device, hq_identity = open_genuine(f, home)
    if change is not None:
        change(payload)
    header = {**header, "bundle_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", **header_changes}
    payload["manifest"] = container.build_manifest(payload["submissions"])
    path = f.tmp / name
    path.write_bytes(container._seal_bundle(header, payload, device, hq_identity.public()))
    return path


@pytest.mark.slow
def test_seq_too_large_for_sqlite_is_refused_and_others_still_import(field: Field) -> None:
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    big = _reseal(f, f.a, "big.ykb", seq=2**63, prev_hash="0" * 64)
    collect_in(f.b, f.tmp, "Нарын")
    good = f.bundle(f.b)
    out = f.import_(big, good, code=2)
    assert f"{big}: refused: malformed bundle header: seq must be" in out
    assert f"{good}: 1 new" in out


@pytest.mark.slow
def test_status_gaps_are_bounded_for_a_huge_seq(field: Field) -> None:
    from yntymak_cli.sync import hq as hq_mod

    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    f.import_(_reseal(f, f.a, "far.ykb", seq=2_000_000, prev_hash="0" * 64))
    (dev,) = [d for d in json.loads(yn(f.hq, "hq", "status", "--json"))["devices"]
              if d["device_id"] == device_id(f.a)]  # fmt: skip
    assert dev["gaps"] == list(range(1, hq_mod.MAX_GAPS_LISTED + 1))
    assert dev["gaps_total"] == 2_000_000 - 1  # bundle 1 never reached HQ
    assert "and 1999979 more" in yn(f.hq, "hq", "status", env={"COLUMNS": "400"})


def test_gaps_count_every_missing_seq() -> None:
    from yntymak_cli.sync.hq import _gaps

    assert _gaps([]) == ([], 0)
    assert _gaps([1, 2, 3]) == ([], 0)
    assert _gaps([5, 2, 2]) == ([1, 3, 4], 3)


def _select_without_list(payload: dict) -> None:
    """Point a select_one at a choice list the definition lacks, keeping hashes consistent."""
    import hashlib

    from yntymak_cli.canonical import canonical_text
    from yntymak_cli.sync.hq import revision_hash

    form = payload["forms"][0]
    form["version"] = "evil"
    q = next(q for q in form["questions"] if str(q.get("type", "")).startswith("select_one"))
    q["type"] = "select_one no_such_list"
    form_hash = hashlib.sha256(canonical_text(form).encode("utf-8")).hexdigest()
    for rec in payload["submissions"]:
        rec.update(form_version="evil", form_hash=form_hash)
        rec["hash"] = revision_hash(rec)


@pytest.mark.slow
def test_form_definition_failing_validation_is_refused(field: Field) -> None:
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    out = record_refused(f, _reseal(f, f.a, "form.ykb", _select_without_list), "definition")
    assert "no_such_list" in out


@pytest.mark.slow
def test_form_definition_without_utf8_form_is_refused(field: Field) -> None:
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    genuine = _reseal(f, f.a, "g.ykb")
    hq_identity = keys.load_hq_identity(f.hq)
    device = keys.load_or_create_device_identity(f.a)
    from yntymak_cli.sync import hq as hq_mod

    store = hq_db(f.hq)
    try:
        header, payload = container.open_bundle(
            genuine.read_bytes(), hq_mod.device_lookup(store), hq_identity
        )
    finally:
        store.close()
    payload["forms"][0]["title"] = "\ud800"  # sorts after the form fields it might replace
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    raw = text.replace("\ud800", "\\ud800").encode("utf-8")  # the JSON escape, valid UTF-8
    bad = f.tmp / "surrogate.ykb"
    bad.write_bytes(seal_raw(header, raw, device, hq_identity.public()))
    refused(f, bad, "canonical")


@pytest.mark.slow
def test_file_larger_than_any_bundle_is_refused_unread(
    sent: tuple[Field, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    f, bundle = sent
    monkeypatch.setattr(container, "MAX_BUNDLE_FILE_SIZE", 100)
    out = refused(f, bundle, "larger than any bundle")
    assert "Traceback" not in out
    monkeypatch.undo()
    assert "2 new" in f.import_(bundle)
