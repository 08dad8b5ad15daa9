"""The byte format of sync bundles (.ykb) and receipts (.ykr). See docs/bundle-format.md.

A file is: 4-byte magic, a fixed sequence of (tag, length, bytes) sections, then an Ed25519
signature over every byte before it. Files arrive from USB sticks and messengers, so the
parser trusts nothing: it checks structure and bounds before it reads, and it verifies the
signature before it decrypts or decompresses anything.

The clear header holds only what HQ needs before decrypting (who, which seq, for which HQ);
the manifest (each submission's uuid, revision, status, sha256) and the counts are sealed
with the records, so a bundle lost in transit names no submission.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import struct
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

import nacl.exceptions
import nacl.utils
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.secret import SecretBox
from nacl.signing import VerifyKey

from yntymak_cli.canonical import SHA256_HEX_RE, canonical_bytes, canonical_text
from yntymak_cli.errors import InvalidInput
from yntymak_cli.i18n import current_lang, t
from yntymak_cli.sync import media_section
from yntymak_cli.sync.keys import KEY_SIZE, DeviceIdentity, HqIdentity, HqPublic, fields_text
from yntymak_cli.sync.media_section import MediaEntry

FORMAT_VERSION = 1  # receipts v1; bundles of format 1 (no media) are still read
# Bundles carry media files since format 2: a media section after the payload, and the
# signature over a digest of the file (so a bundle of many photos is signed and checked
# as a stream). The laptop writes 2 for a bundle that carries media files and 1, exactly
# as earlier versions did, for one that carries none (so only laptops that send media need
# an upgraded HQ); HQ reads 1 and 2.
BUNDLE_VERSION = 2
# Receipts that carry HQ's review decisions (or say some wait) are version 2; HQ still
# writes version 1 when there is nothing of the kind, so older laptops read those.
RECEIPT_VERSION = 2
BUNDLE_MAGIC_V1 = b"YKB" + bytes([FORMAT_VERSION])
BUNDLE_MAGIC = b"YKB" + bytes([BUNDLE_VERSION])
RECEIPT_MAGIC = b"YKR" + bytes([FORMAT_VERSION])
RECEIPT_MAGIC_V2 = b"YKR" + bytes([RECEIPT_VERSION])

TAG_HEADER = 0x01
TAG_PAYLOAD = 0x02
TAG_RECEIPT = 0x03
TAG_DECISIONS = 0x04  # receipt v2: decisions sealed to the device (empty body: none)
TAG_MEDIA = 0x05  # bundle v2: the media files, encrypted in chunks (sync/media_section.py)
# Bundle v2 signs this prefix and the sha256 of every byte before the signature: Ed25519
# needs its whole message at once, and a bundle of photos is streamed, never held whole.
SIGNED_DIGEST_PREFIX = b"yntymak bundle v2 sha256\0"

SIGNATURE_SIZE = 64
DIGEST_SIZE = 32  # sha256 of the header section, bound inside the encrypted payload
SEALED_BOX_OVERHEAD = 48  # ephemeral X25519 public key (32) + Poly1305 tag (16)

MAX_HEADER_SIZE = 64 * 1024  # the clear header is a few hundred bytes: ids, seq, chain
MAX_PAYLOAD_SECTION_SIZE = 1024 * 1024 * 1024
MAX_RECEIPT_SIZE = 16 * 1024 * 1024
MAX_DECISIONS_SIZE = 16 * 1024 * 1024  # the sealed decisions section of a receipt v2
MAX_REVIEW_COMMENT = 2000  # characters of a reviewer's comment
# Decision ids are at least HQ's clock in milliseconds (store/reviews.add_decision), so they
# keep growing after HQ's database is restored from a backup: below 2^53, exact in JSON.
MAX_DECISION_ID = 2**53 - 1
MAX_REVIEWER = 200  # characters of a reviewer's name
REVIEW_STATUSES = ("approved", "rejected", "on_hold")
# Decompressed payload JSON; HQ's import reads it at each call, so tests can lower it.
DEFAULT_MAX_PAYLOAD = 512 * 1024 * 1024
# seq and revision numbers: far above any real count, far below SQLite's 64-bit INTEGER (a
# larger number from a signed bundle would crash the merge) and small enough for gap lists.
MAX_COUNTER = 2**31 - 1
# The payload and media sections share this limit: the largest a bundle's content can be.
MAX_CONTENT_SIZE = MAX_PAYLOAD_SECTION_SIZE
# The largest file a bundle can be: magic, three framed sections (payload and media within
# MAX_CONTENT_SIZE together), signature.
MAX_BUNDLE_FILE_SIZE = 4 + 5 + MAX_HEADER_SIZE + 5 + 5 + MAX_CONTENT_SIZE + SIGNATURE_SIZE
ZLIB_LEVEL = 6

# File names: device id and sequence number, so a folder of bundles or receipts sorts by
# device and a file's name says which bundle it is (the device writes bundles, HQ receipts).
BUNDLE_SUFFIX = ".ykb"
RECEIPT_SUFFIX = ".ykr"


def bundle_name(device_id: str, seq: int) -> str:
    return f"{device_id}-{seq}{BUNDLE_SUFFIX}"


def receipt_name(device_id: str, seq: int) -> str:
    return f"{device_id}-{seq}{RECEIPT_SUFFIX}"


REASONS = frozenset(
    {
        "bad-signature",
        "unknown-device",
        "revoked-device",
        "wrong-hq",
        "corrupted",
        "truncated",
        "unsupported-version",
        "not-a-bundle",
        "too-large",
        "unexpected-member",
        "wrong-device",
        "replayed",
        "media-mismatch",
    }
)

# Exactly what str(uuid.UUID(value)) gives back: lowercase 8-4-4-4-12 hex.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DEVICE_ID = re.compile(r"[a-z2-7]{16}")
_FINGERPRINT = re.compile(r"[0-9A-F]{4}(-[0-9A-F]{4}){3}")
_ZIP_MAGIC = b"PK\x03\x04"


class BundleError(InvalidInput):
    """A bundle or receipt was refused. `reason` is a stable machine code (see REASONS)."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS, reason
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class RevokedDevice:
    """What a device key lookup returns for a device HQ has revoked.

    The key still checks the signature, so a genuine bundle from a revoked laptop is
    reported as "revoked-device" and a forgery in its name as "bad-signature".
    """

    verify_key: bytes


DeviceKeyLookup = Callable[[str], "bytes | RevokedDevice | None"]


# -- hashes --------------------------------------------------------------------------------


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


def build_manifest(submissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sealed payload's list of its records: (uuid, revision, status, sha256) each."""
    return [
        {
            "uuid": r["uuid"],
            "revision": r["revision"],
            "status": r["status"],
            "sha256": record_hash(r),
        }
        for r in submissions
    ]


def _reject_constant(name: str) -> Any:
    raise ValueError(t("bundle_detail_json_constant", current_lang(), name=name))


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(text: str, what: str) -> Any:
    """Parse JSON text; NaN and Infinity are refused.

    Duplicate keys are not looked for here: every signed document (header, receipt,
    payload) must also equal its canonical re-encoding, which a document with a duplicate
    key never does (the re-encoding holds the key once). That one C-speed comparison
    replaces a Python hook per object.
    """
    try:
        return _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise _not_json(what, exc) from None


def _decode_utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_json(what, exc) from None


def _not_json(kind: str, exc: Exception) -> BundleError:
    # The parser's own words (line, column, character) are data for whoever debugs the file.
    return BundleError(
        "corrupted", t("bundle_err_not_json", current_lang(), kind=_kind(kind), error=exc)
    )


# -- container layer -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    kind: str  # "bundle" or "receipt", for messages
    magic: bytes
    sections: tuple[tuple[int, str, int], ...]  # (tag, name, size limit) in file order


_BUNDLE_V1 = _Layout(
    "bundle",
    BUNDLE_MAGIC_V1,
    ((TAG_HEADER, "header", MAX_HEADER_SIZE), (TAG_PAYLOAD, "payload", MAX_PAYLOAD_SECTION_SIZE)),
)
_BUNDLE = _Layout(
    "bundle",
    BUNDLE_MAGIC,
    (
        (TAG_HEADER, "header", MAX_HEADER_SIZE),
        (TAG_PAYLOAD, "payload", MAX_PAYLOAD_SECTION_SIZE),
        (TAG_MEDIA, "media", MAX_CONTENT_SIZE),
    ),
)
_RECEIPT = _Layout("receipt", RECEIPT_MAGIC, ((TAG_RECEIPT, "receipt", MAX_RECEIPT_SIZE),))
_RECEIPT_V2 = _Layout(
    "receipt",
    RECEIPT_MAGIC_V2,
    ((TAG_RECEIPT, "receipt", MAX_RECEIPT_SIZE), (TAG_DECISIONS, "decisions", MAX_DECISIONS_SIZE)),
)
_KNOWN_TAGS = {
    TAG_HEADER: "header",
    TAG_PAYLOAD: "payload",
    TAG_RECEIPT: "receipt",
    TAG_DECISIONS: "decisions",
    TAG_MEDIA: "media",
}


def _assemble(layout: _Layout, sections: list[bytes]) -> bytes:
    parts = [layout.magic]
    for (tag, _name, _limit), body in zip(layout.sections, sections, strict=True):
        parts.append(struct.pack(">BI", tag, len(body)))
        parts.append(body)
    return b"".join(parts)


_KIND_KEYS = {
    "bundle": "sync_kind_bundle",
    "receipt": "sync_kind_receipt",
    "bundle header": "sync_kind_bundle_header",
    "bundle payload": "sync_kind_bundle_payload",
    "header": "sync_part_header",
    "payload": "sync_part_payload",
    "signature": "sync_part_signature",
    "decisions": "sync_part_decisions",
    "media": "sync_part_media",
}


def _kind(kind: str) -> str:
    """A kind of file or part ("bundle", "receipt"...) in the message language; the
    reason codes stay English."""
    return t(_KIND_KEYS[kind], current_lang()) if kind in _KIND_KEYS else kind


def _check_magic(data: bytes, layout: _Layout) -> None:
    kind, magic = _kind(layout.kind), layout.magic
    lang = current_lang()
    other = RECEIPT_MAGIC if layout.kind == "bundle" else BUNDLE_MAGIC
    if not data:
        raise BundleError("not-a-bundle", t("bundle_err_empty", lang, kind=kind))
    head = data[:4]
    if head == magic:
        return
    if len(head) < 4 and magic.startswith(head):
        raise BundleError("truncated", t("bundle_err_truncated", lang, kind=kind, size=len(data)))
    if head[:3] == magic[:3]:
        version, supported = head[3], magic[3]
        hint = t("bundle_err_upgrade", lang) if version > supported else ""
        raise BundleError(
            "unsupported-version",
            t(
                "bundle_err_version",
                lang,
                kind=kind,
                version=version,
                supported=supported,
                hint=hint,
            ),
        )
    if head[:3] == other[:3]:
        found = "receipt" if other is RECEIPT_MAGIC else "bundle"
        raise BundleError(
            "not-a-bundle",
            t(
                "bundle_err_other_kind",
                lang,
                found=_kind(found),
                ext=".ykr" if found == "receipt" else ".ykb",
                kind=kind,
            ),
        )
    if head == _ZIP_MAGIC:
        raise BundleError("not-a-bundle", t("bundle_err_zip", lang, kind=kind))
    raise BundleError("not-a-bundle", t("bundle_err_unknown_file", lang, kind=kind))


def _split(data: bytes, layout: _Layout) -> tuple[list[bytes], int]:
    """Return the section bodies and the length of the signed prefix; check every bound."""
    if not isinstance(data, bytes):
        raise TypeError("expected bytes")
    f = io.BytesIO(data)
    split = _split_file(f, len(data), layout, f.read(4))
    return split.bodies, split.signed_len


@dataclass(frozen=True)
class _Split:
    """What one pass over a file read: the section bodies, where each is, and what the
    signature is checked against, all of the same bytes (see _split_file)."""

    bodies: list[bytes]
    offsets: list[tuple[int, int]]  # (offset, length) of each section body
    signed_len: int  # length of the signed prefix
    signed: bytes | None  # the signed prefix as read (None when a section was hashed in place)
    digest: bytes | None  # sha256 of the signed prefix as read (None: not hashed)
    signature: bytes
    file_hash: str | None  # sha256 (hex) of the whole file as read (None: not hashed)


def _read_exact(f: BinaryIO, n: int, failure: BundleError) -> bytes:
    data = f.read(n)
    if len(data) != n:  # the file shrank since its size was taken
        raise failure
    return data


def _split_file(
    f: BinaryIO,
    size: int,
    layout: _Layout,
    magic: bytes,
    skip: frozenset[int] = frozenset(),
    *,
    hashing: bool = True,
) -> _Split:
    """Parse a file of `size` bytes in ONE sequential pass from just after its 4-byte
    `magic` (already read): every bound is checked before a body is read, and the bytes
    that are parsed are the bytes that are hashed and kept for the signature check.

    Nothing is read twice before the signature is checked: a file that changes between
    reads (a network or FUSE file system, a synced folder, a hostile USB device) cannot
    show the parser one header and payload and the signature check another. The bodies of
    the sections tagged in `skip` (a bundle's media) are not kept (b"" in their place) but
    hashed in place as they stream by; the signed prefix is kept whole only when nothing
    is skipped (format 1 bundles and receipts, which Ed25519 checks as one message).
    Without `hashing` (inspect_bundle, untrusted anyway), skipped bodies are seeked over.
    """
    _check_magic(magic, layout)
    kind, lang = _kind(layout.kind), current_lang()
    keep = not skip
    digest = hashlib.sha256() if hashing else None
    parts: list[bytes] = []

    def take(data: bytes) -> None:
        if digest is not None:
            digest.update(data)
        if keep:
            parts.append(data)

    take(magic)
    pos = len(layout.magic)
    seen: list[int] = []
    bodies: list[bytes] = []
    offsets: list[tuple[int, int]] = []
    for tag, name, limit in layout.sections:
        before = BundleError(
            "truncated", t("bundle_err_truncated_before", lang, kind=kind, part=_kind(name))
        )
        if size - pos < 5:
            raise before
        frame = _read_exact(f, 5, before)
        take(frame)
        found, length = struct.unpack(">BI", frame)
        if found != tag:
            if found in seen:
                detail = _d("bundle_detail_repeated", part=_kind(_KNOWN_TAGS[found]))
            elif found in _KNOWN_TAGS:
                detail = _d(
                    "bundle_detail_misplaced", found=_kind(_KNOWN_TAGS[found]), part=_kind(name)
                )
            else:
                detail = _d("bundle_detail_unknown_tag", tag=f"0x{found:02x}")
            raise BundleError(
                "unexpected-member", t("bundle_err_malformed", lang, kind=kind, detail=detail)
            )
        if length > limit:
            raise BundleError(
                "too-large",
                t(
                    "bundle_err_section_too_large",
                    lang,
                    kind=kind,
                    part=_kind(name),
                    size=length,
                    limit=limit,
                ),
            )
        start = pos + 5
        inside = BundleError(
            "truncated", t("bundle_err_truncated_inside", lang, kind=kind, part=_kind(name))
        )
        if start + length > size:
            raise inside
        if tag not in skip:
            body = _read_exact(f, length, inside)
            take(body)
            bodies.append(body)
        elif digest is None:
            f.seek(start + length)
            bodies.append(b"")
        else:  # hashed in place, a megabyte at a time, never held
            left = length
            while left:
                piece = _read_exact(f, min(left, media_section.CHUNK_SIZE), inside)
                digest.update(piece)
                left -= len(piece)
            bodies.append(b"")
        offsets.append((start, length))
        seen.append(tag)
        pos = start + length
    rest = size - pos
    cut = BundleError(
        "truncated",
        t("bundle_err_truncated_inside", lang, kind=kind, part=_kind("signature")),
    )
    if rest < SIGNATURE_SIZE:
        raise cut
    if rest > SIGNATURE_SIZE:
        raise BundleError(
            "corrupted",
            t("bundle_err_trailing", lang, kind=kind, n=rest - SIGNATURE_SIZE),
        )
    signature = _read_exact(f, SIGNATURE_SIZE, cut)
    if f.read(1):  # the file grew since its size was taken
        raise BundleError("corrupted", t("bundle_err_trailing", lang, kind=kind, n=1))
    signed = b"".join(parts) if keep else None
    file_hash = None
    if digest is not None:
        whole = digest.copy()
        whole.update(signature)
        file_hash = whole.hexdigest()
    return _Split(
        bodies,
        offsets,
        pos,
        signed,
        digest.digest() if digest is not None else None,
        signature,
        file_hash,
    )


def _verify(data: bytes, signed_len: int, key: bytes, failure: BundleError) -> None:
    try:
        VerifyKey(key).verify(data[:signed_len], data[signed_len:])
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise failure from None


# -- header / receipt validation -----------------------------------------------------------


def _d(key: str, **params: Any) -> str:
    """A detail of a damaged or forged file in the message language. Field paths
    ("manifest[3].sha256") and found values are data: they are passed in as they are."""
    return t(key, current_lang(), **params)


def _fail(kind: str, detail: str) -> BundleError:
    return BundleError(
        "corrupted", t("bundle_err_malformed", current_lang(), kind=_kind(kind), detail=detail)
    )


def _is_int(value: Any) -> TypeGuard[int]:
    return type(value) is int  # bool is an int subclass; true/false is not a number here


def _check_uuid(value: Any, where: str, kind: str) -> None:
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise _fail(kind, _d("bundle_detail_not_uuid", field=where, value=repr(value)))


def _check_keys(obj: Any, required: set[str], where: str, kind: str) -> None:
    if not isinstance(obj, dict):
        raise _fail(kind, _d("bundle_detail_not_object", field=where))
    if set(obj) != required:
        missing = sorted(required - set(obj))
        extra = sorted(set(obj) - required)
        parts = fields_text(missing, extra)
        raise _fail(kind, _d("bundle_detail_fields", field=where, parts=parts))


def _check_common(doc: dict[str, Any], kind: str) -> None:
    """Fields that bundles and receipts share, checked in the same words for both."""
    _check_uuid(doc["bundle_id"], "bundle_id", kind)
    if not isinstance(doc["device_id"], str) or not _DEVICE_ID.fullmatch(doc["device_id"]):
        raise _fail(
            kind,
            _d("bundle_detail_not_device_id", field="device_id", value=repr(doc["device_id"])),
        )
    if not _is_int(doc["seq"]) or not 1 <= doc["seq"] <= MAX_COUNTER:
        raise _fail(
            kind,
            _d("bundle_detail_range_found", field="seq", max=MAX_COUNTER, value=repr(doc["seq"])),
        )
    fp = doc["hq_fingerprint"]
    if not isinstance(fp, str) or not _FINGERPRINT.fullmatch(fp):
        raise _fail(
            kind, _d("bundle_detail_not_fingerprint", field="hq_fingerprint", value=repr(fp))
        )


_HEADER_KEYS = {
    "format_version",
    "bundle_id",
    "device_id",
    "seq",
    "prev_hash",
    "created_at",
    "hq_fingerprint",
}
_PAYLOAD_KEYS_V1 = {"counts", "forms", "manifest", "submissions"}
_PAYLOAD_KEYS = _PAYLOAD_KEYS_V1 | {"media"}  # format 2: the media files and their key
_MEDIA_KEYS = {"key", "files"}
_MEDIA_FILE_KEYS = {"sha256", "size", "media_type"}
_MANIFEST_KEYS = {"uuid", "revision", "status", "sha256"}
_RECEIPT_KEYS = {
    "format_version",
    "bundle_id",
    "device_id",
    "seq",
    "hq_fingerprint",
    "imported_at",
    "accepted",
}
_RECEIPT_V2_KEYS = (_RECEIPT_KEYS - {"imported_at"}) | {
    "receipt_id",
    "issued_at",
    "decisions_waiting",
    "sealed_to",
}
_DECISION_KEYS = {"decision_id", "uuid", "revision", "status", "comment", "reviewer", "decided_at"}
# A receipt may also list what HQ refused; the key is present only when the list is not
# empty, so a receipt without refusals reads the same to older devices.
RECEIPT_REFUSED_KEY = "refused"
MAX_REFUSAL_REASON = 500  # characters of one refusal reason in a receipt


def _check_version(doc: Any, kind: str, expected: int = FORMAT_VERSION) -> None:
    if not isinstance(doc, dict):
        raise _fail(kind, _d("bundle_detail_not_json_object", kind=_kind(kind)))
    version = doc.get("format_version")
    if version != expected or not _is_int(version):
        raise BundleError(
            "unsupported-version",
            _d(
                "bundle_err_format_version",
                kind=_kind(kind),
                version=repr(version),
                supported=expected,
            ),
        )


def _validate_header(header: Any, version: int = BUNDLE_VERSION) -> None:
    kind = "bundle header"
    _check_version(header, "bundle header", version)
    _check_keys(header, _HEADER_KEYS, "header", kind)
    _check_common(header, kind)
    prev = header["prev_hash"]
    if header["seq"] == 1:
        if prev is not None:
            raise _fail(kind, _d("bundle_detail_first_prev_hash"))
    elif not isinstance(prev, str) or not SHA256_HEX_RE.fullmatch(prev):
        raise _fail(kind, _d("bundle_detail_digest_found", field="prev_hash", value=repr(prev)))
    if not isinstance(header["created_at"], str):
        raise _fail(kind, _d("bundle_detail_not_string", field="created_at"))


def _validate_manifest(payload: dict[str, Any]) -> None:
    """counts and manifest of the sealed payload: types, bounds, each (uuid, revision) once."""
    kind = "bundle payload"
    counts = payload["counts"]
    if not isinstance(counts, dict) or not all(_is_int(v) and v >= 0 for v in counts.values()):
        raise _fail(kind, _d("bundle_detail_counts"))
    manifest = payload["manifest"]
    if not isinstance(manifest, list):
        raise _fail(kind, _d("bundle_detail_not_list", field="manifest"))
    seen: set[tuple[str, int]] = set()
    for i, entry in enumerate(manifest):
        where = f"manifest[{i}]"
        _check_keys(entry, _MANIFEST_KEYS, where, kind)
        _check_uuid(entry["uuid"], f"{where}.uuid", kind)
        if not _is_int(entry["revision"]) or not 1 <= entry["revision"] <= MAX_COUNTER:
            raise _fail(kind, _d("bundle_detail_range", field=f"{where}.revision", max=MAX_COUNTER))
        if not isinstance(entry["status"], str):
            raise _fail(kind, _d("bundle_detail_not_string", field=f"{where}.status"))
        if not isinstance(entry["sha256"], str) or not SHA256_HEX_RE.fullmatch(entry["sha256"]):
            raise _fail(kind, _d("bundle_detail_not_digest", field=f"{where}.sha256"))
        key = (entry["uuid"], entry["revision"])
        if key in seen:
            raise _fail(
                kind,
                _d("bundle_detail_repeats_submission", field=where, uuid=key[0], revision=key[1]),
            )
        seen.add(key)


def _validate_receipt(receipt: Any) -> None:
    kind = "receipt"
    _check_version(receipt, kind)
    keys = _RECEIPT_KEYS | ({RECEIPT_REFUSED_KEY} if RECEIPT_REFUSED_KEY in receipt else set())
    _check_keys(receipt, keys, "receipt", kind)
    _check_common(receipt, kind)
    if not isinstance(receipt["imported_at"], str):
        raise _fail(kind, _d("bundle_detail_not_string", field="imported_at"))
    _check_entries(receipt)


def _validate_receipt_v2(receipt: Any) -> None:
    """Receipt v2: v1's answer to a bundle (or none: bundle_id and seq null, nothing
    accepted), plus `receipt_id`, `issued_at`, `decisions_waiting` and `sealed_to`."""
    kind = "receipt"
    _check_version(receipt, kind, RECEIPT_VERSION)
    keys = _RECEIPT_V2_KEYS | ({RECEIPT_REFUSED_KEY} if RECEIPT_REFUSED_KEY in receipt else set())
    _check_keys(receipt, keys, "receipt", kind)
    _check_uuid(receipt["receipt_id"], "receipt_id", kind)
    if receipt["bundle_id"] is None and receipt["seq"] is None:
        # A receipt that answers no bundle (`hq receipt DEVICE`) acknowledges nothing.
        if receipt["accepted"] or RECEIPT_REFUSED_KEY in receipt:
            raise _fail(kind, _d("bundle_detail_no_bundle_lists"))
        _check_common({**receipt, "bundle_id": receipt["receipt_id"], "seq": 1}, kind)
    else:
        _check_common(receipt, kind)
    if not isinstance(receipt["issued_at"], str) or len(receipt["issued_at"]) > 64:
        raise _fail(kind, _d("bundle_detail_not_string", field="issued_at"))
    waiting = receipt["decisions_waiting"]
    if not _is_int(waiting) or not 0 <= waiting <= MAX_COUNTER:
        raise _fail(kind, _d("bundle_detail_range", field="decisions_waiting", max=MAX_COUNTER))
    sealed_to = receipt["sealed_to"]
    if sealed_to is not None and (
        not isinstance(sealed_to, str) or not _FINGERPRINT.fullmatch(sealed_to)
    ):
        raise _fail(
            kind, _d("bundle_detail_not_fingerprint", field="sealed_to", value=repr(sealed_to))
        )
    _check_entries(receipt)


def _check_entries(receipt: dict[str, Any]) -> None:
    """A receipt's `accepted` and `refused` lists: ids, bounds, each entry in one list once."""
    kind = "receipt"
    seen: set[tuple[str, int]] = set()
    for name in ("accepted", RECEIPT_REFUSED_KEY):
        entries = receipt.get(name, [])
        if not isinstance(entries, list):
            raise _fail(kind, _d("bundle_detail_not_list", field=name))
        if name == RECEIPT_REFUSED_KEY and name in receipt and not entries:
            raise _fail(kind, _d("bundle_detail_refused_empty"))
        fields = {"uuid", "revision"} | ({"reason"} if name == RECEIPT_REFUSED_KEY else set())
        for i, entry in enumerate(entries):
            where = f"{name}[{i}]"
            _check_keys(entry, fields, where, kind)
            _check_uuid(entry["uuid"], f"{where}.uuid", kind)
            if not _is_int(entry["revision"]) or not 1 <= entry["revision"] <= MAX_COUNTER:
                raise _fail(
                    kind, _d("bundle_detail_range", field=f"{where}.revision", max=MAX_COUNTER)
                )
            if name == RECEIPT_REFUSED_KEY:
                reason = entry["reason"]
                if not isinstance(reason, str) or not 0 < len(reason) <= MAX_REFUSAL_REASON:
                    raise _fail(
                        kind,
                        _d(
                            "bundle_detail_reason_length",
                            field=f"{where}.reason",
                            max=MAX_REFUSAL_REASON,
                        ),
                    )
                # A revision HQ refused is not one it accepted: each entry once, in one list.
                key = (entry["uuid"], entry["revision"])
                if key in seen:
                    raise _fail(
                        kind,
                        _d("bundle_detail_repeats", field=where, uuid=key[0], revision=key[1]),
                    )
                seen.add(key)
            elif name == "accepted":
                seen.add((entry["uuid"], entry["revision"]))


def media_entries(payload: dict[str, Any]) -> list[MediaEntry]:
    """The files a format 2 payload lists, checked: each hash once, sizes from 1 byte to
    MAX_MEDIA_FILE_SIZE, at most MAX_MEDIA_FILES, a `type/subtype` media type, a 32-byte
    key (base64)."""
    kind = "bundle payload"
    media = payload["media"]
    _check_keys(media, _MEDIA_KEYS, "media", kind)
    key = media["key"]
    try:
        raw = base64.b64decode(key, validate=True) if isinstance(key, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != media_section.KEY_SIZE:
        raise _fail(kind, _d("bundle_detail_not_string", field="media.key"))
    files = media["files"]
    if not isinstance(files, list) or len(files) > media_section.MAX_MEDIA_FILES:
        raise _fail(
            kind, _d("bundle_detail_range", field="media.files", max=media_section.MAX_MEDIA_FILES)
        )
    out: list[MediaEntry] = []
    seen: set[str] = set()
    for i, f in enumerate(files):
        where = f"media.files[{i}]"
        _check_keys(f, _MEDIA_FILE_KEYS, where, kind)
        if not isinstance(f["sha256"], str) or not SHA256_HEX_RE.fullmatch(f["sha256"]):
            raise _fail(kind, _d("bundle_detail_not_digest", field=f"{where}.sha256"))
        if f["sha256"] in seen:
            raise _fail(
                kind, _d("bundle_detail_media_twice", field=f"{where}.sha256", sha256=f["sha256"])
            )
        seen.add(f["sha256"])
        size = f["size"]
        if not _is_int(size) or not 1 <= size <= media_section.MAX_MEDIA_FILE_SIZE:
            raise _fail(
                kind,
                _d(
                    "bundle_detail_range",
                    field=f"{where}.size",
                    max=media_section.MAX_MEDIA_FILE_SIZE,
                ),
            )
        mtype = f["media_type"]
        if not media_section.is_media_type(mtype):
            raise _fail(kind, _d("bundle_detail_media_type", field=f"{where}.media_type"))
        out.append(MediaEntry(f["sha256"], size, mtype))
    return out


def media_key(payload: dict[str, Any]) -> bytes:
    return base64.b64decode(payload["media"]["key"])


def _parse_document(body: bytes, kind: str) -> Any:
    text = _decode_utf8(body, kind)
    doc = _parse_json(text, kind)
    # Canonical form only: the signed bytes have exactly one meaning and one spelling (and
    # no duplicate keys, which the re-encoding would have dropped).
    try:
        canonical = canonical_text(doc)
    except (ValueError, RecursionError):
        canonical = ""
    if canonical != text:
        raise _fail(kind, _d("bundle_detail_not_canonical"))
    return doc


def _record_texts(record: dict[str, Any]) -> tuple[str, str | None]:
    """(canonical JSON of the record, canonical JSON of its answers or None).

    A record's canonical JSON starts with its answers ("answers" sorts before every other
    record key), so both come from one encoding of the answers, the bulk of a record.
    """
    if "answers" not in record:
        return canonical_text(record), None
    answers = canonical_text(record["answers"])
    rest = {k: v for k, v in record.items() if k != "answers"}
    if not rest:
        return '{"answers":' + answers + "}", answers
    if min(rest) < "answers":
        return canonical_text(record), answers
    return '{"answers":' + answers + "," + canonical_text(rest)[1:], answers


def _check_payload(
    payload: Any, text: str | None = None, version: int = BUNDLE_VERSION
) -> list[str | None]:
    """Check the payload's records against its manifest; return each record's answers JSON.

    With `text` (the payload as received), the payload must also be exactly its canonical
    JSON: one spelling for the signed content, and no duplicate keys. It is compared piece
    by piece with the encodings the record hashes need anyway.
    """
    kind = "bundle payload"
    _check_keys(payload, _PAYLOAD_KEYS if version >= 2 else _PAYLOAD_KEYS_V1, "payload", kind)
    _validate_manifest(payload)
    if version >= 2:
        media_entries(payload)  # checks its shape
    manifest = payload["manifest"]
    if not isinstance(payload["forms"], list) or not all(
        isinstance(f, dict) for f in payload["forms"]
    ):
        raise _fail(kind, _d("bundle_detail_forms_list"))
    submissions = payload["submissions"]
    if not isinstance(submissions, list):
        raise _fail(kind, _d("bundle_detail_not_list", field="submissions"))
    not_canonical = _fail(kind, _d("bundle_detail_not_canonical"))
    pos = 0

    def expect(piece: str) -> None:
        nonlocal pos
        if text is not None:
            if not text.startswith(piece, pos):
                raise not_canonical
            pos += len(piece)

    try:
        if text is not None:
            # Keys in sorted order: counts, forms, manifest, submissions.
            expect(
                '{"counts":'
                + canonical_text(payload["counts"])
                + ',"forms":'
                + canonical_text(payload["forms"])
                + ',"manifest":'
                + canonical_text(manifest)
                + (',"media":' + canonical_text(payload["media"]) if version >= 2 else "")
                + ',"submissions":['
            )
        expected = {(e["uuid"], e["revision"]): e for e in manifest}
        found: set[tuple[str, int]] = set()
        answers_texts: list[str | None] = []
        for i, record in enumerate(submissions):
            if not isinstance(record, dict):
                raise _fail(kind, _d("bundle_detail_not_object", field=f"submissions[{i}]"))
            uid, rev = record.get("uuid"), record.get("revision")
            if not isinstance(uid, str) or not _is_int(rev):
                raise _fail(kind, _d("bundle_detail_no_uuid_revision", field=f"submissions[{i}]"))
            key = (uid, rev)
            entry = expected.get(key)
            if entry is None:
                raise _fail(kind, _d("bundle_detail_not_in_manifest", uuid=repr(uid), revision=rev))
            if key in found:
                raise _fail(kind, _d("bundle_detail_twice", uuid=uid, revision=rev))
            record_text, answers = _record_texts(record)
            if i:
                expect(",")
            expect(record_text)
            digest = hashlib.sha256(record_text.encode("utf-8")).hexdigest()
            if digest != entry["sha256"] or record.get("status") != entry["status"]:
                raise _fail(kind, _d("bundle_detail_manifest_mismatch", uuid=uid, revision=rev))
            found.add(key)
            answers_texts.append(answers)
        expect("]}")
    except (ValueError, RecursionError):
        # NaN, lone surrogates (not UTF-8), nesting too deep to re-encode.
        raise _fail(kind, _d("bundle_detail_no_canonical_form")) from None
    if text is not None and pos != len(text):
        raise not_canonical
    if len(found) != len(expected):
        missing = next(k for k in expected if k not in found)
        raise _fail(
            kind,
            _d(
                "bundle_detail_missing_records",
                n=len(expected) - len(found),
                uuid=missing[0],
                revision=missing[1],
            ),
        )
    return answers_texts


_INFLATE_IN = 64 * 1024  # compressed bytes fed to zlib at a time
_INFLATE_OUT = 1024 * 1024  # decompressed bytes asked of zlib at a time (then dropped)


def _decompress(data: bytes, max_payload: int) -> bytes:
    """zlib inflate with a hard ceiling, in two passes so that a bomb costs no memory.

    The first pass only measures: it inflates a megabyte at a time, drops each piece and
    stops at the ceiling. Asking zlib for max_payload bytes at once, as before, let a
    600 KB bomb cost HQ the whole limit (and more, as zlib grows its buffer) before the
    refusal. The second pass inflates a stream known to be sound into one buffer of the
    measured size. Twice the CPU for a good bundle; zlib inflates ~1 GB/s.
    """
    too_large = BundleError(
        "too-large", t("bundle_err_payload_expands", current_lang(), limit=max_payload)
    )
    inflater = zlib.decompressobj()
    view = memoryview(data)
    total = 0
    fed = 0
    try:
        # Input goes in small slices: unconsumed_tail copies what is left of the input.
        while fed < len(view) and not inflater.eof:
            tail: bytes | memoryview = view[fed : fed + _INFLATE_IN]
            fed += len(tail)
            while tail:
                total += len(inflater.decompress(tail, _INFLATE_OUT))
                if total > max_payload:
                    raise too_large
                tail = inflater.unconsumed_tail
        while not inflater.eof:  # output zlib still holds after the last input
            produced = len(inflater.decompress(b"", _INFLATE_OUT))
            total += produced
            if total > max_payload:
                raise too_large
            if not produced:
                raise _fail("bundle payload", _d("bundle_detail_stream_incomplete"))
        if inflater.unused_data or fed < len(view):
            raise _fail("bundle payload", _d("bundle_detail_stream_trailing"))
        return zlib.decompress(data, bufsize=max(total, 1))
    except zlib.error as exc:
        raise _fail("bundle payload", _d("bundle_detail_cannot_decompress", error=exc)) from None


# -- bundles -------------------------------------------------------------------------------


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Signed:
    """A writer that hashes what it writes: the signed digest (bundle v2) and the size."""

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.digest, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)


def _write_bundle(
    out: BinaryIO,
    header: dict[str, Any],
    payload: dict[str, Any],
    device: DeviceIdentity,
    hq: HqPublic,
    files: Sequence[tuple[MediaEntry, Path]] = (),
) -> tuple[str, int]:
    """Encrypt, frame and sign into `out` with no consistency checks (build_bundle does
    those); (sha256 of the whole file, its size). Media files are read and encrypted a
    chunk at a time: a bundle of photos is never held in memory.

    `payload` is the whole sealed document, its `media` listing `files` in order.
    """
    header_bytes = canonical_bytes(header)
    # The header digest inside the sealed box binds ciphertext to header: another enrolled
    # device cannot lift this ciphertext into a bundle signed in its own name. The media
    # key travels inside it (payload.media.key), so the media section is bound to it too.
    plaintext = hashlib.sha256(header_bytes).digest() + zlib.compress(
        canonical_bytes(payload), ZLIB_LEVEL
    )
    ciphertext = bytes(SealedBox(PublicKey(hq.box_key)).encrypt(plaintext))
    del plaintext
    entries = [entry for entry, _path in files]
    v1 = header.get("format_version") == FORMAT_VERSION
    assert not (v1 and files), "a bundle of format 1 carries no media"
    media_size = 0 if v1 else media_section.section_size(entries)
    if len(ciphertext) + media_size > MAX_CONTENT_SIZE:
        if not files:
            raise ValueError(_d("bundle_build_too_large"))
        raise ValueError(
            _d(
                "bundle_build_media_too_large",
                n=len(files),
                mb=(len(ciphertext) + media_size) // (1024 * 1024),
                limit=MAX_CONTENT_SIZE // (1024 * 1024),
            )
        )
    if v1:  # the layout of earlier versions: Ed25519 over every byte before the signature
        signed_v1 = _assemble(_BUNDLE_V1, [header_bytes, ciphertext])
        signature_v1 = device.signing_key.sign(signed_v1).signature
        out.write(signed_v1)
        out.write(signature_v1)
        whole_v1 = hashlib.sha256(signed_v1)
        whole_v1.update(signature_v1)
        return whole_v1.hexdigest(), len(signed_v1) + len(signature_v1)
    whole = hashlib.sha256()

    class _Both:
        def write(self, data: bytes) -> int:
            whole.update(data)
            return out.write(data) or len(data)

    signed = _Signed(_Both())  # type: ignore[arg-type]
    signed.write(BUNDLE_MAGIC)
    signed.write(struct.pack(">BI", TAG_HEADER, len(header_bytes)) + header_bytes)
    signed.write(struct.pack(">BI", TAG_PAYLOAD, len(ciphertext)))
    signed.write(ciphertext)
    signed.write(struct.pack(">BI", TAG_MEDIA, media_size))
    if files:
        box = SecretBox(media_key(payload))
        media_section.write_section(box, list(files), signed)  # type: ignore[arg-type]
    signature = device.signing_key.sign(SIGNED_DIGEST_PREFIX + signed.digest.digest()).signature
    out.write(signature)
    whole.update(signature)
    return whole.hexdigest(), signed.size + len(signature)


def _seal_bundle(
    header: dict[str, Any], payload: dict[str, Any], device: DeviceIdentity, hq: HqPublic
) -> bytes:
    """A bundle without media files as bytes (_write_bundle, for tests and small bundles)."""
    buffer = io.BytesIO()
    _write_bundle(buffer, header, payload, device, hq)
    return buffer.getvalue()


def _fill(doc: dict[str, Any], key: str, value: Any, kind: str) -> None:
    if key not in doc:
        doc[key] = value
    elif doc[key] != value:
        raise ValueError(f"{kind} {key} is {doc[key]!r}, expected {value!r}")


def _prepare(
    header: dict[str, Any],
    payload: dict[str, Any],
    device: DeviceIdentity,
    hq: HqPublic,
    entries: list[MediaEntry],
) -> tuple[dict[str, Any], dict[str, Any]]:
    header = dict(header)
    payload = dict(payload)
    submissions = payload.get("submissions", [])
    forms = payload.get("forms", [])
    try:
        manifest = build_manifest(submissions)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"every submission needs uuid, revision and status ({exc})") from None
    # Format 2 only for a bundle that carries media files: one without is format 1, byte
    # for byte as earlier versions wrote it, so HQs of those versions still read it.
    version = BUNDLE_VERSION if entries else FORMAT_VERSION
    _fill(header, "format_version", version, "header")
    header.setdefault("bundle_id", str(uuid.uuid4()))
    _fill(header, "device_id", device.device_id, "header")
    header.setdefault("created_at", _utc_now())
    _fill(header, "hq_fingerprint", hq.fingerprint, "header")
    _fill(payload, "manifest", manifest, "payload")
    payload.setdefault("counts", {"forms": len(forms), "submissions": len(submissions)})
    if version == BUNDLE_VERSION:
        key = base64.b64encode(nacl.utils.random(media_section.KEY_SIZE)).decode("ascii")
        _fill(payload, "media", {"key": key, "files": [e.doc() for e in entries]}, "payload")
    try:
        _validate_header(header, version)
        _check_payload(payload, version=version)
    except BundleError as exc:
        raise ValueError(_d("bundle_build_invalid", error=exc)) from None
    if len(canonical_bytes(header)) > MAX_HEADER_SIZE:
        raise ValueError(_d("bundle_build_header_too_large"))
    return header, payload


def build_bundle(
    header: dict[str, Any], payload: dict[str, Any], device: DeviceIdentity, hq: HqPublic
) -> bytes:
    """Build a signed, encrypted bundle without media files (format 1), as bytes.

    `header` needs seq and prev_hash (the store owns the chain); `payload` needs forms and
    submissions. The fields that can be derived are filled in when absent: bundle_id
    (uuid4), created_at (now), the payload's counts; and filled or checked: format_version,
    device_id, hq_fingerprint, the payload's manifest. Raises ValueError if anything is
    inconsistent: a device must never emit a bundle HQ refuses.
    """
    header, payload = _prepare(header, payload, device, hq, [])
    return _seal_bundle(header, payload, device, hq)


def write_bundle(
    out: BinaryIO,
    header: dict[str, Any],
    payload: dict[str, Any],
    device: DeviceIdentity,
    hq: HqPublic,
    files: Sequence[tuple[MediaEntry, Path]] = (),
) -> tuple[dict[str, Any], str, int]:
    """build_bundle into `out`, carrying `files` (each read from its path and checked
    against its entry while it is encrypted); (the header, file hash, size)."""
    header, payload = _prepare(header, payload, device, hq, [e for e, _p in files])
    file_hash, size = _write_bundle(out, header, payload, device, hq, files)
    return header, file_hash, size


BundleData = bytes | BinaryIO  # a bundle's bytes, or a seekable file open for reading


def _source(data: BundleData) -> tuple[BinaryIO, int]:
    f: BinaryIO = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    f.seek(0, io.SEEK_END)
    size = f.tell()
    f.seek(0)
    return f, size


@dataclass(frozen=True)
class _Parsed:
    header: dict[str, Any]
    split: _Split  # bodies, offsets and what the signature is checked against: one pass
    version: int
    source: BinaryIO

    @property
    def bodies(self) -> list[bytes]:
        return self.split.bodies

    @property
    def offsets(self) -> list[tuple[int, int]]:
        return self.split.offsets


def _read_header(data: BundleData, *, hashing: bool = True) -> _Parsed:
    f, size = _source(data)
    head = f.read(4)
    skip: frozenset[int] = frozenset()
    if head == BUNDLE_MAGIC_V1:
        layout, version = _BUNDLE_V1, FORMAT_VERSION
    else:  # the media section is streamed (hashed in place), never read whole
        layout, version, skip = _BUNDLE, BUNDLE_VERSION, frozenset({TAG_MEDIA})
    split = _split_file(f, size, layout, head, skip, hashing=hashing)
    offsets = split.offsets
    if version >= 2 and offsets[1][1] + offsets[2][1] > MAX_CONTENT_SIZE:
        raise BundleError(
            "too-large",
            t(
                "bundle_err_section_too_large",
                current_lang(),
                kind=_kind("bundle"),
                part=_kind("media"),
                size=offsets[1][1] + offsets[2][1],
                limit=MAX_CONTENT_SIZE,
            ),
        )
    header = _parse_document(split.bodies[0], "bundle header")
    _validate_header(header, version)
    return _Parsed(header, split, version, f)


def bundle_file_hash(data: BundleData) -> str:
    """sha256 of a whole bundle file; the next bundle of the device names it as prev_hash."""
    if isinstance(data, bytes | bytearray):
        return hashlib.sha256(data).hexdigest()
    return _hash_range(data, 0, None).hexdigest()


def _hash_range(f: BinaryIO, start: int, length: int | None) -> Any:
    digest = hashlib.sha256()
    f.seek(start)
    left = length
    while left is None or left > 0:
        piece = f.read(media_section.CHUNK_SIZE if left is None else min(left, 1 << 20))
        if not piece:
            break
        digest.update(piece)
        if left is not None:
            left -= len(piece)
    return digest


def inspect_bundle(data: BundleData) -> dict[str, Any]:
    """The clear header of a bundle, parsed and checked for shape but NOT authenticated.

    For messages and lookups only ("bundle 7 from device x..."); trust nothing in it. What
    the bundle holds (manifest, counts, records, files) is sealed: only HQ's open_bundle
    sees it.
    """
    return _read_header(data, hashing=False).header


@dataclass(frozen=True)
class OpenedContainer:
    header: dict[str, Any]  # the clear header
    payload: dict[str, Any]  # the sealed document: counts, forms, manifest, (media,) submissions
    # Canonical JSON of each payload record's answers (None where a record has none),
    # already computed for the record hashes: HQ stores it and hashes it, never re-encodes.
    answers_json: list[str | None]
    media: tuple[MediaEntry, ...] = ()  # the files the bundle carries (format 2)
    # sha256 (hex) of the whole file, of the same bytes that were parsed and authenticated:
    # what HQ records for the device's chain (the next bundle's prev_hash).
    file_hash: str = ""
    _source: BinaryIO | None = None
    _media_offset: int = 0

    def media_files(self) -> Iterator[tuple[MediaEntry, Iterator[bytes]]]:
        """Each file with an iterator over its decrypted chunks (read one at a time from the
        bundle); the chunk iterator raises MediaMismatch at the end when the file is not
        what the payload lists. Consume each before asking for the next."""
        if not self.media:
            return
        assert self._source is not None
        box = SecretBox(media_key(self.payload))
        pos = self._media_offset
        for index, entry in enumerate(self.media):
            self._source.seek(pos)
            yield entry, media_section.decrypt_file(box, index, entry, self._source)
            pos += media_section.encrypted_size(entry.size)


def open_bundle(
    data: BundleData,
    device_key_lookup: DeviceKeyLookup,
    hq: HqIdentity,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify, decrypt and check a bundle; return (header, payload).

    `payload` is the sealed document: counts, forms, manifest, (media,) submissions.

    `device_key_lookup(device_id)` returns the registered Ed25519 verify key, a
    RevokedDevice, or None for a device HQ does not know. Checks run in the order of
    docs/bundle-format.md; the first failure raises BundleError. Media files are not
    decrypted here (OpenedContainer.media_files).
    """
    opened = open_bundle_container(data, device_key_lookup, hq, max_payload=max_payload)
    return opened.header, opened.payload


def verify_bundle_signature(data: BundleData, device_key_lookup: DeviceKeyLookup) -> dict[str, Any]:
    """The clear header of a bundle whose structure, header and signature were checked
    against the enrolled device key; nothing is decrypted or decompressed (cheap).

    The first steps of open_bundle_container, with the same BundleError reasons in the same
    order: structure and header, unknown-device, bad-signature, revoked-device. The header
    is authentic (the device signed it); which HQ it is for and what it holds are not
    checked here.
    """
    return _authenticate(data, device_key_lookup).header


def _authenticate(data: BundleData, device_key_lookup: DeviceKeyLookup) -> _Parsed:
    """A bundle signed by its enrolled, unrevoked device: header and section bodies."""
    parsed = _read_header(data)
    header = parsed.header
    device_id = header["device_id"]
    lang = current_lang()
    known = device_key_lookup(device_id)
    if known is None:
        # The real command, so HQ staff can act on it (issue 18 section 4).
        raise BundleError("unknown-device", t("bundle_err_unknown_device", lang, device=device_id))
    revoked = isinstance(known, RevokedDevice)
    key = known.verify_key if isinstance(known, RevokedDevice) else known
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise TypeError("device_key_lookup must return 32 key bytes, a RevokedDevice or None")
    failure = BundleError("bad-signature", t("bundle_err_bad_signature", lang, device=device_id))
    # The bytes the one pass of _split_file parsed and hashed, never a second read of the
    # file: format 1 is checked over its signed prefix as read, format 2 over its digest.
    split = parsed.split
    if parsed.version == FORMAT_VERSION:
        signed = split.signed
    else:
        signed = SIGNED_DIGEST_PREFIX + split.digest if split.digest is not None else None
    assert signed is not None
    try:
        VerifyKey(key).verify(signed, split.signature)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise failure from None
    if revoked:
        raise BundleError("revoked-device", t("bundle_err_revoked", lang, device=device_id))
    return parsed


def open_bundle_container(
    data: BundleData,
    device_key_lookup: DeviceKeyLookup,
    hq: HqIdentity,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
) -> OpenedContainer:
    """open_bundle, also returning the canonical answers JSON of each record and the
    media files (decrypted on demand)."""
    parsed = _authenticate(data, device_key_lookup)
    header, bodies = parsed.header, parsed.bodies
    lang = current_lang()
    if header["hq_fingerprint"] != hq.fingerprint:
        raise BundleError(
            "wrong-hq",
            t("bundle_err_wrong_hq", lang, named=header["hq_fingerprint"], this=hq.fingerprint),
        )
    ciphertext = bodies[1]
    # A valid zlib stream of at most max_payload bytes is never much larger than that.
    ceiling = max_payload + max_payload // 100 + 1024 + DIGEST_SIZE + SEALED_BOX_OVERHEAD
    if len(ciphertext) > ceiling:
        raise BundleError("too-large", t("bundle_err_payload_too_large", lang, limit=max_payload))
    try:
        plaintext = SealedBox(hq.box_key).decrypt(ciphertext)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise BundleError("corrupted", t("bundle_err_cannot_decrypt", lang)) from None
    if plaintext[:DIGEST_SIZE] != hashlib.sha256(bodies[0]).digest():
        raise BundleError("corrupted", t("bundle_err_payload_mismatch", lang))
    text = _decode_utf8(_decompress(plaintext[DIGEST_SIZE:], max_payload), "bundle payload")
    del plaintext
    payload = _parse_json(text, "bundle payload")
    answers_json = _check_payload(payload, text, parsed.version)
    file_hash = parsed.split.file_hash
    assert file_hash is not None
    if parsed.version == FORMAT_VERSION:
        return OpenedContainer(header, payload, answers_json, file_hash=file_hash)
    entries = tuple(media_entries(payload))
    offset, length = parsed.offsets[2]
    if length != media_section.section_size(list(entries)):
        raise _fail("bundle payload", _d("bundle_detail_media_size", size=length))
    # The media section is read again, chunk by chunk, to decrypt it (media_files): safe
    # after the signature check, as its key comes from the verified, sealed payload and
    # each chunk's nonce fixes its file and place, so changed bytes fail their MAC.
    return OpenedContainer(header, payload, answers_json, entries, file_hash, parsed.source, offset)


# -- receipts ------------------------------------------------------------------------------


def sign_receipt(receipt: dict[str, Any], hq: HqIdentity) -> bytes:
    """Sign a receipt (not encrypted: it holds only ids). format_version, hq_fingerprint
    and imported_at are filled in when absent."""
    receipt = dict(receipt)
    _fill(receipt, "format_version", FORMAT_VERSION, "receipt")
    _fill(receipt, "hq_fingerprint", hq.fingerprint, "receipt")
    receipt.setdefault("imported_at", _utc_now())
    try:
        _validate_receipt(receipt)
    except BundleError as exc:
        raise ValueError(_d("receipt_build_invalid", error=exc)) from None
    body = canonical_bytes(receipt)
    if len(body) > MAX_RECEIPT_SIZE:
        raise ValueError(_d("receipt_build_too_large"))
    signed = _assemble(_RECEIPT, [body])
    return signed + hq.signing_key.sign(signed).signature


def sign_receipt_v2(
    receipt: dict[str, Any],
    hq: HqIdentity,
    decisions: Sequence[dict[str, Any]] = (),
    box_key: bytes | None = None,
) -> bytes:
    """Sign a receipt v2; `decisions` are sealed to the device's X25519 `box_key`.

    Filled in when absent: format_version, receipt_id (uuid4), hq_fingerprint, issued_at,
    bundle_id and seq (null: a receipt that answers no bundle), accepted ([]),
    decisions_waiting (0) and sealed_to (the box key's fingerprint, or null).
    """
    from yntymak_cli.sync.keys import box_key_fingerprint

    receipt = dict(receipt)
    decisions = list(decisions)
    if decisions and box_key is None:
        raise ValueError("decisions need the device's box key")
    _fill(receipt, "format_version", RECEIPT_VERSION, "receipt")
    receipt.setdefault("receipt_id", str(uuid.uuid4()))
    _fill(receipt, "hq_fingerprint", hq.fingerprint, "receipt")
    receipt.setdefault("issued_at", _utc_now())
    receipt.setdefault("bundle_id", None)
    receipt.setdefault("seq", None)
    receipt.setdefault("accepted", [])
    receipt.setdefault("decisions_waiting", 0)
    sealed_to = box_key_fingerprint(box_key) if decisions and box_key is not None else None
    _fill(receipt, "sealed_to", sealed_to, "receipt")
    try:
        _validate_receipt_v2(receipt)
        _check_decisions({"decisions": decisions})
    except BundleError as exc:
        raise ValueError(_d("receipt_build_invalid", error=exc)) from None
    body = canonical_bytes(receipt)
    if len(body) > MAX_RECEIPT_SIZE:
        raise ValueError(_d("receipt_build_too_large"))
    sealed = b""
    if decisions:
        assert box_key is not None
        # As in a bundle, the digest of the clear part is sealed with the decisions: the
        # ciphertext cannot be lifted into another receipt.
        plaintext = hashlib.sha256(body).digest() + canonical_bytes({"decisions": decisions})
        sealed = bytes(SealedBox(PublicKey(box_key)).encrypt(plaintext))
        if len(sealed) > MAX_DECISIONS_SIZE:
            raise ValueError(_d("receipt_build_too_large"))
    signed = _assemble(_RECEIPT_V2, [body, sealed])
    return signed + hq.signing_key.sign(signed).signature


def decisions_size(decisions: list[dict[str, Any]]) -> int:
    """Bytes the sealed decisions section takes for these decisions (to fit a receipt)."""
    return DIGEST_SIZE + SEALED_BOX_OVERHEAD + len(canonical_bytes({"decisions": decisions}))


@dataclass(frozen=True)
class OpenedReceipt:
    """A receipt whose signature, fields and HQ were checked. For v2, `doc` uses v1's
    names too (`imported_at` = `issued_at`), so v1 code reads both."""

    doc: dict[str, Any]
    version: int
    sealed: bytes  # the sealed decisions (v2), b"" when there are none
    body_digest: bytes

    def decisions(self, box_secret: PrivateKey) -> list[dict[str, Any]]:
        """Open the sealed decisions with this device's X25519 key; [] when there are none.

        Call after checking `doc["device_id"]` is this device: a receipt of another
        device then reads as such, not as undecryptable.
        """
        if not self.sealed:
            return []
        from yntymak_cli.sync.keys import box_key_fingerprint

        lang = current_lang()
        own = box_key_fingerprint(bytes(box_secret.public_key))
        if self.doc["sealed_to"] != own:
            raise BundleError(
                "wrong-device",
                t("receipt_err_sealed_other_key", lang, sealed_to=self.doc["sealed_to"], own=own),
            )
        try:
            plaintext = SealedBox(box_secret).decrypt(self.sealed)
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise BundleError("corrupted", t("receipt_err_cannot_decrypt", lang)) from None
        if plaintext[:DIGEST_SIZE] != self.body_digest:
            raise BundleError("corrupted", t("receipt_err_decisions_mismatch", lang))
        doc = _parse_document(plaintext[DIGEST_SIZE:], "decisions")
        _check_decisions(doc)
        return list(doc["decisions"])


def _check_decisions(doc: Any) -> None:
    kind = "decisions"
    _check_keys(doc, {"decisions"}, "decisions", kind)
    decisions = doc["decisions"]
    if not isinstance(decisions, list):
        raise _fail(kind, _d("bundle_detail_not_list", field="decisions"))
    seen: set[int] = set()
    for i, d in enumerate(decisions):
        where = f"decisions[{i}]"
        _check_keys(d, _DECISION_KEYS, where, kind)
        if not _is_int(d["decision_id"]) or not 1 <= d["decision_id"] <= MAX_DECISION_ID:
            raise _fail(
                kind, _d("bundle_detail_range", field=f"{where}.decision_id", max=MAX_DECISION_ID)
            )
        if d["decision_id"] in seen:
            raise _fail(kind, _d("bundle_detail_decision_twice", field=where, id=d["decision_id"]))
        seen.add(d["decision_id"])
        _check_uuid(d["uuid"], f"{where}.uuid", kind)
        if not _is_int(d["revision"]) or not 1 <= d["revision"] <= MAX_COUNTER:
            raise _fail(kind, _d("bundle_detail_range", field=f"{where}.revision", max=MAX_COUNTER))
        if d["status"] not in REVIEW_STATUSES:
            raise _fail(
                kind,
                _d("bundle_detail_review_status", field=f"{where}.status", value=repr(d["status"])),
            )
        comment = d["comment"]
        if comment is not None and (
            not isinstance(comment, str) or not 0 < len(comment) <= MAX_REVIEW_COMMENT
        ):
            raise _fail(
                kind,
                _d("bundle_detail_reason_length", field=f"{where}.comment", max=MAX_REVIEW_COMMENT),
            )
        for name, limit in (("reviewer", MAX_REVIEWER), ("decided_at", 64)):
            value = d[name]
            if not isinstance(value, str) or not 0 < len(value) <= limit:
                raise _fail(
                    kind, _d("bundle_detail_reason_length", field=f"{where}.{name}", max=limit)
                )


def read_receipt(data: bytes, hq_public: HqPublic) -> OpenedReceipt:
    """Verify a receipt (v1 or v2) against the trusted HQ key; decisions stay sealed."""
    layout = _RECEIPT if data[:4] == RECEIPT_MAGIC else _RECEIPT_V2
    bodies, signed_len = _split(data, layout)
    version = layout.magic[3]
    receipt = _parse_document(bodies[0], "receipt")
    _check_version(receipt, "receipt", version)
    _verify(
        data,
        signed_len,
        hq_public.sign_key,
        BundleError(
            "bad-signature",
            t("receipt_err_bad_signature", current_lang(), fingerprint=hq_public.fingerprint),
        ),
    )
    if version == FORMAT_VERSION:
        _validate_receipt(receipt)
    else:
        _validate_receipt_v2(receipt)
        if bool(bodies[1]) != (receipt["sealed_to"] is not None):
            raise _fail("receipt", _d("bundle_detail_sealed_to"))
        receipt = {**receipt, "imported_at": receipt["issued_at"]}
    if receipt["hq_fingerprint"] != hq_public.fingerprint:
        raise BundleError(
            "wrong-hq",
            t(
                "receipt_err_wrong_hq",
                current_lang(),
                named=receipt["hq_fingerprint"],
                trusted=hq_public.fingerprint,
            ),
        )
    sealed = bodies[1] if version != FORMAT_VERSION else b""
    return OpenedReceipt(receipt, version, sealed, hashlib.sha256(bodies[0]).digest())


def open_receipt(data: bytes, hq_public: HqPublic) -> dict[str, Any]:
    """Verify a receipt against the trusted HQ key; return its clear contents."""
    return read_receipt(data, hq_public).doc
