"""Taking a file as the answer to a media question (image, audio, video, file).

`prepare_media` reads the file the volunteer named (a path at the prompt, or in an answers
file relative to that file) and checks it: a regular readable file, at most the form's
`max_size`, matching the question's `accept` by its name and, for common types, by its
first bytes (a PDF renamed `.jpg` is not a photo). An `image` question with `max_pixels`
gets a larger photo scaled down with Pillow (EXIF orientation applied first, EXIF GPS
removed unless `keep_gps: true`). `keep_media` then stores it (store/media.py) and gives
the answer's stored text. Problems are InvalidValue, a message-catalog key.

Pillow is imported only inside `_fit_image`: `yntymak --help` must not pay for it.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yntymak_cli.files import FileRefused, read_limited
from yntymak_cli.forms.media import (
    MediaRef,
    accept_patterns,
    accepts,
    max_size,
    parse_ref,
    safe_name,
)
from yntymak_cli.forms.values import InvalidValue

if TYPE_CHECKING:
    from yntymak_cli.forms.model import Form, Question
    from yntymak_cli.store.db import Store

# First bytes of common files -> their MIME type. Enough to tell a photo from a document;
# anything else is typed by its name (mimetypes).
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"BM", "image/bmp"),
    (4, b"ftypheic", "image/heic"),
    (4, b"ftypheix", "image/heic"),
    (4, b"ftypmif1", "image/heif"),
    (0, b"%PDF-", "application/pdf"),
)
# Pillow's format names we write back after scaling down, by the MIME type sniffed.
_WRITABLE = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/tiff": "TIFF"}
_GPS_IFD = 0x8825
_ORIENTATION = 0x0112
# The most pixels of a photo Pillow is let decode (Image.MAX_IMAGE_PIXELS): a 684 kB PNG can
# say 13000x13000 and take 2 GB once decoded. 64 megapixels is above any phone camera.
MAX_IMAGE_PIXELS = 64_000_000


@dataclass(frozen=True)
class PreparedMedia:
    """A checked file, ready to keep: its bytes when they were changed (scaled down),
    else None and `source` is read again when it is kept (so a thousand photos in an
    answers run are not all held in memory), its hash checked against `sha256`."""

    name: str
    sha256: str
    size: int
    media_type: str
    source: Path
    data: bytes | None = None

    @property
    def ref(self) -> MediaRef:
        return MediaRef(self.name, self.sha256)


def sniff(data: bytes) -> str | None:
    """The MIME type of `data` by its first bytes, for the common types; None otherwise."""
    for offset, magic, mime in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} kB"
    return f"{size} B"


def prepare_media(form: Form, q: Question, path: Path) -> PreparedMedia:
    """Read and check the file at `path` for question `q`; InvalidValue when refused."""
    path = Path(os.path.expanduser(str(path)))
    limit = max_size(form)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InvalidValue("media_missing", path=str(path)) from None
    except (OSError, ValueError):
        info = None  # read_limited says why
    if info is not None and stat.S_ISREG(info.st_mode) and info.st_size > limit:
        raise InvalidValue(
            "media_too_large", size=_size_text(info.st_size), limit=_size_text(limit)
        )
    try:
        data = read_limited(path, limit, "a media file")
    except FileRefused as exc:
        if exc.missing:
            raise InvalidValue("media_missing", path=str(path)) from None
        raise InvalidValue("media_unreadable", reason=exc.reason) from None
    if not data:
        raise InvalidValue("media_empty")
    name = safe_name(path.name)
    sniffed = sniff(data)
    guessed = mimetypes.guess_type(name, strict=False)[0]
    media_type = sniffed or guessed or "application/octet-stream"
    patterns = accept_patterns(q.base_type, q.accept)
    if not accepts(patterns, name, [media_type]):
        raise InvalidValue("media_not_accepted", type=media_type, accept=", ".join(patterns))
    changed: bytes | None = None
    if q.base_type == "image" and q.max_pixels:
        changed = _fit_image(data, sniffed, q.max_pixels, keep_gps=q.keep_gps)
    kept = changed if changed is not None else data
    return PreparedMedia(
        name=name,
        sha256=hashlib.sha256(kept).hexdigest(),
        size=len(kept),
        media_type=media_type,
        source=path,
        data=changed,
    )


def _fit_image(
    data: bytes, sniffed: str | None, max_pixels: int, *, keep_gps: bool
) -> bytes | None:
    """The photo scaled down so its longer side is at most `max_pixels`, turned upright
    by its EXIF orientation, without EXIF GPS unless `keep_gps`; None to keep the file as
    it is: already small enough with no GPS to remove, or a format Pillow cannot write
    back (HEIC without a plugin: kept whole rather than refused)."""
    from PIL import Image, UnidentifiedImageError

    fmt = _WRITABLE.get(sniffed or "")
    if fmt is None:
        return None
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # Above the cap Pillow only warns (an error from twice the cap): refuse it too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _reencode(data, fmt, max_pixels, keep_gps=keep_gps)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidValue("media_too_many_pixels", limit=MAX_IMAGE_PIXELS // 1_000_000) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise InvalidValue("media_bad_image") from None


def _reencode(data: bytes, fmt: str, max_pixels: int, *, keep_gps: bool) -> bytes | None:
    """`_fit_image`'s work, inside its guard against decompression bombs."""
    import io

    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size  # from the header: nothing decoded yet
        if width * height > MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError(f"{width}x{height}")
        exif = img.getexif()
        has_gps = _GPS_IFD in exif
        if max(img.size) <= max_pixels and (keep_gps or not has_gps):
            return None
        icc = img.info.get("icc_profile")
        # Shrink first (a JPEG is decoded at 1/2, 1/4 or 1/8 scale by draft), then turn
        # upright: the box is square, so turning after fitting gives the same size.
        img.thumbnail((max_pixels, max_pixels), Image.Resampling.LANCZOS)
        upright = ImageOps.exif_transpose(img)
        exif = upright.getexif()
        exif.pop(_ORIENTATION, None)  # the pixels are upright now
        if not keep_gps:
            exif.pop(_GPS_IFD, None)
        options: dict[str, Any] = {}
        if fmt in ("JPEG", "PNG", "TIFF") and len(exif):
            options["exif"] = exif.tobytes()
        if fmt == "JPEG":
            options["quality"] = 90
            if upright.mode not in ("RGB", "L", "CMYK"):
                upright = upright.convert("RGB")
        if icc:
            options["icc_profile"] = icc
        out = io.BytesIO()
        upright.save(out, format=fmt, **options)
        return bytes(out.getvalue())


def keep_media(store: Store, prepared: PreparedMedia) -> MediaRef:
    """Store the checked file in the home (store/media.py); the answer's MediaRef.
    InvalidValue when the file changed since it was checked."""
    from yntymak_cli.store.media import put_media

    data = prepared.data
    if data is None:
        try:
            data = read_limited(prepared.source, prepared.size, "a media file")
        except FileRefused as exc:
            raise InvalidValue("media_unreadable", reason=exc.reason) from None
        if hashlib.sha256(data).hexdigest() != prepared.sha256:
            raise InvalidValue("media_changed", path=str(prepared.source))
    return put_media(store, data, prepared.name, prepared.media_type)


def kept_answer(store: Store, value: Any) -> MediaRef | None:
    """`value` when it is a stored media answer whose file is in the home (an edit keeping
    its photo, Enter on the shown answer), else None: it is to be read as a path."""
    from yntymak_cli.store.media import has_file

    ref = parse_ref(value)
    if ref is not None and has_file(store, ref.sha256):
        return ref
    return None
