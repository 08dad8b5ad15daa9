"""Taking a file as the answer to a media question (image, audio, video, file).

`prepare_media` reads the file the volunteer named (a path at the prompt, or in an answers
file relative to that file) and checks it: a regular readable file, at most the form's
`max_size`, matching the question's `accept` by its name and, for common types, by its
first bytes (a PDF renamed `.jpg` is not a photo; HEIF/HEIC/AVIF by their brand). An SVG
is not a photo: an image question refuses it unless its `accept` names SVG. Every photo
loses its GPS location (EXIF and XMP) unless the question says `keep_gps: true`; a HEIC
or AVIF photo, not re-encoded here, is refused when it has one. An `image` question with
`max_pixels` gets a larger photo scaled down with Pillow (shrunk, then turned upright by
its EXIF orientation). A multi-frame image (a TIFF of several pages, an animated GIF) that
would have to be scaled or lose its GPS is refused: re-encoding keeps one frame. Images of
more than MAX_IMAGE_PIXELS are refused before they are decoded. `keep_media` then stores
it (store/media.py) and gives the answer's stored text. Problems are InvalidValue, a
message-catalog key.

Pillow is imported only inside the image functions: `yntymak --help` must not pay for it.
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
    is_media_type,
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
    (0, b"%PDF-", "application/pdf"),
)
# ISO base media files (HEIF, AVIF; MP4 too, left to the name): the major brand of the
# `ftyp` box at offset 4 says what the file is.
_BRANDS = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"hevc": "image/heic-sequence",
    b"hevx": "image/heic-sequence",
    b"hevm": "image/heic-sequence",
    b"hevs": "image/heic-sequence",
    b"mif1": "image/heif",
    b"msf1": "image/heif-sequence",
    b"avif": "image/avif",
    b"avis": "image/avif",
}
SVG = "image/svg+xml"
# Pillow's format names we write back after scaling down, by the MIME type sniffed.
_WRITABLE = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/tiff": "TIFF",
    "image/webp": "WEBP",
}
# Photos Pillow does not write back here: kept as given, refused when they carry GPS.
_OPAQUE = frozenset(
    {"image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence", "image/avif"}
)
# XMP names of a location (exif:GPSLatitude, …), looked for in the file's bytes.
_XMP_GPS = (b"GPSLatitude", b"GPSLongitude")
_XMP_TAG = 700  # TIFF XMLPacket
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
    if data[4:8] == b"ftyp" and data[8:12] in _BRANDS:
        return _BRANDS[data[8:12]]
    if _is_svg(data):
        return SVG
    return None


def _is_svg(data: bytes) -> bool:
    """An SVG document: in its first 4 kB, an `<svg` element after nothing but white space,
    an XML declaration or processing instructions, comments and a doctype. A plain scan,
    each step forward (a regular expression for this backtracks badly on `<!---->`s)."""
    head = data.removeprefix(b"\xef\xbb\xbf")[:4096].lower()
    pos = 0
    while True:
        while pos < len(head) and head[pos] in b" \t\r\n":
            pos += 1
        for opener, closer in ((b"<?", b"?>"), (b"<!--", b"-->"), (b"<!doctype", b">")):
            if head.startswith(opener, pos):
                end = head.find(closer, pos + len(opener))
                if end < 0:
                    return False
                pos = end + len(closer)
                break
        else:
            return head.startswith(b"<svg", pos) and head[pos + 4 : pos + 5] in (
                b" ",
                b"\t",
                b"\r",
                b"\n",
                b">",
                b"/",
            )


def _names_svg(patterns: list[str]) -> bool:
    """The question's `accept` names SVG itself (not only through `image/*`)."""
    return any(p in (SVG, ".svg", ".svgz") for p in patterns)


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
    if not is_media_type(guessed):  # a system's mime.types could say anything
        guessed = None
    media_type = sniffed or guessed or "application/octet-stream"
    patterns = accept_patterns(q.base_type, q.accept)
    if not accepts(patterns, name, [media_type]):
        raise InvalidValue("media_not_accepted", type=media_type, accept=", ".join(patterns))
    if media_type == SVG and q.base_type == "image" and not _names_svg(patterns):
        # An SVG is a document that can run scripts when opened in a browser, not a
        # photo: `image/*` does not take it; a form that wants drawings says so.
        raise InvalidValue("media_svg_not_photo")
    changed: bytes | None = None
    if sniffed is not None and sniffed.startswith("image/"):
        # Every photo loses its location (a `file` question's scan too); only an image
        # question says `keep_gps` or `max_pixels`.
        image = q.base_type == "image"
        changed = _fit_image(
            data,
            sniffed,
            q.max_pixels if image else None,
            keep_gps=image and bool(q.keep_gps),
        )
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
    data: bytes, sniffed: str | None, max_pixels: int | None, *, keep_gps: bool
) -> bytes | None:
    """The photo without its location (EXIF GPS, XMP) unless `keep_gps`, and, with
    `max_pixels`, scaled down so its longer side is at most that and turned upright by
    its EXIF orientation; None to keep the file as it is: small enough with no GPS to
    remove, or not an image Pillow writes back and without GPS. InvalidValue for a damaged
    image, one of more than MAX_IMAGE_PIXELS, or one with GPS that cannot be re-encoded
    here (HEIC without a plugin)."""
    from PIL import Image, UnidentifiedImageError

    fmt = _WRITABLE.get(sniffed or "")
    if fmt is None:
        if sniffed in _OPAQUE and not keep_gps and _opaque_has_gps(data):
            raise InvalidValue("media_gps_not_removable", type=sniffed)
        return None
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # Above the cap Pillow only warns (an error from twice the cap): refuse it too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            out = _reencode(data, fmt, max_pixels, keep_gps=keep_gps)
            if out is not None and not keep_gps and _reencoded_has_gps(out):
                raise InvalidValue("media_gps_not_removable", type=sniffed)
            return out
    except InvalidValue:
        raise  # a ValueError too: not a damaged image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidValue("media_too_many_pixels", limit=MAX_IMAGE_PIXELS // 1_000_000) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise InvalidValue("media_bad_image") from None


def _has_gps(img: Any, data: bytes) -> bool:
    """Whether the opened image carries a location: an EXIF GPS IFD, or XMP naming GPS
    (in the file's bytes, or in a text Pillow decoded, as a compressed PNG iTXt)."""
    # A PNG's EXIF may follow its pixels: Pillow decodes them all to find it; look first.
    if (img.format != "PNG" or b"eXIf" in data) and _GPS_IFD in img.getexif():
        return True
    texts = [data]
    for value in img.info.values():
        if isinstance(value, str):
            texts.append(value.encode("utf-8", "replace"))
        elif isinstance(value, bytes):
            texts.append(value)
    return any(marker in text for text in texts for marker in _XMP_GPS)


def _reencoded_has_gps(data: bytes) -> bool:
    """A last check of what `_reencode` wrote (Pillow may carry metadata over)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return _has_gps(img, data)


# EXIF blocks looked at in a HEIC/AVIF file, and how much of the file each is read from:
# a real photo has one, small; hostile bytes full of candidates stay bounded in time.
_EXIF_CANDIDATES = 32
_EXIF_BYTES = 1024 * 1024
_TIFF_HEADERS = (b"MM\x00*", b"II*\x00")


def _opaque_has_gps(data: bytes) -> bool:
    """Whether a file Pillow does not open here (HEIC, AVIF) carries a location: XMP names
    GPS, or an EXIF block has a GPS IFD. ISO BMFF's Exif item is a TIFF header, after an
    optional ``Exif\0\0`` (Apple writes it, libavif does not), so both are looked for.
    An ``Exif\0\0`` block that cannot be read counts as a location (refusing is the safe
    side), as do more candidates than a photo has; a bare TIFF header that does not read
    is taken for image data that happens to look like one."""
    from PIL import Image

    if any(marker in data for marker in _XMP_GPS):
        return True
    marked = _positions(data, (b"Exif\x00\x00",))
    bare = [at for at in _positions(data, _TIFF_HEADERS) if at - 6 not in marked]
    if len(marked) + len(bare) > _EXIF_CANDIDATES:
        return True
    for at in sorted(marked + bare):
        exif = Image.Exif()
        try:
            # Pillow drops a leading Exif\0\0 itself; a bare header is read as is.
            exif.load(data[at : at + _EXIF_BYTES])
        except Exception:  # a damaged or cut block
            if at in marked:
                return True
            continue
        if _GPS_IFD in exif:
            return True
    return False


def _positions(data: bytes, markers: tuple[bytes, ...]) -> list[int]:
    """Where the markers start in data, at most one past _EXIF_CANDIDATES of them."""
    out: list[int] = []
    for marker in markers:
        at = data.find(marker)
        while at >= 0 and len(out) <= _EXIF_CANDIDATES:
            out.append(at)
            at = data.find(marker, at + 1)
    return out


def _reencode(data: bytes, fmt: str, max_pixels: int | None, *, keep_gps: bool) -> bytes | None:
    """`_fit_image`'s work, inside its guard against decompression bombs."""
    import io

    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size  # from the header: nothing decoded yet
        if width * height > MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError(f"{width}x{height}")
        scale = max_pixels is not None and max(img.size) > max_pixels
        strip = not keep_gps and _has_gps(img, data)
        if not scale and not strip:
            return None
        # A multi-page TIFF or an animated GIF/WebP/PNG: what is written below is one
        # frame. Refused rather than silently cut to its first page (the volunteer keeps
        # the file and can send each page as its own photo).
        frames = getattr(img, "n_frames", 1)
        if frames > 1:
            raise InvalidValue("media_multi_frame", frames=frames)
        icc = img.info.get("icc_profile")
        if max_pixels is not None:
            # Shrink first (a JPEG is decoded at 1/2, 1/4 or 1/8 scale by draft), then
            # turn upright: the box is square, so turning after fitting gives the same size.
            img.thumbnail((max_pixels, max_pixels), Image.Resampling.LANCZOS)
        upright = ImageOps.exif_transpose(img)
        exif = upright.getexif()
        exif.pop(_ORIENTATION, None)  # the pixels are upright now
        if not keep_gps:
            exif.pop(_GPS_IFD, None)
            exif.pop(_XMP_TAG, None)  # XMP in a TIFF's IFD0 may hold GPS
        # Nothing carried over from the source but what is passed here: XMP (which may
        # hold GPS) and any other metadata Pillow would copy from `info` are left out.
        upright.info = {}
        options: dict[str, Any] = {}
        if fmt in ("JPEG", "PNG", "TIFF", "WEBP") and len(exif):
            options["exif"] = exif.tobytes()
        if fmt in ("JPEG", "WEBP"):
            options["quality"] = 90
        if fmt == "JPEG" and upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
        if fmt == "WEBP" and upright.mode not in ("RGB", "RGBA"):
            upright = upright.convert("RGBA" if "A" in upright.mode else "RGB")
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
