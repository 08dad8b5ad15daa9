"""Keys, bundle and receipt containers: round trips, and refusal of every damaged or forged file."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import struct
import sys
import threading
import tracemalloc
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from yntymak_cli.canonical import canonical_bytes
from yntymak_cli.errors import InvalidInput, YntymakError
from yntymak_cli.sync import container as c
from yntymak_cli.sync import keys as k
from yntymak_cli.sync.container import BundleError

from .helpers import frame, seal_raw

UUID1 = "0b6f2f3e-5d7c-4a1e-9c55-2f7f1a3e9b01"
UUID2 = "7d1c2b9a-0e4f-4b6a-8d3c-1a2b3c4d5e6f"
FP_RE = re.compile(r"[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}")


def record(uid: str = UUID1, revision: int = 1, **answers: Any) -> dict[str, Any]:
    return {
        "uuid": uid,
        "revision": revision,
        "form_id": "village_safety",
        "status": "final",
        "device_id": "x",
        "answers": answers or {"village": "Ак-Суу", "incidents": 2},
    }


def payload_of(*records: dict[str, Any]) -> dict[str, Any]:
    return {"forms": [{"id": "village_safety", "version": "1"}], "submissions": list(records)}


def sealed_of(*records: dict[str, Any]) -> dict[str, Any]:
    """The sealed document build_bundle makes of payload_of(*records)."""
    return {
        **payload_of(*records),
        "counts": {"forms": 1, "submissions": len(records)},
        "manifest": c.build_manifest(list(records)),
    }


CLEAR_HEADER_KEYS = {
    "format_version",
    "bundle_id",
    "device_id",
    "seq",
    "prev_hash",
    "created_at",
    "hq_fingerprint",
}


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> k.DeviceIdentity:
    return k.load_or_create_device_identity(tmp_path_factory.mktemp("device"))


@pytest.fixture(scope="module")
def other_device(tmp_path_factory: pytest.TempPathFactory) -> k.DeviceIdentity:
    return k.load_or_create_device_identity(tmp_path_factory.mktemp("other-device"))


@pytest.fixture(scope="module")
def hq(tmp_path_factory: pytest.TempPathFactory) -> k.HqIdentity:
    return k.create_hq_identity(tmp_path_factory.mktemp("hq"))


@pytest.fixture(scope="module")
def other_hq(tmp_path_factory: pytest.TempPathFactory) -> k.HqIdentity:
    return k.create_hq_identity(tmp_path_factory.mktemp("other-hq"))


@pytest.fixture(scope="module")
def bundle(device: k.DeviceIdentity, hq: k.HqIdentity) -> bytes:
    return c.build_bundle({"seq": 1, "prev_hash": None}, payload_of(record()), device, hq.public())


def v2_bundle(device: k.DeviceIdentity, hq: k.HqIdentity, *records: dict[str, Any]) -> bytes:
    """A bundle of format 2 with an empty media section: laptops write format 1 when they
    send no media, but HQ reads this as well (what a laptop of the media branch wrote)."""
    header = {**raw_header(device, hq), "format_version": 2}
    doc = sealed_of(*(records or (record(),)))
    doc["media"] = {"key": base64.b64encode(os.urandom(32)).decode(), "files": []}
    return c._seal_bundle(header, doc, device, hq.public())


@pytest.fixture(scope="module")
def bundle_v2(device: k.DeviceIdentity, hq: k.HqIdentity) -> bytes:
    return v2_bundle(device, hq)


@pytest.fixture(scope="module")
def receipt(device: k.DeviceIdentity, hq: k.HqIdentity) -> bytes:
    return c.sign_receipt(
        {
            "bundle_id": "3c1d8f7e-2b4a-4c6d-9e8f-0a1b2c3d4e5f",
            "device_id": device.device_id,
            "seq": 1,
            "accepted": [{"uuid": UUID1, "revision": 1}],
        },
        hq,
    )


def lookup_for(*devices: k.DeviceIdentity):
    table = {d.device_id: d.verify_key_bytes for d in devices}
    return table.get


def refused(reason: str | None, fn, *args, **kwargs) -> BundleError:
    with pytest.raises(BundleError) as info:
        fn(*args, **kwargs)
    err = info.value
    assert err.reason in c.REASONS
    assert "\n" not in str(err) and str(err)
    if reason is not None:
        assert err.reason == reason, str(err)
    return err


def sections(data: bytes) -> list[tuple[int, bytes]]:
    """Independent reader of the documented layout, to craft malformed files."""
    pos, out = 4, []
    while len(data) - pos > 64:
        tag, length = struct.unpack_from(">BI", data, pos)
        out.append((tag, data[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    return out


# -- identities and key files --------------------------------------------------------------


def test_fingerprint_format_and_known_value() -> None:
    # sha256(b"") starts e3b0c44298fc1c14
    assert k.fingerprint(b"") == "E3B0-C442-98FC-1C14"
    assert FP_RE.fullmatch(k.fingerprint(os.urandom(32)))


def test_device_identity_is_stable_and_derived_from_key(tmp_path: Path) -> None:
    first = k.load_or_create_device_identity(tmp_path)
    again = k.load_or_create_device_identity(tmp_path)
    assert again.device_id == first.device_id
    assert again.verify_key_bytes == first.verify_key_bytes
    assert re.fullmatch(r"[a-z2-7]{16}", first.device_id)
    expected = base64.b32encode(hashlib.sha256(first.verify_key_bytes).digest()[:10])
    assert first.device_id == expected.decode().lower()
    assert first.fingerprint == k.fingerprint(first.verify_key_bytes)
    assert FP_RE.fullmatch(first.fingerprint)
    assert k.load_or_create_device_identity(tmp_path / "elsewhere").device_id != first.device_id


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_secret_key_files_are_private(tmp_path: Path) -> None:
    k.load_or_create_device_identity(tmp_path)
    k.create_hq_identity(tmp_path)
    names = ["device.key", "device_box.key", "hq.key"]
    for name in names:
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no temps


def test_racing_creators_end_with_one_key(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    ids: list[str] = []

    def create() -> None:
        barrier.wait()
        ids.append(k.load_or_create_device_identity(tmp_path).device_id)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert k.load_or_create_device_identity(tmp_path).device_id == ids[0]


def test_losing_a_creation_race_keeps_the_winners_key(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    assert k._create_secret_file(path, b"winner")
    assert not k._create_secret_file(path, b"loser")
    assert path.read_bytes() == b"winner"
    assert [p.name for p in tmp_path.iterdir()] == ["device.key"]


def test_damaged_device_key_is_refused_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "device.key").write_text("{}")
    with pytest.raises(InvalidInput, match="device.key"):
        k.load_or_create_device_identity(tmp_path)
    assert (tmp_path / "device.key").read_text() == "{}"


def test_hq_identity_create_once_and_reload(tmp_path: Path) -> None:
    with pytest.raises(YntymakError, match="no HQ key"):
        k.load_hq_identity(tmp_path)
    created = k.create_hq_identity(tmp_path)
    with pytest.raises(YntymakError, match="already exists"):
        k.create_hq_identity(tmp_path)
    loaded = k.load_hq_identity(tmp_path)
    assert loaded.public() == created.public()
    pub = created.public()
    assert pub.fingerprint == k.fingerprint(pub.sign_key + pub.box_key)
    assert FP_RE.fullmatch(pub.fingerprint)


def test_public_key_files_round_trip(tmp_path: Path, device: k.DeviceIdentity, hq) -> None:
    k.write_device_public(tmp_path / "device.pub", device.public())
    assert k.read_device_public(tmp_path / "device.pub") == device.public()
    data = json.loads((tmp_path / "device.pub").read_text())
    assert data["format"] == "yntymak-device-pub" and data["version"] == 2
    k.write_hq_public(tmp_path / "hq.pub", hq.public())
    assert k.read_hq_public(tmp_path / "hq.pub") == hq.public()


def test_trusting_an_hq(tmp_path: Path, hq: k.HqIdentity, other_hq: k.HqIdentity) -> None:
    assert k.load_trusted_hq(tmp_path) is None
    k.trust_hq(tmp_path, hq.public())
    k.trust_hq(tmp_path, hq.public())  # same HQ again is fine
    assert k.load_trusted_hq(tmp_path) == hq.public()
    with pytest.raises(YntymakError, match=hq.public().fingerprint):
        k.trust_hq(tmp_path, other_hq.public())
    assert k.load_trusted_hq(tmp_path) == hq.public()
    k.trust_hq(tmp_path, other_hq.public(), replace=True)
    assert k.load_trusted_hq(tmp_path) == other_hq.public()


def _device_pub(device: k.DeviceIdentity) -> dict[str, Any]:
    return {
        "format": "yntymak-device-pub",
        "version": 1,
        "device_id": device.device_id,
        "sign_key": base64.b64encode(device.verify_key_bytes).decode(),
        "fingerprint": device.fingerprint,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="yntymak-hq-pub"), "HQ public key"),
        (lambda d: d.update(format="something"), "not a device public key"),
        (lambda d: d.update(version=3), "version 3 is not supported"),
        (lambda d: d.update(version=2), "missing box_key, box_signature"),
        (lambda d: d.update(version="1"), "not supported"),
        (lambda d: d.update(sign_key="not base64!"), "not valid base64"),
        (lambda d: d.update(sign_key=base64.b64encode(b"x" * 31).decode()), "32 bytes"),
        (lambda d: d.update(sign_key=base64.b64encode(os.urandom(32)).decode()), "device_id"),
        (lambda d: d.update(device_id="aaaaaaaaaaaaaaaa"), "device_id"),
        (lambda d: d.update(fingerprint="0000-0000-0000-0000"), "fingerprint"),
        (lambda d: d.update(comment="hi"), "unexpected comment"),
        (lambda d: d.pop("sign_key"), "missing sign_key"),
    ],
)
def test_malformed_device_pub_is_refused(tmp_path: Path, device, change, message) -> None:
    data = _device_pub(device)
    change(data)
    path = tmp_path / "device.pub"
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidInput, match=re.escape(message)) as info:
        k.read_device_public(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1, 2]", b"\xff\xfe", b'{"format": "a", "format": "b"}', b"{" * 5000],
)
def test_garbage_public_key_files_are_refused(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "hq.pub"
    path.write_bytes(raw)
    with pytest.raises(InvalidInput, match="hq.pub"):
        k.read_hq_public(path)


def test_hq_pub_with_swapped_box_key_is_refused(tmp_path: Path, hq, other_hq) -> None:
    path = tmp_path / "hq.pub"
    k.write_hq_public(path, hq.public())
    data = json.loads(path.read_text())
    data["box_key"] = base64.b64encode(other_hq.public().box_key).decode()
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidInput, match="hq_id"):
        k.read_hq_public(path)


# -- round trips ---------------------------------------------------------------------------


def test_bundle_round_trip(bundle: bytes, device: k.DeviceIdentity, hq: k.HqIdentity) -> None:
    header, payload = c.open_bundle(bundle, lookup_for(device), hq)
    assert set(header) == CLEAR_HEADER_KEYS
    assert header["device_id"] == device.device_id
    assert header["hq_fingerprint"] == hq.fingerprint
    assert header["seq"] == 1 and header["prev_hash"] is None
    assert header["format_version"] == 1  # no media: the format earlier versions wrote
    # Counts and manifest travel sealed, beside the records they describe.
    assert payload == sealed_of(record())
    assert payload["counts"] == {"forms": 1, "submissions": 1}
    assert payload["manifest"] == [
        {"uuid": UUID1, "revision": 1, "status": "final", "sha256": c.record_hash(record())}
    ]
    assert c.inspect_bundle(bundle) == header
    assert bundle[:4] == b"YKB\x01"


def test_a_bundle_of_format_2_without_media_is_still_read(bundle_v2: bytes, device, hq) -> None:
    header, payload = c.open_bundle(bundle_v2, lookup_for(device), hq)
    assert header["format_version"] == 2 and bundle_v2[:4] == b"YKB\x02"
    assert payload["media"]["files"] == [] and len(base64.b64decode(payload["media"]["key"])) == 32
    assert {k_: v for k_, v in payload.items() if k_ != "media"} == sealed_of(record())


def test_a_bundle_names_no_submission_and_holds_no_answer_in_clear(device, hq) -> None:
    # Whoever copies a bundle in transit must learn no submission id: an enrolled device
    # could otherwise submit those uuids first and make HQ refuse the genuine bundle.
    records = [record(UUID1, village="Ак-Суу"), record(UUID2, 3, village="Жалал-Абад")]
    data = c.build_bundle({"seq": 1, "prev_hash": None}, payload_of(*records), device, hq.public())
    assert c.open_bundle(data, lookup_for(device), hq)[1]["submissions"] == records
    sha = {c.record_hash(r) for r in records}
    needles = [UUID1, UUID2, UUID1.replace("-", ""), UUID2.replace("-", ""), "Ак-Суу",
               "Жалал-Абад", *sha, "manifest", "counts", "submissions"]  # fmt: skip
    for needle in needles:
        for form in {needle, needle.upper()}:
            for encoded in (form.encode("utf-8"), form.encode("utf-16-be")):
                assert encoded not in data, needle
    assert uuid_bytes(UUID1) not in data and uuid_bytes(UUID2) not in data
    header = c.inspect_bundle(data)
    assert set(header) == CLEAR_HEADER_KEYS
    assert not {UUID1, UUID2} & set(map(str, header.values()))


def uuid_bytes(value: str) -> bytes:
    import uuid

    return uuid.UUID(value).bytes


def test_bundle_chain_and_prev_hash(bundle: bytes, device, hq) -> None:
    prev = c.bundle_file_hash(bundle)
    assert prev == hashlib.sha256(bundle).hexdigest()
    second = c.build_bundle(
        {"seq": 2, "prev_hash": prev}, payload_of(record(UUID2)), device, hq.public()
    )
    header, _ = c.open_bundle(second, lookup_for(device), hq)
    assert header["prev_hash"] == prev
    with pytest.raises(ValueError, match="prev_hash"):
        c.build_bundle({"seq": 2, "prev_hash": None}, payload_of(), device, hq.public())


def test_build_bundle_refuses_inconsistent_input(device, hq) -> None:
    with pytest.raises(ValueError, match="manifest"):
        c.build_bundle(
            {"seq": 1, "prev_hash": None},
            {**payload_of(record()), "manifest": []},
            device,
            hq.public(),
        )
    # The manifest and counts of the old layout no longer fit in the clear header.
    for key in ("manifest", "counts"):
        with pytest.raises(ValueError, match=f"unexpected {key}"):
            c.build_bundle(
                {"seq": 1, "prev_hash": None, key: {}}, payload_of(record()), device, hq.public()
            )
    with pytest.raises(ValueError, match="repeats submission"):
        c.build_bundle(
            {"seq": 1, "prev_hash": None}, payload_of(record(), record()), device, hq.public()
        )


def test_receipt_round_trip(receipt: bytes, device: k.DeviceIdentity, hq: k.HqIdentity) -> None:
    opened = c.open_receipt(receipt, hq.public())
    assert opened["device_id"] == device.device_id
    assert opened["accepted"] == [{"uuid": UUID1, "revision": 1}]
    assert opened["hq_fingerprint"] == hq.fingerprint
    assert opened["format_version"] == 1 and opened["imported_at"].endswith("Z")
    assert receipt[:4] == b"YKR\x01"


def test_canonical_bytes_is_stable() -> None:
    assert canonical_bytes({"b": 1, "a": ["ы", 1.5]}) == '{"a":["ы",1.5],"b":1}'.encode()
    assert c.record_hash({"a": 1, "b": 2}) == c.record_hash({"b": 2, "a": 1})
    with pytest.raises(ValueError):
        canonical_bytes({"x": float("nan")})


# -- every damaged byte is refused ---------------------------------------------------------


def test_every_flipped_byte_of_a_bundle_is_refused(bundle: bytes, device, hq) -> None:
    lookup = lookup_for(device)
    assert len(bundle) < 1500  # keeps this exhaustive test fast
    for i in range(len(bundle)):
        for mask in (0x01, 0xFF):
            damaged = bytearray(bundle)
            damaged[i] ^= mask
            refused(None, c.open_bundle, bytes(damaged), lookup, hq)


def test_every_flipped_byte_of_a_receipt_is_refused(receipt: bytes, hq) -> None:
    for i in range(len(receipt)):
        for mask in (0x01, 0xFF):
            damaged = bytearray(receipt)
            damaged[i] ^= mask
            refused(None, c.open_receipt, bytes(damaged), hq.public())


def test_every_truncation_is_refused(bundle: bytes, receipt: bytes, device, hq) -> None:
    lookup = lookup_for(device)
    for n in range(len(bundle)):
        err = refused(None, c.open_bundle, bundle[:n], lookup, hq)
        assert err.reason == ("not-a-bundle" if n == 0 else "truncated")
    for n in range(1, len(receipt)):
        refused("truncated", c.open_receipt, receipt[:n], hq.public())


def test_trailing_garbage_is_refused(bundle: bytes, receipt: bytes, device, hq) -> None:
    refused("corrupted", c.open_bundle, bundle + b"\x00", lookup_for(device), hq)
    refused("corrupted", c.open_receipt, receipt + b"junk", hq.public())


def test_unknown_repeated_and_misordered_sections_are_refused(bundle_v2: bytes, device, hq) -> None:
    (h_tag, header), (p_tag, payload), (m_tag, media) = sections(bundle_v2)
    sign = device.signing_key
    lookup = lookup_for(device)
    cases = {
        "unknown section tag 0x09": [(h_tag, header), (0x09, b"x"), (p_tag, payload)],
        "repeated header": [(h_tag, header), (h_tag, header), (p_tag, payload)],
        "payload section where the header": [(p_tag, payload), (h_tag, header)],
        "repeated payload": [(h_tag, header), (p_tag, payload), (p_tag, media)],
    }
    for message, parts in cases.items():
        err = refused(
            "unexpected-member", c.open_bundle, frame(c.BUNDLE_MAGIC, parts, sign), lookup, hq
        )
        assert message in str(err)


def test_section_length_above_limit_is_refused(bundle: bytes, device, hq) -> None:
    huge = bundle[:5] + struct.pack(">I", c.MAX_HEADER_SIZE + 1) + bundle[9:]
    refused("too-large", c.open_bundle, huge, lookup_for(device), hq)
    beyond = bundle[:5] + struct.pack(">I", len(bundle)) + bundle[9:]
    refused("truncated", c.open_bundle, beyond, lookup_for(device), hq)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not-a-bundle"),
        (b"hello world, this is not a bundle at all" * 3, "not-a-bundle"),
        (os.urandom(300), "not-a-bundle"),
        (b"YKB\x03" + b"\x00" * 100, "unsupported-version"),
        (b"YKB\x00" + b"\x00" * 100, "unsupported-version"),
    ],
)
def test_not_a_bundle(data: bytes, reason: str, device, hq) -> None:
    if data[:3] == b"YKB":
        pass
    elif data[:2] == b"YK":  # random bytes could start like the magic; astronomically rare
        pytest.skip("random data looked like a magic")
    refused(reason, c.open_bundle, data, lookup_for(device), hq)
    with pytest.raises(BundleError):
        c.inspect_bundle(data)


def test_zip_file_and_receipt_are_not_bundles(receipt: bytes, device, hq) -> None:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", "{}")
    err = refused("not-a-bundle", c.open_bundle, buf.getvalue(), lookup_for(device), hq)
    assert "ZIP" in str(err)
    err = refused("not-a-bundle", c.open_bundle, receipt, lookup_for(device), hq)
    assert "receipt" in str(err)


def test_header_version_and_canonical_form_are_checked(device, hq) -> None:
    good = v2_bundle(device, hq)
    header = c.inspect_bundle(good)
    (_, _), (p_tag, payload), media = sections(good)
    pretty = json.dumps(header, indent=1).encode()
    forged = frame(c.BUNDLE_MAGIC, [(1, pretty), (p_tag, payload), media], device.signing_key)
    err = refused("corrupted", c.open_bundle, forged, lookup_for(device), hq)
    assert "canonical" in str(err)
    for magic, version, parts in (
        (c.BUNDLE_MAGIC, 3, [(p_tag, payload), media]),
        (c.BUNDLE_MAGIC, 1, [(p_tag, payload), media]),
        (c.BUNDLE_MAGIC_V1, 2, [(p_tag, payload)]),  # the version byte and the header agree
    ):
        other = canonical_bytes({**header, "format_version": version})
        forged = frame(magic, [(1, other), *parts], device.signing_key)
        refused("unsupported-version", c.open_bundle, forged, lookup_for(device), hq)


# -- who signed it and to whom -------------------------------------------------------------


def test_unknown_device_is_refused(bundle: bytes, hq) -> None:
    err = refused("unknown-device", c.open_bundle, bundle, lambda _id: None, hq)
    assert c.inspect_bundle(bundle)["device_id"] in str(err)


def test_signed_by_another_key_than_registered(bundle: bytes, device, other_device, hq) -> None:
    # HQ registered a different key under this device id: the signature must not verify.
    def lookup(device_id: str) -> bytes | None:
        return other_device.verify_key_bytes if device_id == device.device_id else None

    refused("bad-signature", c.open_bundle, bundle, lookup, hq)


def test_forgery_in_a_registered_devices_name(bundle: bytes, device, other_device, hq) -> None:
    # other_device re-signs a bundle that claims to be from `device`.
    forged = bundle[:-64] + other_device.signing_key.sign(bundle[:-64]).signature
    refused("bad-signature", c.open_bundle, forged, lookup_for(device, other_device), hq)


def test_revoked_device(bundle: bytes, device, other_device, hq) -> None:
    def revoked(device_id: str) -> c.RevokedDevice:
        return c.RevokedDevice(device.verify_key_bytes)

    refused("revoked-device", c.open_bundle, bundle, revoked, hq)
    forged = bundle[:-64] + other_device.signing_key.sign(bundle[:-64]).signature
    refused("bad-signature", c.open_bundle, forged, revoked, hq)


def test_verify_bundle_signature_checks_only_the_signature(
    bundle: bytes, device, other_device, hq, other_hq
) -> None:
    """What `hq serve` counts a device's rate by: the signature, without decrypting."""
    lookup = lookup_for(device)
    assert c.verify_bundle_signature(bundle, lookup) == c.inspect_bundle(bundle)
    flipped = bytearray(bundle)
    flipped[-1] ^= 0x01  # a byte of the signature
    refused("bad-signature", c.verify_bundle_signature, bytes(flipped), lookup)
    refused("unknown-device", c.verify_bundle_signature, bundle, lambda _id: None)
    refused("unknown-device", c.verify_bundle_signature, bundle, lookup_for(other_device))
    refused(
        "revoked-device",
        c.verify_bundle_signature,
        bundle,
        lambda _id: c.RevokedDevice(device.verify_key_bytes),
    )
    refused("truncated", c.verify_bundle_signature, bundle[:-10], lookup)
    refused("not-a-bundle", c.verify_bundle_signature, b"PK\x03\x04 zip", lookup)
    # Nothing past the signature: a bundle sealed to another HQ passes here, not in open.
    elsewhere = c.build_bundle(
        {"seq": 1, "prev_hash": None}, payload_of(record()), device, other_hq.public()
    )
    assert c.verify_bundle_signature(elsewhere, lookup)["hq_fingerprint"] != hq.fingerprint
    refused("wrong-hq", c.open_bundle, elsewhere, lookup, hq)


def test_bundle_for_another_hq(device, hq, other_hq) -> None:
    data = c.build_bundle(
        {"seq": 1, "prev_hash": None}, payload_of(record()), device, other_hq.public()
    )
    err = refused("wrong-hq", c.open_bundle, data, lookup_for(device), hq)
    assert other_hq.fingerprint in str(err) and hq.fingerprint in str(err)


def test_ciphertext_cannot_be_lifted_into_another_devices_bundle(
    bundle: bytes, bundle_v2: bytes, device, other_device, hq
) -> None:
    # other_device cannot decrypt, but could copy the ciphertext under its own signed header.
    for data, magic in ((bundle, c.BUNDLE_MAGIC_V1), (bundle_v2, c.BUNDLE_MAGIC)):
        (_, header), *rest = sections(data)
        own = {**json.loads(header), "device_id": other_device.device_id}
        lifted = frame(magic, [(1, canonical_bytes(own)), *rest], other_device.signing_key)
        err = refused("corrupted", c.open_bundle, lifted, lookup_for(device, other_device), hq)
        assert "does not belong" in str(err)


def test_receipt_from_another_hq(device, hq, other_hq) -> None:
    fake = c.sign_receipt(
        {
            "bundle_id": "3c1d8f7e-2b4a-4c6d-9e8f-0a1b2c3d4e5f",
            "device_id": device.device_id,
            "seq": 1,
            "accepted": [],
        },
        other_hq,
    )
    refused("bad-signature", c.open_receipt, fake, hq.public())
    # Signed by the trusted HQ but naming another one.
    doc = c.open_receipt(fake, other_hq.public())
    assert doc["hq_fingerprint"] == other_hq.fingerprint
    misnamed = frame(b"YKR\x01", [(3, canonical_bytes(doc))], hq.signing_key)
    refused("wrong-hq", c.open_receipt, misnamed, hq.public())


# -- payload checks after decryption -------------------------------------------------------


@pytest.mark.slow
def test_decompression_bomb_is_refused_without_allocating(device, hq) -> None:
    big = payload_of(record(note="0" * (50 * 1024 * 1024)))
    data = c.build_bundle({"seq": 1, "prev_hash": None}, big, device, hq.public())
    assert len(data) < 1024 * 1024  # 50 MB of JSON compresses to a small file
    tracemalloc.start()
    try:
        refused("too-large", c.open_bundle, data, lookup_for(device), hq, max_payload=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, peak


def test_payload_just_within_the_bound_opens(device, hq) -> None:
    data = c.build_bundle({"seq": 1, "prev_hash": None}, payload_of(record()), device, hq.public())
    size = len(canonical_bytes(c.open_bundle(data, lookup_for(device), hq)[1]))
    c.open_bundle(data, lookup_for(device), hq, max_payload=size)
    refused("too-large", c.open_bundle, data, lookup_for(device), hq, max_payload=size - 1)


def _inconsistent(device, hq, manifest_records, payload_records) -> bytes:
    header = {
        "format_version": 2,
        "bundle_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "device_id": device.device_id,
        "seq": 1,
        "prev_hash": None,
        "created_at": "2026-01-01T00:00:00Z",
        "hq_fingerprint": hq.fingerprint,
    }
    sealed = {**payload_of(*payload_records), "counts": {}}
    sealed["manifest"] = c.build_manifest(manifest_records)
    sealed["media"] = {"key": base64.b64encode(bytes(32)).decode(), "files": []}
    return c._seal_bundle(header, sealed, device, hq.public())


@pytest.mark.parametrize(
    ("in_manifest", "in_payload", "message"),
    [
        ([record()], [record(village="changed")], "does not match the manifest"),
        ([record()], [record(), record(UUID2)], "not listed in the manifest"),
        ([record(), record(UUID2)], [record()], "missing from the payload"),
        ([record()], [record(), record()], "appears twice"),
        ([record()], [record(revision=2)], "not listed in the manifest"),
        ([record()], [{**record(), "status": "void"}], "does not match the manifest"),
    ],
)
def test_manifest_payload_mismatch_is_corrupted(device, hq, in_manifest, in_payload, message):
    data = _inconsistent(device, hq, in_manifest, in_payload)
    err = refused("corrupted", c.open_bundle, data, lookup_for(device), hq)
    assert message in str(err)


def test_consistent_helper_bundle_opens(device, hq) -> None:
    # Control for the test above: the helper itself makes openable bundles.
    data = _inconsistent(device, hq, [record()], [record()])
    assert c.open_bundle(data, lookup_for(device), hq)[1]["submissions"] == [record()]


def test_bundle_error_is_invalid_input() -> None:
    err = BundleError("corrupted", "x")
    assert isinstance(err, InvalidInput) and err.exit_code == 2 and err.reason == "corrupted"


# -- payloads only a hand-made (or malicious) device would sign ----------------------------


def raw_header(device, hq, **changes: Any) -> dict[str, Any]:
    return {
        "format_version": 1,
        "bundle_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "device_id": device.device_id,
        "seq": 1,
        "prev_hash": None,
        "created_at": "2026-01-01T00:00:00Z",
        "hq_fingerprint": hq.fingerprint,
        **changes,
    }


def raw_payload(
    forms: bytes, records: list[bytes], counts: bytes = b"{}", manifest: bytes | None = None
) -> bytes:
    """The sealed document, with the manifest of records given as their exact bytes."""
    if manifest is None:
        entries = []
        for r in records:
            doc = json.loads(r)
            entries.append({k_: doc[k_] for k_ in ("uuid", "revision", "status")})
            entries[-1]["sha256"] = hashlib.sha256(r).hexdigest()
        manifest = canonical_bytes(entries)
    return (
        b'{"counts":' + counts + b',"forms":' + forms + b',"manifest":' + manifest
        + b',"submissions":[' + b",".join(records) + b"]}"
    )  # fmt: skip


def test_raw_helper_bundle_opens(device, hq) -> None:
    # Control for the tests below: canonical bytes through seal_raw open.
    rec = canonical_bytes(record())
    forms = canonical_bytes(payload_of()["forms"])
    data = seal_raw(raw_header(device, hq), raw_payload(forms, [rec]), device, hq.public())
    assert c.open_bundle(data, lookup_for(device), hq)[1]["submissions"] == [record()]


@pytest.mark.parametrize(
    ("counts", "manifest", "message"),
    [
        (b'{"forms":-1}', None, "counts must map names to non-negative integers"),
        (b'{"forms":true}', None, "counts must map names to non-negative integers"),
        (b"[]", None, "counts must map"),
        (None, b"{}", "manifest is not a list"),
        (None, b'[{"revision":1,"status":"final","uuid":"' + UUID1.encode() + b'"}]',
         "manifest[0]: missing sha256"),
        (None, b'[{"revision":1,"sha256":"' + b"0" * 64 + b'","status":"final","uuid":"X"}]',
         "manifest[0].uuid is not a lowercase UUID"),
        (None, b'[{"revision":1,"sha256":"abc","status":"final","uuid":"' + UUID1.encode() + b'"}]',
         "manifest[0].sha256 is not a sha256 hex digest"),
        # Sealed, yet still one spelling only.
        (b'{"forms": 1}', None, "canonical"),
        (None, b" " + canonical_bytes(c.build_manifest([record()])), "canonical"),
    ],
)  # fmt: skip
def test_malformed_sealed_counts_and_manifest(device, hq, counts, manifest, message) -> None:
    rec = canonical_bytes(record())
    forms = canonical_bytes(payload_of()["forms"])
    raw = raw_payload(forms, [rec], counts=counts or b"{}", manifest=manifest)
    data = seal_raw(raw_header(device, hq), raw, device, hq.public())
    err = refused("corrupted", c.open_bundle, data, lookup_for(device), hq)
    assert message in str(err)


def test_payload_of_the_old_layout_is_refused(device, hq) -> None:
    # Before the manifest was sealed the payload held forms and submissions only.
    rec = canonical_bytes(record())
    forms = canonical_bytes(payload_of()["forms"])
    old = b'{"forms":' + forms + b',"submissions":[' + rec + b"]}"
    data = seal_raw(raw_header(device, hq), old, device, hq.public())
    err = refused("corrupted", c.open_bundle, data, lookup_for(device), hq)
    assert "missing counts, manifest" in str(err)
    # A header still carrying a manifest is refused before anything is decrypted.
    (_, header), (p_tag, payload), media = sections(v2_bundle(device, hq))
    leaky = {**json.loads(header), "manifest": c.build_manifest([record()])}
    forged = frame(
        c.BUNDLE_MAGIC, [(1, canonical_bytes(leaky)), (p_tag, payload), media], device.signing_key
    )
    err = refused("corrupted", c.open_bundle, forged, lookup_for(device), hq)
    assert "unexpected manifest" in str(err)
    with pytest.raises(BundleError, match="unexpected manifest"):
        c.inspect_bundle(forged)


@pytest.mark.parametrize(
    ("forms", "rec"),
    [
        # A duplicate key in a record: parsers disagree on which value wins.
        (None, canonical_bytes(record()).replace(b'{"incidents"', b'{"incidents":1,"incidents"')),
        # A lone surrogate in a form definition (not hashed in the manifest): no UTF-8 form,
        # so HQ could neither hash nor store it.
        (b'[{"id":"village_safety","version":"\\ud800"}]', None),
        # Another spelling of the same content.
        (None, canonical_bytes(record()).replace(b'"revision":1', b'"revision": 1')),
        (None, canonical_bytes(record()).replace(b'"incidents":2', b'"incidents":2.0e0')),
    ],
)
def test_payload_must_be_canonical_json(device, hq, forms, rec) -> None:
    rec = rec or canonical_bytes(record())
    forms = forms or canonical_bytes(payload_of()["forms"])
    data = seal_raw(raw_header(device, hq), raw_payload(forms, [rec]), device, hq.public())
    err = refused("corrupted", c.open_bundle, data, lookup_for(device), hq)
    assert "canonical" in str(err)


@pytest.mark.parametrize("field", ["seq", "revision"])
def test_seq_and_revision_beyond_sqlite_integers_are_refused(device, hq, field) -> None:
    big = 2**63
    rec = canonical_bytes(record(revision=big if field == "revision" else 1))
    changes = {"seq": big, "prev_hash": "0" * 64} if field == "seq" else {}
    header = raw_header(device, hq, **changes)
    data = seal_raw(header, raw_payload(canonical_bytes([]), [rec]), device, hq.public())
    err = refused("corrupted", c.open_bundle, data, lookup_for(device), hq)
    assert f"from 1 to {c.MAX_COUNTER}" in str(err)
    with pytest.raises(ValueError):
        c.build_bundle(
            {"seq": c.MAX_COUNTER + 1, "prev_hash": "0" * 64}, payload_of(), device, hq.public()
        )


# -- format 2: the media section -----------------------------------------------------------


def _media_files(tmp_path: Path) -> list[tuple[c.MediaEntry, Path]]:
    """Two files: one of several chunks (the last one short), one of a single byte."""
    out = []
    for name, data in (("big.bin", os.urandom(2 * 1024 * 1024 + 5)), ("one.bin", b"x")):
        path = tmp_path / name
        path.write_bytes(data)
        entry = c.MediaEntry(hashlib.sha256(data).hexdigest(), len(data), "application/x")
        out.append((entry, path))
    return out


def _with_media(tmp_path: Path, device, hq, files) -> bytes:
    buffer = BytesIO()
    c.write_bundle(
        buffer, {"seq": 1, "prev_hash": None}, payload_of(record()), device, hq.public(), files
    )
    return buffer.getvalue()


def test_media_files_round_trip_a_chunk_at_a_time(tmp_path: Path, device, hq) -> None:
    files = _media_files(tmp_path)
    data = _with_media(tmp_path, device, hq, files)
    path = tmp_path / "b.ykb"
    path.write_bytes(data)
    with path.open("rb") as f:  # read from the file, as hq import does
        opened = c.open_bundle_container(f, lookup_for(device), hq)
        assert [e.doc() for e in opened.media] == opened.payload["media"]["files"]
        got = []
        for entry, chunks in opened.media_files():
            pieces = list(chunks)
            assert max(len(p) for p in pieces) <= 1024 * 1024
            got.append((entry, b"".join(pieces)))
    assert [(e, d) for e, d in got] == [(e, p.read_bytes()) for e, p in files]
    assert c.bundle_file_hash(data) == c.bundle_file_hash(BytesIO(data))


def test_media_chunks_cannot_be_moved_or_cut(tmp_path: Path, device, hq) -> None:
    """Signed anew by the device itself, a reordered or shortened section still fails."""
    from yntymak_cli.sync.media_section import MediaMismatch

    files = _media_files(tmp_path)
    data = _with_media(tmp_path, device, hq, files)
    (h_tag, header), (p_tag, payload), (m_tag, media) = sections(data)
    first = 1024 * 1024 + 16
    swapped = media[first : 2 * first] + media[:first] + media[2 * first :]
    forged = frame(c.BUNDLE_MAGIC, [(h_tag, header), (p_tag, payload), (m_tag, swapped)],
                   device.signing_key)  # fmt: skip
    opened = c.open_bundle_container(forged, lookup_for(device), hq)
    with pytest.raises(MediaMismatch, match="does not decrypt"):
        for _entry, chunks in opened.media_files():
            list(chunks)
    cut = frame(c.BUNDLE_MAGIC, [(h_tag, header), (p_tag, payload), (m_tag, media[:-1])],
                device.signing_key)  # fmt: skip
    err = refused("corrupted", c.open_bundle, cut, lookup_for(device), hq)
    assert "media" in str(err)


def test_a_file_changed_on_disk_is_not_packed(tmp_path: Path, device, hq) -> None:
    files = _media_files(tmp_path)
    files[1][1].write_bytes(b"y")
    with pytest.raises(ValueError, match="changed on disk"):
        _with_media(tmp_path, device, hq, files)


def test_payload_and_media_share_the_size_limit(
    tmp_path: Path, device, hq, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _media_files(tmp_path)
    monkeypatch.setattr(c, "MAX_CONTENT_SIZE", 2 * 1024 * 1024)
    with pytest.raises(ValueError, match="2 media file.* take 2 MB, more than one bundle holds"):
        _with_media(tmp_path, device, hq, files)


# -- a file that changes between reads (review B1) -----------------------------------------


class ChangingFile:
    """A file whose bytes change between reads, as a network or FUSE file system, a synced
    folder or a hostile USB device can make them: each byte reads as in `first` the first
    time and as in `later` every time after (both the same length)."""

    def __init__(self, first: bytes, later: bytes) -> None:
        assert len(first) == len(later)
        self.first, self.later, self.pos, self.high = first, later, 0, 0
        self.reread = False

    def seek(self, pos: int, whence: int = 0) -> int:
        base = (0, self.pos, len(self.first))[whence]
        self.pos = base + pos
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        start = self.pos
        end = len(self.first) if n < 0 else min(len(self.first), start + n)
        split = max(start, min(self.high, end))
        self.reread = self.reread or split > start
        self.high, self.pos = max(self.high, end), max(start, end)
        return self.later[start:split] + self.first[split:end]


def _sealed_pair(version: int, device, hq) -> tuple[bytes, bytes]:
    """(a bundle the device signed, a forgery of the same length: the same header and
    signature over another payload, sealed to HQ by anyone)."""
    import zlib

    from nacl.public import PublicKey, SealedBox

    header = canonical_bytes(
        {
            "format_version": version,
            "bundle_id": UUID2,
            "device_id": device.device_id,
            "seq": 1,
            "prev_hash": None,
            "created_at": "2026-11-30T10:00:00Z",
            "hq_fingerprint": hq.fingerprint,
        }
    )
    box = SealedBox(PublicKey(hq.public().box_key))
    out = []
    for village in ("genuine", "FORGED!"):  # same length: zlib level 0 keeps it so
        doc = sealed_of(record(village=village, incidents=2))
        if version == 2:
            doc["media"] = {"key": base64.b64encode(bytes(32)).decode(), "files": []}
        plain = hashlib.sha256(header).digest() + zlib.compress(canonical_bytes(doc), 0)
        parts = [(1, header), (2, bytes(box.encrypt(plain)))]
        magic = c.BUNDLE_MAGIC if version == 2 else c.BUNDLE_MAGIC_V1
        if version == 2:
            parts.append((c.TAG_MEDIA, b""))
        out.append(frame(magic, parts, device.signing_key))
    genuine, forged = out
    assert len(genuine) == len(forged)
    return genuine, forged[: -c.SIGNATURE_SIZE] + genuine[-c.SIGNATURE_SIZE :]


@pytest.mark.parametrize("version", [1, 2])
def test_a_file_changing_between_reads_cannot_pass_a_forgery(version: int, device, hq) -> None:
    """The parser must authenticate the bytes it parsed: a forged header and payload read
    first, the genuine bytes served to any second read (the signature check, as before the
    fix), is refused."""
    genuine, forged = _sealed_pair(version, device, hq)
    lookup = lookup_for(device)
    assert c.open_bundle(genuine, lookup, hq)[1]["submissions"][0]["answers"]["village"] == (
        "genuine"
    )
    refused("bad-signature", c.open_bundle, forged, lookup, hq)
    refused("bad-signature", c.open_bundle_container, ChangingFile(forged, genuine), lookup, hq)
    refused("bad-signature", c.verify_bundle_signature, ChangingFile(forged, genuine), lookup)


@pytest.mark.parametrize("version", [1, 2])
def test_nothing_is_read_twice_before_the_signature_check(version: int, device, hq) -> None:
    """Every byte a second read would see is garbage: the signature and the payload still
    check, so both came from the one pass that parsed them; so does the chain's file hash."""
    genuine, _forged = _sealed_pair(version, device, hq)
    f = ChangingFile(genuine, bytes(len(genuine)))
    opened = c.open_bundle_container(f, lookup_for(device), hq)
    assert not f.reread
    assert opened.file_hash == hashlib.sha256(genuine).hexdigest() == c.bundle_file_hash(genuine)
    g = ChangingFile(genuine, bytes(len(genuine)))
    assert c.verify_bundle_signature(g, lookup_for(device))["bundle_id"] == UUID2
    assert not g.reread


def test_media_read_again_after_the_signature_check_must_still_authenticate(
    tmp_path: Path, device, hq
) -> None:
    """The media section is hashed in place, then read again to decrypt: bytes changed
    between the two reads fail their chunk's MAC, and the file hash is of the first read."""
    from yntymak_cli.sync.media_section import MediaMismatch

    data = _with_media(tmp_path, device, hq, _media_files(tmp_path))
    (_h, header), (_p, payload), (_m, media) = sections(data)
    at = len(data) - c.SIGNATURE_SIZE - len(media) + 100  # inside the first chunk
    later = data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
    f = ChangingFile(data, later)
    opened = c.open_bundle_container(f, lookup_for(device), hq)
    assert opened.file_hash == hashlib.sha256(data).hexdigest()
    with pytest.raises(MediaMismatch, match="does not decrypt"):
        for _entry, chunks in opened.media_files():
            list(chunks)


def test_a_file_that_grows_or_shrinks_while_read_is_refused(device, hq) -> None:
    """The size is taken before the one pass: bytes past it, or missing, are refused."""
    genuine, _forged = _sealed_pair(2, device, hq)

    class SizeLies(BytesIO):
        """Its first tell() (the size, at the end) is off by `delta`."""

        def __init__(self, data: bytes, delta: int) -> None:
            super().__init__(data)
            self.delta = delta

        def tell(self) -> int:
            pos, self.delta = super().tell() + self.delta, 0
            return pos

    grown, shrunk = SizeLies(genuine + b"x", -1), SizeLies(genuine[:-1], 1)
    refused("corrupted", c.verify_bundle_signature, grown, lookup_for(device))
    refused("truncated", c.verify_bundle_signature, shrunk, lookup_for(device))


# -- format 1 when no media travel (review, should-fix 1) ----------------------------------


def test_a_bundle_without_media_is_format_1_as_earlier_versions_wrote_it(
    bundle: bytes, tmp_path: Path, device, hq
) -> None:
    """So HQs without format 2 still read every laptop that sends no media."""
    import zlib

    from nacl.public import SealedBox

    assert bundle[:4] == b"YKB\x01"  # the old layout's magic and version byte
    (h_tag, header), (p_tag, payload) = sections(bundle)
    assert (h_tag, p_tag) == (1, 2)
    # Byte for byte main's writer: magic, framed header and payload, Ed25519 over them all.
    body = b"YKB\x01" + b"".join(struct.pack(">BI", t, len(b)) + b for t, b in sections(bundle))
    assert body + device.signing_key.sign(body).signature == bundle
    doc = json.loads(header)
    assert doc["format_version"] == 1 and header == canonical_bytes(doc)
    plain = SealedBox(hq.box_key).decrypt(payload)  # the four keys of format 1, zlib level 6
    assert plain == hashlib.sha256(header).digest() + zlib.compress(
        canonical_bytes(sealed_of(record())), 6
    )
    # bundle create's path (write_bundle into a file) writes the same layout and hashes it.
    _h, file_hash, size = c.write_bundle(
        out := BytesIO(), {"seq": 1, "prev_hash": None}, payload_of(record()), device, hq.public()
    )
    data = out.getvalue()
    assert data[:4] == b"YKB\x01" and len(sections(data)) == 2
    assert (file_hash, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert c.open_bundle(data, lookup_for(device), hq)[0]["format_version"] == 1
    with pytest.raises(ValueError, match="unexpected media"):
        c.build_bundle(
            {"seq": 1, "prev_hash": None},
            {**payload_of(record()), "media": {"key": "", "files": []}},
            device,
            hq.public(),
        )
    # A bundle that carries media files is format 2.
    with_media = _with_media(tmp_path, device, hq, _media_files(tmp_path))
    assert with_media[:4] == b"YKB\x02" and len(sections(with_media)) == 3
    assert c.inspect_bundle(with_media)["format_version"] == 2


# -- hostile media lists (review, should-fix 4) --------------------------------------------


def _listing(device, hq, media: Any) -> bytes:
    """A format 2 bundle the device signed whose sealed media list is `media` (an empty
    media section: the list is refused before the section is looked at)."""
    header = {**raw_header(device, hq), "format_version": 2}
    return c._seal_bundle(header, {**sealed_of(record()), "media": media}, device, hq.public())


def _file(sha: str = "ab" * 32, size: int = 10, media_type: str = "image/png") -> dict[str, Any]:
    return {"sha256": sha, "size": size, "media_type": media_type}


KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize(
    ("media", "detail"),
    [
        ({"key": KEY, "files": [_file(f"{i:064x}") for i in range(10_001)]}, "media.files must"),
        ({"key": KEY, "files": [_file(size=0)]}, "media.files[0].size must"),
        ({"key": KEY, "files": [_file(size=2**30 + 1)]}, "media.files[0].size must"),
        ({"key": KEY, "files": [_file(size=True)]}, "media.files[0].size must"),
        # Review nit: a repeated file says so, not "is not a sha256 hex digest".
        (
            {"key": KEY, "files": [_file(), _file()]},
            f"media.files[1].sha256 lists the file {'ab' * 32} a second time",
        ),
        ({"key": KEY, "files": [_file(sha="AB" * 32)]}, "media.files[0].sha256"),
        ({"key": KEY, "files": [_file(media_type="x" * 201)]}, "media.files[0].media_type"),
        # Review nit: a media type's characters are checked too, not only its length.
        *(
            (
                {"key": KEY, "files": [_file(media_type=bad)]},
                "media.files[0].media_type is not a media type",
            )
            for bad in (
                "image/png; charset=x",
                "image/png\n",
                "image/png\x1b[2J",
                "<script>/x",
                "image",
                "image/",
                "/png",
                "image/p ng",
                "ímage/png",
                "a/b/c",
                "",
                "x" * 101 + "/" + "y" * 100,
            )
        ),
        ({"key": KEY, "files": [{**_file(), "path": "/etc/passwd"}]}, "media.files[0]"),
        ({"key": KEY[:-4], "files": []}, "media.key"),
        ({"key": base64.b64encode(bytes(31)).decode(), "files": []}, "media.key"),
        ({"key": "not base64!", "files": []}, "media.key"),
        ({"key": None, "files": []}, "media.key"),
        ({"key": KEY, "files": {}}, "media.files must"),
        ({"key": KEY}, "media"),
        ([], "media"),
    ],
)
def test_a_hostile_media_list_is_refused(media: Any, detail: str, device, hq) -> None:
    """Signed by the device itself, so only the list's own checks stand in the way."""
    err = refused("corrupted", c.open_bundle, _listing(device, hq, media), lookup_for(device), hq)
    assert detail in str(err)


def test_a_listed_file_the_section_does_not_hold_is_refused(device, hq) -> None:
    data = _listing(device, hq, {"key": KEY, "files": [_file()]})  # an empty media section
    err = refused("corrupted", c.open_bundle, data, lookup_for(device), hq)
    assert "media" in str(err)


def test_payload_and_media_above_the_limit_are_refused_by_the_reader(
    tmp_path: Path, device, hq, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each section within its own limit, both together above MAX_CONTENT_SIZE."""
    data = _with_media(tmp_path, device, hq, _media_files(tmp_path))
    monkeypatch.setattr(c, "MAX_CONTENT_SIZE", len(data) - 2000)
    err = refused("too-large", c.verify_bundle_signature, data, lookup_for(device))
    assert "media" in str(err)
    refused("too-large", c.open_bundle, BytesIO(data), lookup_for(device), hq)


def test_a_flipped_ciphertext_byte_fails_its_chunk_mac() -> None:
    """Review nit: the per-chunk MAC itself, through media_section's decrypt API with the
    right key: any flipped byte of a chunk (its ciphertext or its 16-byte tag) fails, and
    the chunks before it still came out (a caller writes them to a temp file it drops)."""
    from nacl.secret import SecretBox

    from yntymak_cli.sync import media_section as ms

    data = os.urandom(ms.CHUNK_SIZE + 300)  # two chunks, the last one short
    entry = c.MediaEntry(hashlib.sha256(data).hexdigest(), len(data), "application/x")
    box = SecretBox(bytes(range(32)))
    section = b"".join(ms.encrypt_file(box, 0, entry, BytesIO(data)))
    assert b"".join(ms.decrypt_file(box, 0, entry, BytesIO(section))) == data
    first = ms.CHUNK_SIZE + ms.CHUNK_OVERHEAD
    for at in (0, 5, first - 1, first, len(section) - 17, len(section) - 1):
        flipped = section[:at] + bytes([section[at] ^ 0x80]) + section[at + 1 :]
        got: list[bytes] = []
        with pytest.raises(ms.MediaMismatch, match="does not decrypt"):
            for chunk in ms.decrypt_file(box, 0, entry, BytesIO(flipped)):
                got.append(chunk)
        assert len(got) == (0 if at < first else 1)


def test_a_chunk_moved_to_another_file_does_not_decrypt(tmp_path: Path, device, hq) -> None:
    """Two files of one chunk each, the same size: their chunks swapped, the device signing
    the result, each fails its MAC (the nonce names the file)."""
    from yntymak_cli.sync.media_section import MediaMismatch

    files = []
    for name in ("a.bin", "b.bin"):
        path = tmp_path / name
        path.write_bytes(os.urandom(100))
        data = path.read_bytes()
        files.append((c.MediaEntry(hashlib.sha256(data).hexdigest(), 100, "x/y"), path))
    data = _with_media(tmp_path, device, hq, files)
    (h_tag, header), (p_tag, payload), (m_tag, media) = sections(data)
    assert len(media) == 2 * 116
    swapped = media[116:] + media[:116]
    forged = frame(c.BUNDLE_MAGIC, [(h_tag, header), (p_tag, payload), (m_tag, swapped)],
                   device.signing_key)  # fmt: skip
    opened = c.open_bundle_container(forged, lookup_for(device), hq)
    with pytest.raises(MediaMismatch, match="does not decrypt"):
        for _entry, chunks in opened.media_files():
            list(chunks)
