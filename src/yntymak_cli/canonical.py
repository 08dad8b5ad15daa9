"""Canonical JSON: one text per value, so hashes made on a laptop and at HQ agree.

Sorted keys, no spaces, UTF-8 as is, and no NaN/Infinity (JSON has none; a bundle holding
them would be refused at HQ, so nothing may store them).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# One encoder for every call: json.dumps with options builds a new encoder each time.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_text(obj: Any) -> str:
    """The canonical JSON of obj as text (what SQLite columns hold)."""
    return _ENCODER.encode(obj)


def canonical_bytes(obj: Any) -> bytes:
    """The canonical JSON of obj as UTF-8 bytes (what bundles hold and hashes are made of)."""
    return _ENCODER.encode(obj).encode("utf-8")


# What sha256_hex gives: 64 lowercase hex digits (use with fullmatch).
SHA256_HEX_RE = re.compile(r"[0-9a-f]{64}")


def sha256_hex(obj: Any) -> str:
    """SHA-256 of the canonical JSON of obj, as lowercase hex."""
    return hashlib.sha256(canonical_bytes(obj)).hexdigest()
