"""Canonical JSON: one text per value, so hashes made on a laptop and at HQ agree.

Sorted keys, no spaces, UTF-8 as is, and no NaN/Infinity (JSON has none; a bundle holding
them would be refused at HQ, so nothing may store them).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# One encoder for every call: json.dumps with options builds a new encoder each time.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(obj: Any) -> str:
    return _ENCODER.encode(obj)


def canonical_bytes(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode("utf-8")


def sha256_hex(obj: Any) -> str:
    """SHA-256 of the canonical JSON of obj, as lowercase hex."""
    return hashlib.sha256(canonical_bytes(obj)).hexdigest()
