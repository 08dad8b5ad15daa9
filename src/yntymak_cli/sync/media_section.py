"""The media section of a bundle (format 2): each file encrypted in chunks with the bundle's
content key. See docs/bundle-format.md, "Media section".

A file of `size` bytes travels as ceil(size / CHUNK_SIZE) chunks, each a SecretBox
(XSalsa20-Poly1305) ciphertext of up to CHUNK_SIZE bytes. The content key is random per
bundle and travels inside the sealed payload with the list of files (hash, size, type), so
the section's layout follows from that list and nothing in it is read in the clear. The
nonce names the file's place in the list, the chunk's place in the file and whether it is
the last one: chunks cannot be reordered, moved between files or cut off without the MAC
failing. The whole section is also under the device's signature, and HQ compares each
file's SHA-256 with the list (and the list with the answers) before it keeps anything.

Memory: one chunk at a time, both ways.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import nacl.exceptions
from nacl.secret import SecretBox

# The media type check lives with the other media answer rules; the container uses it here.
from yntymak_cli.forms.media import MAX_MEDIA_TYPE as MAX_MEDIA_TYPE
from yntymak_cli.forms.media import is_media_type as is_media_type

CHUNK_SIZE = 1024 * 1024  # plaintext bytes per chunk
CHUNK_OVERHEAD = SecretBox.MACBYTES  # 16: the Poly1305 tag
KEY_SIZE = SecretBox.KEY_SIZE  # 32
# A bundle carries at most this many files, each at most this large; and all of them, with
# the payload, within the bundle's size limit (container.MAX_PAYLOAD_SECTION_SIZE).
MAX_MEDIA_FILES = 10_000
MAX_MEDIA_FILE_SIZE = 1024 * 1024 * 1024  # forms' max_size goes up to "1 GB"


@dataclass(frozen=True)
class MediaEntry:
    """One file of a bundle: what the sealed payload lists (sha256, size, media_type)."""

    sha256: str
    size: int
    media_type: str

    def doc(self) -> dict[str, object]:
        return {"sha256": self.sha256, "size": self.size, "media_type": self.media_type}


class MediaMismatch(Exception):
    """A file's bytes do not decrypt, or do not hash to the listed sha256 (HQ: refuse)."""

    def __init__(self, index: int, entry: MediaEntry, detail: str) -> None:
        super().__init__(detail)
        self.index, self.entry, self.detail = index, entry, detail


def chunks_of(size: int) -> int:
    return max(1, -(-size // CHUNK_SIZE))


def encrypted_size(size: int) -> int:
    return size + CHUNK_OVERHEAD * chunks_of(size)


def section_size(entries: list[MediaEntry]) -> int:
    return sum(encrypted_size(e.size) for e in entries)


def _nonce(file_index: int, chunk_index: int, last: bool) -> bytes:
    # 4 + 8 + 1 bytes of position, zero padded to the 24-byte XSalsa20 nonce. The key is
    # random per bundle, so a position is never used twice with it.
    return struct.pack(">IQ?", file_index, chunk_index, last).ljust(SecretBox.NONCE_SIZE, b"\0")


def encrypt_file(
    box: SecretBox, index: int, entry: MediaEntry, source: BinaryIO
) -> Iterator[bytes]:
    """The encrypted chunks of one file read from `source`; ValueError if its bytes are not
    `entry` (changed on disk since they were recorded): a device must never send what HQ
    refuses."""
    digest = hashlib.sha256()
    n = chunks_of(entry.size)
    for i in range(n):
        want = min(CHUNK_SIZE, entry.size - i * CHUNK_SIZE)
        chunk = source.read(want)
        if len(chunk) != want:
            raise ValueError(f"media file {entry.sha256[:12]} is shorter than recorded")
        digest.update(chunk)
        yield box.encrypt(chunk, _nonce(index, i, i == n - 1)).ciphertext
    if source.read(1) or digest.hexdigest() != entry.sha256:
        raise ValueError(f"media file {entry.sha256[:12]} changed on disk")


def decrypt_file(
    box: SecretBox, index: int, entry: MediaEntry, source: BinaryIO
) -> Iterator[bytes]:
    """The plaintext chunks of one file, read from `source` at its place in the section.

    Raises MediaMismatch (after the last chunk, for the hash) when a chunk does not
    authenticate or the file does not hash to its listed sha256: a caller writes the
    chunks to a temporary file and keeps it only when the iteration ends cleanly.
    """
    digest = hashlib.sha256()
    n = chunks_of(entry.size)
    for i in range(n):
        want = min(CHUNK_SIZE, entry.size - i * CHUNK_SIZE) + CHUNK_OVERHEAD
        data = source.read(want)
        if len(data) != want:
            raise MediaMismatch(index, entry, "truncated")
        try:
            chunk = box.decrypt(data, _nonce(index, i, i == n - 1))
        except nacl.exceptions.CryptoError:
            raise MediaMismatch(index, entry, "does not decrypt") from None
        digest.update(chunk)
        yield chunk
    if digest.hexdigest() != entry.sha256:
        raise MediaMismatch(index, entry, "does not match its sha256")


def write_section(box: SecretBox, files: list[tuple[MediaEntry, Path]], out: BinaryIO) -> None:
    for index, (entry, path) in enumerate(files):
        with open(path, "rb") as source:
            for piece in encrypt_file(box, index, entry, source):
                out.write(piece)
