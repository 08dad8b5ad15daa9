"""Device and HQ keys, and the small JSON files that carry public keys between them.

Secret key files (`device.key`, `hq.key`) are created once with mode 0600 and never
rewritten. Public key files (`device.pub`, `hq.pub`, `trusted_hq.pub`) are versioned JSON,
read with strict validation because they arrive over USB sticks and messengers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.public import PrivateKey
from nacl.signing import SigningKey, VerifyKey

from yntymak_cli.errors import InvalidInput, YntymakError
from yntymak_cli.files import write_atomic

DEVICE_KEY_FILE = "device.key"
# The device's X25519 key (decisions from HQ are sealed to it), beside device.key: a key of
# its own, not derived from the signing key (see docs/bundle-format.md, "Device keys").
DEVICE_BOX_KEY_FILE = "device_box.key"
DEVICE_PUB_FILE = "device.pub"
HQ_KEY_FILE = "hq.key"
HQ_PUB_FILE = "hq.pub"
TRUSTED_HQ_FILE = "trusted_hq.pub"

DEVICE_KEY_FORMAT = "yntymak-device-key"
DEVICE_BOX_KEY_FORMAT = "yntymak-device-box-key"
DEVICE_PUB_FORMAT = "yntymak-device-pub"
HQ_KEY_FORMAT = "yntymak-hq-key"
HQ_PUB_FORMAT = "yntymak-hq-pub"
KEY_FILE_VERSION = 1
# device.pub version 2 adds the device's X25519 key, signed by its Ed25519 key; version 1
# (from laptops before the review round trip) is still read.
DEVICE_PUB_VERSION = 2
# What the device signs to vouch for its X25519 key: a fixed context, then the key. The
# fingerprint HQ checks by phone covers the signing key, and so, through this, the box key.
BOX_KEY_CONTEXT = b"yntymak device box key v1\x00"

KEY_SIZE = 32  # Ed25519 public keys and seeds, X25519 public and secret keys
SIGNATURE_SIZE = 64  # Ed25519
MAX_KEY_FILE_SIZE = 64 * 1024  # key files are a few hundred bytes; refuse anything odd early

_FORMAT_NAMES = {
    DEVICE_KEY_FORMAT: "a device secret key (device.key)",
    DEVICE_BOX_KEY_FORMAT: "a device encryption key (device_box.key)",
    DEVICE_PUB_FORMAT: "a device public key (device.pub)",
    HQ_KEY_FORMAT: "an HQ secret key (hq.key)",
    HQ_PUB_FORMAT: "an HQ public key (hq.pub)",
}
# The same descriptions (and those of read_sync_file) in the message language.
_WHAT_KEYS = {
    _FORMAT_NAMES[DEVICE_KEY_FORMAT]: "sync_what_device_key_file",
    _FORMAT_NAMES[DEVICE_BOX_KEY_FORMAT]: "sync_what_device_box_key_file",
    _FORMAT_NAMES[DEVICE_PUB_FORMAT]: "sync_what_device_pub_file",
    _FORMAT_NAMES[HQ_KEY_FORMAT]: "sync_what_hq_key_file",
    _FORMAT_NAMES[HQ_PUB_FORMAT]: "sync_what_hq_pub_file",
    "a device key": "sync_what_device_key",
    "a device public key": "sync_what_device_pub",
    "an HQ key": "sync_what_hq_key",
    "an HQ public key": "sync_what_hq_pub",
    "a bundle": "sync_what_bundle",
    "a receipt": "sync_what_receipt",
}


def what_text(what: str) -> str:
    """A file description ("a bundle", "an HQ public key (hq.pub)") in the message language."""
    from yntymak_cli.i18n import current_lang, t

    return t(_WHAT_KEYS[what], current_lang()) if what in _WHAT_KEYS else what


def _t(key: str, **params: Any) -> str:
    """A message of the catalogs in the message language (i18n imported late, like above)."""
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


def fields_text(missing: list[str], extra: list[str]) -> str:
    """The words around missing and unexpected field names, in the message language."""
    parts = ([_t("sync_missing_fields", names=", ".join(missing))] if missing else []) + (
        [_t("sync_unexpected_fields", names=", ".join(extra))] if extra else []
    )
    return "; ".join(parts)


# -- identifiers ---------------------------------------------------------------------------


def fingerprint(public_bytes: bytes) -> str:
    """Short form of a public key to compare over the phone: `3F2A-91BC-0D44-7E10`."""
    digest = hashlib.sha256(public_bytes).digest()[:8].hex().upper()
    return "-".join(digest[i : i + 4] for i in range(0, 16, 4))


def _short_id(public_bytes: bytes) -> str:
    # 80 bits of SHA-256 in lowercase base32: 16 chars of [a-z2-7], no padding, safe in paths.
    return base64.b32encode(hashlib.sha256(public_bytes).digest()[:10]).decode("ascii").lower()


def device_id_for(verify_key: bytes) -> str:
    """The device id is derived from its Ed25519 public key, so it is stable for that key."""
    return _short_id(verify_key)


def hq_id_for(sign_key: bytes, box_key: bytes) -> str:
    return _short_id(sign_key + box_key)


def hq_fingerprint_for(sign_key: bytes, box_key: bytes) -> str:
    """HQ fingerprint covers both keys, so neither can be swapped unnoticed."""
    return fingerprint(sign_key + box_key)


# -- data classes --------------------------------------------------------------------------


@dataclass(frozen=True)
class DevicePublic:
    device_id: str
    sign_key: bytes  # Ed25519 verify key
    fingerprint: str
    # X25519 public key HQ seals decisions to, and the device's signature over it
    # (BOX_KEY_CONTEXT + box_key); None in a version 1 device.pub.
    box_key: bytes | None = None
    box_signature: bytes | None = None


@dataclass(frozen=True)
class DeviceIdentity:
    device_id: str
    signing_key: SigningKey
    verify_key_bytes: bytes
    fingerprint: str
    box_key: PrivateKey | None = None  # None only before load_or_create_device_identity

    def public(self) -> DevicePublic:
        if self.box_key is None:
            return DevicePublic(self.device_id, self.verify_key_bytes, self.fingerprint)
        box_pub = bytes(self.box_key.public_key)
        signature = self.signing_key.sign(BOX_KEY_CONTEXT + box_pub).signature
        return DevicePublic(
            self.device_id, self.verify_key_bytes, self.fingerprint, box_pub, bytes(signature)
        )


def box_key_fingerprint(box_key: bytes) -> str:
    """Names the X25519 key a receipt's decisions are sealed to (in the receipt, clear)."""
    return fingerprint(box_key)


@dataclass(frozen=True)
class HqPublic:
    hq_id: str
    sign_key: bytes  # Ed25519 verify key (signs receipts)
    box_key: bytes  # X25519 public key (bundles are sealed to it)
    fingerprint: str


@dataclass(frozen=True)
class HqIdentity:
    hq_id: str
    signing_key: SigningKey
    box_key: PrivateKey
    fingerprint: str

    def public(self) -> HqPublic:
        return HqPublic(
            self.hq_id,
            bytes(self.signing_key.verify_key),
            bytes(self.box_key.public_key),
            self.fingerprint,
        )


def _device_from_seed(seed: bytes) -> DeviceIdentity:
    signing_key = SigningKey(seed)
    verify = bytes(signing_key.verify_key)
    return DeviceIdentity(device_id_for(verify), signing_key, verify, fingerprint(verify))


def _hq_from_secrets(sign_seed: bytes, box_secret: bytes) -> HqIdentity:
    signing_key = SigningKey(sign_seed)
    box_key = PrivateKey(box_secret)
    sign_pub, box_pub = bytes(signing_key.verify_key), bytes(box_key.public_key)
    return HqIdentity(
        hq_id_for(sign_pub, box_pub),
        signing_key,
        box_key,
        hq_fingerprint_for(sign_pub, box_pub),
    )


# -- strict parsing helpers ----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(_t("key_err_duplicate_key"))
    return dict(pairs)


def _load_json_object(raw: bytes, source: str, what: str) -> dict[str, Any]:
    if len(raw) > MAX_KEY_FILE_SIZE:
        raise InvalidInput(
            _t("key_err_too_large", path=source, what=what_text(what), size=len(raw))
        )
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput(
            _t("key_err_invalid_json", path=source, what=what_text(what), error=exc)
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(_t("key_err_not_object", path=source, what=what_text(what)))
    return data


def _check_envelope(
    data: dict[str, Any],
    source: str,
    fmt: str,
    keys: set[str],
    versions: dict[int, set[str]] | None = None,
) -> int:
    """Check format, version and exact fields; return the version. `versions` maps each
    readable version to its fields (default: KEY_FILE_VERSION with `keys`)."""
    versions = versions or {KEY_FILE_VERSION: keys}
    newest = max(versions)
    what = _FORMAT_NAMES[fmt]
    found = data.get("format")
    if found != fmt:
        from yntymak_cli.i18n import current_lang, t

        lang = current_lang()
        if found in _FORMAT_NAMES:  # another key file of ours: say which one it is
            message = t(
                "sync_key_file_is_other",
                lang,
                path=source,
                what=what_text(what),
                found=what_text(_FORMAT_NAMES[found]),
            )
        else:
            message = t(
                "sync_key_file_wrong_format",
                lang,
                path=source,
                what=what_text(what),
                found=repr(found),
            )
        raise InvalidInput(message)
    version = data.get("version")
    if type(version) is not int or version not in versions:
        newer = type(version) is int and version > newest
        raise InvalidInput(
            _t(
                "key_err_version",
                path=source,
                what=what_text(what),
                version=repr(version),
                supported=newest,
                hint=_t("bundle_err_upgrade") if newer else "",
            )
        )
    expected = versions[version] | {"format", "version"}
    if set(data) != expected:
        missing = sorted(expected - set(data))
        extra = sorted(set(data) - expected)
        raise InvalidInput(
            _t(
                "key_err_malformed",
                path=source,
                what=what_text(what),
                parts=fields_text(missing, extra),
            )
        )
    return version


def _key_field(data: dict[str, Any], field: str, source: str) -> bytes:
    value = data[field]
    if not isinstance(value, str):
        raise InvalidInput(_t("key_err_not_b64_string", path=source, field=repr(field)))
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(_t("key_err_bad_b64", path=source, field=repr(field))) from None
    # Re-encoding rejects non-canonical padding bits: one key, one spelling.
    if _b64(raw) != value:
        raise InvalidInput(_t("key_err_noncanonical_b64", path=source, field=repr(field)))
    if len(raw) != KEY_SIZE:
        raise InvalidInput(
            _t("key_err_key_size", path=source, field=repr(field), size=KEY_SIZE, found=len(raw))
        )
    return raw


def _check_derived(data: dict[str, Any], field: str, expected: str, source: str) -> None:
    if data[field] != expected:
        raise InvalidInput(
            _t(
                "key_err_derived",
                path=source,
                field=field,
                value=repr(data[field]),
                expected=repr(expected),
            )
        )


def read_sync_file(path: Path | str, what: str, limit: int) -> bytes:
    """A key, bundle or receipt file: a regular file (a FIFO would hang) of at most `limit`
    bytes, read a megabyte at a time; a missing one named in the words of sync."""
    from yntymak_cli.files import FileRefused, read_limited
    from yntymak_cli.i18n import current_lang, t

    try:
        return read_limited(path, limit, what)
    except FileRefused as exc:
        if exc.missing:
            raise InvalidInput(
                t("sync_file_not_found", current_lang(), path=path, what=what_text(what))
            ) from None
        raise


def cannot_write(path: Path, exc: OSError) -> YntymakError:
    """A bundle or receipt that could not be written, said as such (a full disk, a
    read-only stick), not as an errno."""
    return YntymakError(_t("sync_cannot_write", path=path, error=exc.strerror or exc))


def write_sync_file(path: Path, data: bytes) -> None:
    """Write a receipt (or bundle) whole or not at all (files.write_atomic)."""
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise cannot_write(path, exc) from exc


def _read_small(path: Path, what: str) -> bytes:
    from yntymak_cli.files import FileRefused

    try:
        return read_sync_file(path, what, MAX_KEY_FILE_SIZE)
    except FileRefused as exc:
        raise InvalidInput(
            _t("key_err_cannot_read", path=path, what=what_text(what), reason=exc.reason)
        ) from None


# -- file writing --------------------------------------------------------------------------


def _create_secret_file(path: Path, data: bytes) -> bool:
    """Publish a secret file (mode 0600) only if none exists; False if another process won.

    The temp file is complete before it appears under the final name, and publishing it
    never replaces a file (files.publish), so two racing processes end with exactly one key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(path, data, mode=0o600, overwrite=False)
    except FileExistsError:
        return False
    return True


def _write_public_file(path: Path, data: dict[str, Any]) -> None:
    # Public files may be replaced; written whole, so readers never see half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_atomic(path, text.encode("utf-8"), mode=0o644)


# -- device identity -----------------------------------------------------------------------


def _parse_device_key(raw: bytes, path: Path) -> DeviceIdentity:
    source = str(path)
    data = _load_json_object(raw, source, _FORMAT_NAMES[DEVICE_KEY_FORMAT])
    _check_envelope(data, source, DEVICE_KEY_FORMAT, {"sign_seed"})
    return _device_from_seed(_key_field(data, "sign_seed", source))


def _parse_box_key(raw: bytes, path: Path) -> PrivateKey:
    source = str(path)
    data = _load_json_object(raw, source, _FORMAT_NAMES[DEVICE_BOX_KEY_FORMAT])
    _check_envelope(data, source, DEVICE_BOX_KEY_FORMAT, {"box_secret"})
    return PrivateKey(_key_field(data, "box_secret", source))


def _load_secret(home: Path, name: str, what: str, parse: Any) -> Any:
    path = Path(home) / name
    if not path.exists():
        return None
    try:
        return parse(_read_small(path, what), path)
    except InvalidInput as exc:
        raise InvalidInput(_t("key_err_restore", error=exc)) from exc  # which check refused


def load_device_identity(home: Path) -> DeviceIdentity | None:
    """This laptop's identity, or None if it has none yet (box_key None if it has none)."""
    identity = _load_secret(home, DEVICE_KEY_FILE, "a device key", _parse_device_key)
    if identity is None:
        return None
    box = _load_secret(home, DEVICE_BOX_KEY_FILE, "a device encryption key", _parse_box_key)
    return replace(identity, box_key=box)


def load_or_create_device_identity(home: Path) -> DeviceIdentity:
    """Load `home/device.key` and `home/device_box.key`, creating each (mode 0600) on first
    use. A laptop enrolled before the box key existed gets one here, beside its old key."""
    identity = load_device_identity(home)
    if identity is None:
        seed = bytes(SigningKey.generate())
        record = {
            "format": DEVICE_KEY_FORMAT,
            "version": KEY_FILE_VERSION,
            "sign_seed": _b64(seed),
        }
        _create_secret_file(
            Path(home) / DEVICE_KEY_FILE, json.dumps(record).encode("utf-8") + b"\n"
        )
    if identity is None or identity.box_key is None:
        box = {
            "format": DEVICE_BOX_KEY_FORMAT,
            "version": KEY_FILE_VERSION,
            "box_secret": _b64(bytes(PrivateKey.generate())),
        }
        _create_secret_file(
            Path(home) / DEVICE_BOX_KEY_FILE, json.dumps(box).encode("utf-8") + b"\n"
        )
    # Whether we won a race or not, the keys on disk are the one identity of this laptop.
    identity = load_device_identity(home)
    if identity is None or identity.box_key is None:  # pragma: no cover - deleted right now
        raise YntymakError(_t("key_err_vanished", path=Path(home) / DEVICE_KEY_FILE))
    return identity


# -- public key files ----------------------------------------------------------------------


_DEVICE_PUB_V1 = {"device_id", "sign_key", "fingerprint"}
_DEVICE_PUB_FIELDS = {1: _DEVICE_PUB_V1, 2: _DEVICE_PUB_V1 | {"box_key", "box_signature"}}


def parse_device_public(raw: bytes, source: str) -> DevicePublic:
    data = _load_json_object(raw, source, _FORMAT_NAMES[DEVICE_PUB_FORMAT])
    version = _check_envelope(
        data, source, DEVICE_PUB_FORMAT, _DEVICE_PUB_V1, versions=_DEVICE_PUB_FIELDS
    )
    sign_key = _key_field(data, "sign_key", source)
    _check_derived(data, "device_id", device_id_for(sign_key), source)
    _check_derived(data, "fingerprint", fingerprint(sign_key), source)
    if version == 1:
        return DevicePublic(data["device_id"], sign_key, data["fingerprint"])
    box_key = _key_field(data, "box_key", source)
    signature = _signature_field(data, "box_signature", source)
    try:
        VerifyKey(sign_key).verify(BOX_KEY_CONTEXT + box_key, signature)
    except (BadSignatureError, ValueError, TypeError):
        # Another key than the laptop's own, slipped into its device.pub on the way.
        raise InvalidInput(_t("key_err_box_signature", path=source)) from None
    return DevicePublic(data["device_id"], sign_key, data["fingerprint"], box_key, signature)


def _signature_field(data: dict[str, Any], field: str, source: str) -> bytes:
    value = data[field]
    raw = b""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
    if len(raw) != SIGNATURE_SIZE or _b64(raw) != value:
        raise InvalidInput(_t("key_err_bad_b64", path=source, field=repr(field)))
    return raw


def read_device_public(path: Path) -> DevicePublic:
    path = Path(path)
    return parse_device_public(_read_small(path, "a device public key"), str(path))


def write_device_public(path: Path, pub: DevicePublic) -> None:
    data: dict[str, Any] = {
        "format": DEVICE_PUB_FORMAT,
        "version": KEY_FILE_VERSION,
        "device_id": pub.device_id,
        "sign_key": _b64(pub.sign_key),
        "fingerprint": pub.fingerprint,
    }
    if pub.box_key is not None and pub.box_signature is not None:
        data.update(
            version=DEVICE_PUB_VERSION,
            box_key=_b64(pub.box_key),
            box_signature=_b64(pub.box_signature),
        )
    _write_public_file(Path(path), data)


def parse_hq_public(raw: bytes, source: str) -> HqPublic:
    data = _load_json_object(raw, source, _FORMAT_NAMES[HQ_PUB_FORMAT])
    _check_envelope(data, source, HQ_PUB_FORMAT, {"hq_id", "sign_key", "box_key", "fingerprint"})
    sign_key = _key_field(data, "sign_key", source)
    box_key = _key_field(data, "box_key", source)
    _check_derived(data, "hq_id", hq_id_for(sign_key, box_key), source)
    _check_derived(data, "fingerprint", hq_fingerprint_for(sign_key, box_key), source)
    return HqPublic(data["hq_id"], sign_key, box_key, data["fingerprint"])


def read_hq_public(path: Path) -> HqPublic:
    path = Path(path)
    return parse_hq_public(_read_small(path, "an HQ public key"), str(path))


def write_hq_public(path: Path, pub: HqPublic) -> None:
    _write_public_file(
        Path(path),
        {
            "format": HQ_PUB_FORMAT,
            "version": KEY_FILE_VERSION,
            "hq_id": pub.hq_id,
            "sign_key": _b64(pub.sign_key),
            "box_key": _b64(pub.box_key),
            "fingerprint": pub.fingerprint,
        },
    )


# -- HQ identity ---------------------------------------------------------------------------


def create_hq_identity(home: Path) -> HqIdentity:
    """Create `home/hq.key` (mode 0600); refuses if an HQ key already exists."""
    path = Path(home) / HQ_KEY_FILE
    exists_msg = _t("key_err_hq_exists", path=path)
    if path.exists():
        raise InvalidInput(exists_msg)  # refused: exit 2
    identity = _hq_from_secrets(bytes(SigningKey.generate()), bytes(PrivateKey.generate()))
    record = {
        "format": HQ_KEY_FORMAT,
        "version": KEY_FILE_VERSION,
        "sign_seed": _b64(bytes(identity.signing_key)),
        "box_secret": _b64(bytes(identity.box_key)),
    }
    if not _create_secret_file(path, json.dumps(record).encode("utf-8") + b"\n"):
        raise InvalidInput(exists_msg)  # refused: exit 2
    return identity


def load_hq_identity(home: Path) -> HqIdentity:
    path = Path(home) / HQ_KEY_FILE
    if not path.exists():
        from yntymak_cli.i18n import current_lang, t

        raise InvalidInput(t("sync_no_hq_key", current_lang(), path=path))
    source = str(path)
    raw = _read_small(path, "an HQ key")
    data = _load_json_object(raw, source, _FORMAT_NAMES[HQ_KEY_FORMAT])
    _check_envelope(data, source, HQ_KEY_FORMAT, {"sign_seed", "box_secret"})
    return _hq_from_secrets(
        _key_field(data, "sign_seed", source), _key_field(data, "box_secret", source)
    )


# -- trusted HQ on a device ----------------------------------------------------------------


def load_trusted_hq(home: Path) -> HqPublic | None:
    path = Path(home) / TRUSTED_HQ_FILE
    if not path.exists():
        return None
    return read_hq_public(path)


def trust_hq(home: Path, hq: HqPublic, *, replace: bool = False) -> None:
    """Store the HQ this device sends bundles to.

    Switching to a different HQ silently would send field data to whoever handed over the
    file, so a different HQ needs `replace=True` (the CLI should show both fingerprints).
    """
    current = None if replace else load_trusted_hq(home)
    if current is not None and current != hq:
        raise InvalidInput(  # refused: exit 2
            _t("key_err_other_hq", current=current.fingerprint, new=hq.fingerprint)
        )
    write_hq_public(Path(home) / TRUSTED_HQ_FILE, hq)
