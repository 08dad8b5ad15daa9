"""Media questions (issue 16): image, audio, video and file answers taken from a path,
checked, kept under HOME/media by hash, exported with links, carried in bundles to HQ
(checked there and kept once), exported at HQ, erased by purge after HQ's receipt."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from yntymak_cli.canonical import canonical_bytes
from yntymak_cli.forms.media import parse_ref

from .helpers import collect_in, rows, yn

FORM = """\
id: media_visit
version: "1"
title: Visit
max_size: 200 kB
questions:
  - name: village
    type: text
    label: Village
  - name: photo
    type: image
    label: Photo of the work
    required: true
  - name: small
    type: image
    label: Small photo
    max_pixels: 100
  - name: located
    type: image
    label: Located photo
    max_pixels: 100
    keep_gps: true
  - name: doc
    type: file
    label: Document
    accept: .pdf, .txt
"""

# EXIF tags: Orientation (6: the camera was turned, show rotated 90° clockwise) and the GPS IFD.
ORIENTATION, GPS_IFD = 0x0112, 0x8825


def photo(path: Path, size=(400, 200), *, orientation: int | None = None, gps: bool = False):
    """A JPEG whose left half is red and right half blue, with optional EXIF."""
    img = Image.new("RGB", size, (220, 0, 0))
    img.paste((0, 0, 220), (size[0] // 2, 0, size[0], size[1]))
    exif = Image.Exif()
    if orientation:
        exif[ORIENTATION] = orientation
    if gps:
        exif[GPS_IFD] = {1: "N", 2: (42.0, 52.0, 30.0), 3: "E", 4: (74.0, 35.0, 0.0)}
    img.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    return path


def png(path: Path) -> Path:
    Image.new("RGB", (30, 20), (0, 128, 0)).save(path, "PNG")
    return path


@pytest.fixture
def form(tmp_path: Path) -> Path:
    path = tmp_path / "visit.yaml"
    path.write_text(FORM, encoding="utf-8")
    return path


def answers(folder: Path, text: str, name: str = "answers.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def media_files(home: Path) -> list[Path]:
    root = home / "media"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def stored(home: Path, uuid: str) -> dict:
    return json.loads(yn(home, "submissions", "show", uuid, "--json"))["answers"]


def count(home: Path, table: str) -> int:
    with sqlite3.connect(home / "yntymak.db") as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


# -- collect --answers ------------------------------------------------------------------------


def test_answers_file_with_a_photo_and_a_document(yntymak_home, form, tmp_path):
    folder = tmp_path / "visit"
    png(folder.mkdir() or folder / "work.png")
    (folder / "act.txt").write_text("signed", encoding="utf-8")
    path = answers(folder, "village: Kara-Suu\nphoto: work.png\ndoc: act.txt\n")
    os.chdir(tmp_path)  # the paths are relative to the answers file, not to here
    uuid = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "Aida").strip()

    saved = stored(yntymak_home, uuid)
    ref = parse_ref(saved["photo"])
    assert ref is not None and ref.name == "work.png"
    assert ref.sha256 == hashlib.sha256((folder / "work.png").read_bytes()).hexdigest()
    assert saved["doc"].startswith("act.txt sha256:")
    kept = yntymak_home / "media" / ref.sha256[:2] / ref.sha256
    assert kept.read_bytes() == (folder / "work.png").read_bytes()
    assert kept.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(yntymak_home / "yntymak.db") as conn:
        row = conn.execute(
            "SELECT size, media_type, original_name FROM media WHERE sha256 = ?", [ref.sha256]
        ).fetchone()
    assert row == (kept.stat().st_size, "image/png", "work.png")


@pytest.mark.parametrize(
    ("given", "line", "message"),
    [
        ("photo: nowhere.jpg", 2, "photo: no file at"),
        ("photo: doc.pdf", 2, "photo: this question does not take a file of type application"),
        # A PDF named .jpg: typed by its first bytes.
        ("photo: disguised.jpg", 2, "photo: this question does not take a file of type app"),
        ("photo: big.jpg", 2, "photo: the file is"),
        ("photo: work.png\ndoc: work.png", 3, "doc: this question does not take"),
        ("photo: sub", 2, "photo: the file cannot be used"),  # a folder
    ],
)
def test_refused_files_name_file_line_and_question(
    yntymak_home, form, tmp_path, given, line, message
):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "sub").mkdir()
    png(folder / "work.png")
    (folder / "doc.pdf").write_bytes(b"%PDF-1.4\n" + b"x" * 100)
    (folder / "disguised.jpg").write_bytes(b"%PDF-1.4\n" + b"x" * 100)
    (folder / "big.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(300 * 1024))  # > 200 kB
    path = answers(folder, f"village: Kara-Suu\n{given}\n")
    out = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "Aida", code=2)
    assert f"{path}:{line}: {message}" in out
    assert out.strip().count("\n") == 0  # one line
    assert count(yntymak_home, "submissions") == 0
    assert count(yntymak_home, "media") == 0 and media_files(yntymak_home) == []


@pytest.mark.parametrize("given", ["../secret.txt", "ABSOLUTE", "link.txt", "sub/../../secret.txt"])
def test_answers_cannot_reach_files_outside_their_folder(yntymak_home, form, tmp_path, given):
    """Review should-fix 5: an answers file from someone else must not pull a file from
    outside its folder (an SSH key, the device key) into the home and the bundle."""
    secret = tmp_path / "secret.txt"
    secret.write_text("private key", encoding="utf-8")
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "link.txt").symlink_to(secret)
    given = str(secret) if given == "ABSOLUTE" else given
    path = answers(folder, f"village: Kara-Suu\ndoc: {given}\n")
    out = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A", code=2)
    assert f"{path}:2: doc: " in out and "is outside the answers file's folder" in out
    assert out.strip().count("\n") == 0  # one line
    assert count(yntymak_home, "submissions") == 0
    assert count(yntymak_home, "media") == 0 and media_files(yntymak_home) == []


def test_media_from_allows_another_folder(yntymak_home, form, tmp_path):
    shared = tmp_path / "scans"
    shared.mkdir()
    (shared / "act.txt").write_text("signed", encoding="utf-8")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "inside.txt").write_text("here", encoding="utf-8")
    (folder / "link.txt").symlink_to(folder / "inside.txt")  # a symlink staying inside: fine
    png(folder / "w.png")
    path = answers(folder, "photo: w.png\ndoc: ../scans/act.txt\n", "a.yaml")
    args = ("collect", form, "--answers", path, "--enumerator", "A")
    yn(yntymak_home, *args, code=2)
    uuid = yn(yntymak_home, *args, "--media-from", shared).strip()
    assert stored(yntymak_home, uuid)["doc"].startswith("act.txt sha256:")
    inside = answers(folder, f"doc: link.txt\nphoto: {folder / 'w.png'}\n", "b.yaml")
    uuid = yn(yntymak_home, "collect", form, "--answers", inside, "--enumerator", "A").strip()
    assert stored(yntymak_home, uuid)["doc"].startswith("link.txt sha256:")
    # submissions edit --answers is held to the same folder.
    edit = answers(folder, "doc: ../scans/act.txt\n", "edit.yaml")
    out = yn(
        yntymak_home, "submissions", "edit", uuid, "--answers", edit, "--enumerator", "A", code=2
    )
    assert "is outside the answers file's folder" in out
    edited = ("submissions", "edit", uuid, "--answers", edit, "--enumerator", "A")
    yn(yntymak_home, *edited, "--media-from", shared)
    assert stored(yntymak_home, uuid)["doc"].startswith("act.txt sha256:")


def test_nothing_kept_when_another_submission_is_refused(yntymak_home, form, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    png(folder / "work.png")
    good = answers(folder, "photo: work.png\n", "good.yaml")
    bad = answers(folder, "photo: missing.png\n", "bad.yaml")
    out = yn(yntymak_home, "collect", form, "--answers", good, bad, "--enumerator", "A", code=2)
    assert "bad.yaml:1: photo: no file at" in out
    assert media_files(yntymak_home) == [] and count(yntymak_home, "submissions") == 0


def test_max_pixels_scales_down_upright_and_drops_gps(yntymak_home, form, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    photo(folder / "turned.jpg", orientation=6, gps=True)
    photo(folder / "located.jpg", orientation=6, gps=True)
    photo(folder / "big.jpg", gps=True)
    path = answers(folder, "photo: big.jpg\nsmall: turned.jpg\nlocated: located.jpg\n")
    uuid = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A").strip()
    saved = stored(yntymak_home, uuid)

    def image(question: str) -> Image.Image:
        ref = parse_ref(saved[question])
        assert ref is not None
        return Image.open(yntymak_home / "media" / ref.sha256[:2] / ref.sha256)

    small = image("small")
    # 400x200 turned by orientation 6 is 200x400 upright, then fitted in 100 pixels.
    assert small.size == (50, 100)
    exif = small.getexif()
    assert GPS_IFD not in exif and exif.get(ORIENTATION, 1) == 1
    rgb = small.convert("RGB")
    # Upright: the red half (the photo's left) is now on top, the blue half below.
    assert rgb.getpixel((25, 10))[0] > 150 and rgb.getpixel((25, 90))[2] > 150
    located = image("located")
    assert located.size == (50, 100) and GPS_IFD in located.getexif()
    # Without max_pixels the photo keeps its size, but not its GPS (review should-fix 3).
    big = image("photo")
    assert big.size == (400, 200) and GPS_IFD not in big.getexif()


@pytest.mark.parametrize(
    ("size", "mode"),
    [
        ((13000, 13000), "1"),  # above twice the cap: Pillow's own error
        ((9000, 9000), "P"),  # between the cap and twice it: Pillow only warns
        ((64001, 1000), "1"),  # just above the cap, one long strip
    ],
)
def test_a_decompression_bomb_is_refused_before_it_is_decoded(
    yntymak_home, form, tmp_path, size, mode
):
    """Review should-fix 2: a small file saying huge dimensions (a 13000x13000 PNG took
    2 GB once decoded) is refused by its header, with a clear message."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new(mode, size).save(folder / "bomb.png", "PNG", optimize=True)
    assert (folder / "bomb.png").stat().st_size < 200 * 1024
    png(folder / "work.png")
    path = answers(folder, "photo: work.png\nsmall: bomb.png\n")
    out = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A", code=2)
    assert f"{path}:2: small: the image has more than 64 megapixels" in out
    assert out.strip().count("\n") == 0
    assert count(yntymak_home, "submissions") == 0 and media_files(yntymak_home) == []


def test_a_multi_frame_image_is_refused_where_it_would_lose_frames(yntymak_home, form, tmp_path):
    """Review nit: a 3-page TIFF or an animated GIF that max_pixels would scale (or whose
    GPS would be removed) is refused naming why, not cut to its first frame; where it
    needs no re-encoding it is kept whole."""
    folder = tmp_path / "in"
    folder.mkdir()
    pages = [Image.new("RGB", (400, 200), colour) for colour in ("red", "green", "blue")]
    pages[0].save(
        folder / "scan.tif", "TIFF", save_all=True, append_images=pages[1:], compression="tiff_lzw"
    )
    pages[0].save(folder / "anim.gif", "GIF", save_all=True, append_images=pages[1:])
    small = [page.resize((60, 30)) for page in pages]  # uncompressed, with a GPS IFD
    small[0].save(folder / "located.tif", "TIFF", save_all=True, append_images=small[1:],
                  exif=gps_exif())  # fmt: skip
    png(folder / "work.png")
    for name, question in (("scan.tif", "small"), ("anim.gif", "small"), ("located.tif", "photo")):
        given = f"{question}: {name}\n" + ("photo: work.png\n" if question != "photo" else "")
        path = answers(folder, given, f"{name}.yaml")
        out = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A", code=2)
        assert "the image holds 3 frames" in out and "give each page as its own photo" in out
    assert count(yntymak_home, "submissions") == 0 and media_files(yntymak_home) == []
    # No max_pixels, no GPS: nothing to re-encode, all three pages kept byte for byte.
    path = answers(folder, "photo: scan.tif\n", "whole.yaml")
    uuid = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A").strip()
    ref = parse_ref(stored(yntymak_home, uuid)["photo"])
    kept = yntymak_home / "media" / ref.sha256[:2] / ref.sha256
    assert kept.read_bytes() == (folder / "scan.tif").read_bytes()


XMP_GPS = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="42,52.5N" '
    b'exif:GPSLongitude="74,35.0E"/></rdf:RDF></x:xmpmeta>'
)


def gps_exif() -> bytes:
    exif = Image.Exif()
    exif[GPS_IFD] = {1: "N", 2: (42.0, 52.0, 30.0), 3: "E", 4: (74.0, 35.0, 0.0)}
    return exif.tobytes()


def test_gps_is_removed_from_every_photo_unless_keep_gps(yntymak_home, tmp_path):
    """Review should-fix 3: JPEG, PNG, WebP and TIFF lose EXIF GPS and XMP GPS whatever
    `max_pixels` says, on image and file questions; `keep_gps: true` keeps them; a photo
    without a location is kept byte for byte."""
    path = tmp_path / "f.yaml"
    path.write_text(
        "id: gps\nversion: '1'\nquestions:\n"
        "  - {name: jpeg, type: image, label: A}\n"
        "  - {name: xmp, type: image, label: B}\n"
        "  - {name: webp, type: image, label: C}\n"
        "  - {name: tiff, type: image, label: D}\n"
        "  - {name: png, type: image, label: E}\n"
        "  - {name: scan, type: file, label: F}\n"
        "  - {name: kept, type: image, label: G, keep_gps: true}\n"
        "  - {name: plain, type: image, label: H}\n",
        encoding="utf-8",
    )
    folder = tmp_path / "in"
    folder.mkdir()
    img = Image.new("RGB", (40, 30), (200, 10, 10))
    img.save(folder / "a.jpg", "JPEG", exif=gps_exif())
    img.save(folder / "x.jpg", "JPEG", xmp=XMP_GPS)
    img.save(folder / "c.webp", "WEBP", exif=gps_exif(), xmp=XMP_GPS)
    img.save(folder / "d.tif", "TIFF", exif=gps_exif())
    img.save(folder / "e.png", "PNG", exif=gps_exif())
    img.save(folder / "f.jpg", "JPEG", exif=gps_exif())
    img.save(folder / "g.jpg", "JPEG", exif=gps_exif(), xmp=XMP_GPS)
    img.save(folder / "h.jpg", "JPEG")
    given = answers(
        folder,
        "jpeg: a.jpg\nxmp: x.jpg\nwebp: c.webp\ntiff: d.tif\npng: e.png\nscan: f.jpg\n"
        "kept: g.jpg\nplain: h.jpg\n",
    )
    uuid = yn(yntymak_home, "collect", path, "--answers", given, "--enumerator", "A").strip()
    saved = stored(yntymak_home, uuid)

    def kept(question: str) -> bytes:
        ref = parse_ref(saved[question])
        assert ref is not None
        return (yntymak_home / "media" / ref.sha256[:2] / ref.sha256).read_bytes()

    for question in ("jpeg", "xmp", "webp", "tiff", "png", "scan"):
        data = kept(question)
        with Image.open(io.BytesIO(data)) as stored_image:
            assert stored_image.size == (40, 30), question
            assert GPS_IFD not in stored_image.getexif(), question
        assert b"GPSLatitude" not in data, question
    assert kept("kept") == (folder / "g.jpg").read_bytes()  # keep_gps: untouched
    assert kept("plain") == (folder / "h.jpg").read_bytes()  # no location: untouched


def heic(exif: bytes | None) -> bytes:
    """The start of a HEIC file (its ftyp box), then an EXIF item's bytes."""
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    return data + (b"\x00\x00\x00\x06Exif\x00\x00" + exif if exif is not None else b"")


def test_a_heic_photo_with_gps_is_refused_unless_keep_gps(yntymak_home, form, tmp_path):
    """A HEIC photo (not re-encoded here) with GPS is refused, telling the volunteer to
    export it as JPEG; without GPS, or under keep_gps, it is kept as given."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "located.heic").write_bytes(heic(gps_exif()))
    (folder / "plain.heic").write_bytes(heic(Image.Exif().tobytes()))
    path = answers(folder, "photo: located.heic\n", "a.yaml")
    out = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A", code=2)
    assert f"{path}:1: photo: " in out and "export the photo as JPEG" in out
    assert count(yntymak_home, "submissions") == 0 and media_files(yntymak_home) == []
    path = answers(folder, "photo: plain.heic\nlocated: located.heic\n", "b.yaml")
    uuid = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A").strip()
    assert stored(yntymak_home, uuid)["located"].startswith("located.heic sha256:")


@pytest.mark.parametrize(
    ("brand", "mime"),
    [
        (b"hevc", "image/heic-sequence"),
        (b"msf1", "image/heif-sequence"),
        (b"avif", "image/avif"),
        (b"avis", "image/avif"),
    ],
)
def test_heif_and_avif_brands_are_sniffed_and_their_gps_checked(
    yntymak_home, form, tmp_path, brand, mime
):
    """Review nit: a HEIC burst (`hevc`), a HEIF sequence (`msf1`) and AVIF (`avif`,
    `avis`) are photos by their first bytes, whatever their name: typed so, and refused
    with a location like any HEIC."""
    folder = tmp_path / "in"
    folder.mkdir()
    start = b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00mif1" + brand + b"\x00" * 64
    (folder / "located.bin").write_bytes(start + b"\x00\x00\x00\x06Exif\x00\x00" + gps_exif())
    (folder / "plain.bin").write_bytes(start)
    path = answers(folder, "photo: located.bin\n", "a.yaml")
    out = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A", code=2)
    assert f"{path}:1: photo: the photo ({mime}) holds its GPS location" in out
    path = answers(folder, "photo: plain.bin\n", "b.yaml")
    uuid = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A").strip()
    ref = parse_ref(stored(yntymak_home, uuid)["photo"])
    with sqlite3.connect(yntymak_home / "yntymak.db") as conn:
        row = conn.execute("SELECT media_type FROM media WHERE sha256 = ?", [ref.sha256])
        assert row.fetchone() == (mime,)


def test_avif_gps_without_the_exif_prefix_is_found(yntymak_home, form, tmp_path):
    """Review should-fix: libavif writes the Exif item as an offset then the TIFF header,
    without `Exif\\0\\0`; its location is found all the same. A file made of more EXIF
    blocks than a photo has (hostile bytes, each read from the file's start before) is
    refused at once, not scanned block by block."""
    folder = tmp_path / "in"
    folder.mkdir()
    start = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64
    tiff = gps_exif()[6:]  # the TIFF data alone
    (folder / "located.avif").write_bytes(start + b"\x00\x00\x00\x00" + tiff)
    empty = Image.Exif().tobytes()  # Exif\0\0 and a TIFF header with nothing in it
    (folder / "blocks.avif").write_bytes(start + empty * 5_000)  # 100 kB of them
    for name in ("located.avif", "blocks.avif"):
        path = answers(folder, f"photo: {name}\n", f"{name}.yaml")
        out = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A", code=2)
        assert f"{path}:1: photo: the photo (image/avif) holds its GPS location" in out


SVG_TEXT = (
    '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg">'
    "<script>alert(1)</script></svg>\n"
)


def test_svg_is_not_a_photo_unless_the_form_names_it(yntymak_home, tmp_path):
    """Review nit: `image/*` does not take an SVG (a document that can run scripts), by
    its name or by its first bytes under a photo's name; `accept` naming SVG does, and a
    file question takes it as a document."""
    path = tmp_path / "f.yaml"
    path.write_text(
        "id: svg\nversion: '1'\nquestions:\n"
        "  - {name: photo, type: image, label: A}\n"
        "  - {name: drawing, type: image, label: B, accept: 'image/png, image/svg+xml'}\n"
        "  - {name: plan, type: image, label: C, accept: '.svg'}\n"
        "  - {name: doc, type: file, label: D}\n",
        encoding="utf-8",
    )
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "map.svg").write_text(SVG_TEXT, encoding="utf-8")
    (folder / "disguised.jpg").write_text(SVG_TEXT, encoding="utf-8")
    for name in ("map.svg", "disguised.jpg"):
        given = answers(folder, f"photo: {name}\n", f"{name}.yaml")
        out = yn(yntymak_home, "collect", path, "--answers", given, "--enumerator", "A", code=2)
        assert f"{given}:1: photo: an SVG drawing is a document" in out
    assert media_files(yntymak_home) == []
    given = answers(folder, "drawing: map.svg\nplan: disguised.jpg\ndoc: map.svg\n")
    out = yn(yntymak_home, "collect", path, "--answers", given, "--enumerator", "A", code=2)
    assert "plan: this question does not take a file of type image/svg+xml" in out
    given = answers(folder, "drawing: map.svg\nplan: map.svg\ndoc: disguised.jpg\n", "ok.yaml")
    uuid = yn(yntymak_home, "collect", path, "--answers", given, "--enumerator", "A").strip()
    saved = stored(yntymak_home, uuid)
    assert saved["drawing"].startswith("map.svg sha256:")
    assert saved["doc"].startswith("disguised.jpg sha256:")


def test_svg_sniffing_takes_linear_time_on_hostile_bytes():
    """The SVG sniff is a plain scan: empty comments by the hundred, unclosed ones and
    long white space answer at once (a regular expression for it backtracked for ever)."""
    import time

    from yntymak_cli.collect.media import sniff

    for data in (b"<!---->" * 585, b"<!--" * 1024, b"<!-- --> " * 450 + b"<!--", b" " * 4096):
        start = time.monotonic()
        assert sniff(data) is None
        assert time.monotonic() - start < 2
    assert sniff(b"<!---->" * 10 + b"\n<svg/>") == "image/svg+xml"


def test_form_keys_are_checked_with_lines(yntymak_home, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "id: bad\nversion: '1'\nmax_size: lots\nquestions:\n"
        "  - {name: a, type: text, label: A, accept: image/*}\n"
        "  - {name: b, type: file, label: B, max_pixels: 10}\n"
        "  - {name: c, type: file, label: C, accept: 'pdf'}\n",
        encoding="utf-8",
    )
    out = yn(yntymak_home, "forms", "validate", path, code=2)
    assert "bad.yaml:3" in out and "max_size 'lots' is not a size" in out
    assert "bad.yaml:5" in out and "accept is only for image, audio, video and file" in out
    assert "bad.yaml:6" in out and "max_pixels is only for image questions" in out
    assert "bad.yaml:7" in out and "'pdf' is neither an extension" in out


# -- export -----------------------------------------------------------------------------------


def test_export_media_copies_files_and_links_resolve(yntymak_home, form, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    png(folder / "work.png")
    (folder / "act.txt").write_text("signed", encoding="utf-8")
    path = answers(folder, "village: Kara-Suu\nphoto: work.png\ndoc: act.txt\n")
    uuid = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A").strip()

    out = tmp_path / "out"
    media = ("--media", out / "media")
    text = yn(yntymak_home, "export", "media_visit", "-o", out / "visit.csv", *media)
    assert "2 media file(s) copied" in text
    with open(out / "visit.csv", encoding="utf-8-sig", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["photo"] == "work.png" and row["doc"] == "act.txt"
    assert row["photo_URL"] == f"media/media_visit/{uuid}/work.png"
    for question, source in (("photo", "work.png"), ("doc", "act.txt")):
        linked = out / row[f"{question}_URL"]  # relative to the CSV's folder
        assert linked.read_bytes() == (folder / source).read_bytes()

    # xlsx: the same columns; a media folder elsewhere gives links that still resolve.
    yn(yntymak_home, "export", "media_visit", "-o", out / "x" / "v.xlsx", "--media", out / "files")
    from openpyxl import load_workbook

    sheet = load_workbook(out / "x" / "v.xlsx").active
    rows = list(sheet.iter_rows(values_only=True))
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert cells["photo_URL"] == f"../files/media_visit/{uuid}/work.png"
    assert (out / "x" / cells["photo_URL"]).resolve().read_bytes() == (
        folder / "work.png"
    ).read_bytes()

    # JSON keeps the stored answer.
    yn(yntymak_home, "export", "media_visit", "-o", out / "v.json")
    record = json.loads((out / "v.json").read_text(encoding="utf-8"))
    first = record[0] if isinstance(record, list) else record["submissions"][0]
    assert parse_ref(first["answers"]["photo"] if "answers" in first else first["photo"])


def test_export_names_windows_reserves_are_made_safe_and_links_follow(yntymak_home, tmp_path):
    """Review nit: `CON`, `NUL.jpg`, `com1.txt`, `aux .txt` and a form called `aux` cannot
    be made on Windows (or are its devices): written behind a `_`, the same every time,
    and each `_URL` link names the file written (a real `_CON` is told apart by its hash)."""
    form = tmp_path / "aux.yaml"
    names = ["CON", "NUL.jpg", "com1.txt", "aux .txt", "Lpt9.tar.gz", "_CON"]
    questions = "".join(f"  - {{name: f{i}, type: file, label: F{i}}}\n" for i in range(6))
    form.write_text(f"id: aux\nversion: '1'\nquestions:\n{questions}", encoding="utf-8")
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(names):
        (folder / name).write_text(f"file {i}", encoding="utf-8")
    given = answers(folder, "".join(f"f{i}: '{name}'\n" for i, name in enumerate(names)))
    uuid = yn(yntymak_home, "collect", form, "--answers", given, "--enumerator", "A").strip()
    out = tmp_path / "out"
    yn(yntymak_home, "export", "aux", "-o", out / "aux.csv", "--media", out / "media")
    with open(out / "aux.csv", encoding="utf-8-sig", newline="") as f:
        row = next(csv.DictReader(f))
    written = {p.name for p in (out / "media" / "_aux" / uuid).iterdir()}
    sha_con = hashlib.sha256(b"file 5").hexdigest()[:8]
    assert written == {
        "_CON", "_NUL.jpg", "_com1.txt", "_aux .txt", "_Lpt9.tar.gz", f"_CON-{sha_con}"
    }  # fmt: skip
    for i, name in enumerate(names):
        assert row[f"f{i}"] == name  # the name column keeps the original name
        link = row[f"f{i}_URL"]
        assert link.startswith(f"media/_aux/{uuid}/_")
        assert (out / link).read_text(encoding="utf-8") == f"file {i}"
    # The same export again writes the same names (nothing new beside them).
    yn(yntymak_home, "export", "aux", "-o", out / "aux.csv", "--media", out / "media")
    assert {p.name for p in (out / "media" / "_aux" / uuid).iterdir()} == written


def test_csv_export_reads_back_through_its_links(yntymak_home, form, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    png(folder / "work.png")
    path = answers(folder, "photo: work.png\n")
    yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A")
    out = tmp_path / "out"
    yn(yntymak_home, "export", "media_visit", "-o", out / "v.csv", "--media", out / "media")
    again = yn(yntymak_home, "collect", form, "--answers", out / "v.csv", "--enumerator", "A")
    uuid = again.strip().splitlines()[-1]
    assert parse_ref(stored(yntymak_home, uuid)["photo"]).name == "work.png"
    assert len(media_files(yntymak_home)) == 1  # the same bytes: one file


# -- purge, edits, bundles --------------------------------------------------------------------


def test_purge_erases_only_files_no_answer_needs(yntymak_home, form, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    png(folder / "shared.png")
    photo(folder / "first.jpg")
    photo(folder / "second.jpg", size=(300, 300))
    a = answers(folder, "photo: first.jpg\nsmall: shared.png\n", "a.yaml")
    b = answers(folder, "photo: shared.png\n", "b.yaml")
    uuid_a = yn(yntymak_home, "collect", form, "--answers", a, "--enumerator", "A").strip()
    uuid_b = yn(yntymak_home, "collect", form, "--answers", b, "--enumerator", "A").strip()
    # An edit replaces a's photo: revision 1 still names first.jpg, so nothing is deleted.
    edit = answers(folder, "photo: second.jpg\n", "edit.yaml")
    yn(yntymak_home, "submissions", "edit", uuid_a, "--answers", edit, "--enumerator", "A")
    assert len(media_files(yntymak_home)) == 3
    yn(yntymak_home, "submissions", "void", uuid_b, "--reason", "duplicate")
    assert len(media_files(yntymak_home)) == 3  # voiding keeps the files too

    def sha(name: str) -> str:
        return hashlib.sha256((folder / name).read_bytes()).hexdigest()

    # HQ's receipt for both revisions of `a` (bundles cannot carry media on this branch,
    # so the acknowledgement a receipt records is written here directly).
    with sqlite3.connect(yntymak_home / "yntymak.db") as conn:
        conn.execute(
            "UPDATE revisions SET synced_at = '2026-11-30T00:00:00Z' WHERE uuid = ?", [uuid_a]
        )
    out = yn(yntymak_home, "submissions", "purge", "--synced", "--yes")
    assert "media file(s) no remaining answer needs were erased" in out
    left = {p.name for p in media_files(yntymak_home)}
    # first.jpg and second.jpg were only a's; shared.png is b's too (b is not acknowledged).
    assert left == {sha("shared.png")}
    with sqlite3.connect(yntymak_home / "yntymak.db") as conn:
        rows = {r[0] for r in conn.execute("SELECT sha256 FROM media")}
    assert rows == {sha("shared.png")}


EXPRESSIONS = """\
id: photo_expressions
version: "1"
questions:
  - name: photo
    type: image
    label: Photo
    constraint: ". != 'forbidden.png'"
  - {name: photo_name, type: calculate, calculation: "${photo}"}
  - name: scan_of_the_map
    type: text
    label: "Why ${photo}?"
    relevant: "${photo} = 'map.png'"
"""


def test_expressions_see_a_media_answer_as_its_file_name(yntymak_home, tmp_path):
    """As in ODK: `${photo}` and `.` are the file's name, not the stored `NAME sha256:HEX`."""
    form = answers(tmp_path, EXPRESSIONS, "expr.yaml")
    folder = tmp_path / "in"
    folder.mkdir()
    for shade, name in enumerate(("map.png", "work.png", "forbidden.png")):
        Image.new("RGB", (30, 20), (shade, 128, 0)).save(folder / name, "PNG")
    ok = answers(folder, "photo: map.png\nscan_of_the_map: the scan\n", "a.yaml")
    uuid = yn(yntymak_home, "collect", form, "--answers", ok, "--enumerator", "A").strip()
    got = stored(yntymak_home, uuid)
    assert parse_ref(got["photo"]).name == "map.png"
    assert got["photo_name"] == "map.png"
    assert got["scan_of_the_map"] == "the scan"  # relevant: ${photo} = 'map.png'
    # Another photo: the question is not relevant, so its answer is refused.
    other = answers(folder, "photo: work.png\nscan_of_the_map: x\n", "b.yaml")
    out = yn(yntymak_home, "collect", form, "--answers", other, "--enumerator", "A", code=2)
    assert "scan_of_the_map" in out
    bad = answers(folder, "photo: forbidden.png\n", "c.yaml")
    out = yn(yntymak_home, "collect", form, "--answers", bad, "--enumerator", "A", code=2)
    assert "c.yaml:1: photo: The answer is not allowed." in out
    kept = {p.name for p in media_files(yntymak_home)}
    assert hashlib.sha256((folder / "forbidden.png").read_bytes()).hexdigest() not in kept


# -- bundles and HQ ---------------------------------------------------------------------------


def hq_files(hq: Path) -> list[Path]:
    """Every file under HQ's media folder, temp files included."""
    root = hq / "media"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def collect_photo(home: Path, form: Path, folder: Path, name: str = "work.png") -> tuple[str, str]:
    """A submission with a PNG photo: (uuid, the photo's sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    png(folder / name)
    path = answers(folder, f"village: Kara-Suu\nphoto: {name}\n", f"{name}.yaml")
    uuid = yn(home, "collect", form, "--answers", path, "--enumerator", "A").strip()
    return uuid, hashlib.sha256((folder / name).read_bytes()).hexdigest()


def test_a_photo_travels_to_hq_checked_exported_and_purged_after_the_receipt(field, form, tmp_path):
    uuid, sha = collect_photo(field.a, form, tmp_path / "in")
    bundle = field.bundle(field.a)
    out = field.import_(bundle)
    assert "1 new" in out and "1 media file(s) stored" in out
    # HQ holds the file once, content-addressed, the same bytes.
    kept = field.hq / "media" / sha[:2] / sha
    assert hq_files(field.hq) == [kept]
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == sha
    assert [r["sha256"] for r in rows(field.hq, "SELECT sha256 FROM hq_media")] == [sha]
    # hq export --media copies it where the CSV's link points.
    export = tmp_path / "export"
    yn(
        field.hq,
        "hq",
        "export",
        "media_visit",
        "-o",
        export / "data.csv",
        "--media",
        export / "media",
    )
    with (export / "data.csv").open(encoding="utf-8") as f:
        link = next(csv.DictReader(f))["photo_URL"]
    assert link == f"media/media_visit/{uuid}/work.png"
    assert hashlib.sha256((export / link).read_bytes()).hexdigest() == sha
    # The same bundle again: a replay, nothing new, no temp file left.
    again = field.import_(bundle)
    assert "1 unchanged" in again and "media file" not in again
    assert hq_files(field.hq) == [kept]
    # HQ's receipt acknowledges it: purge erases the laptop's copy, no answer needs it.
    yn(field.a, "bundle", "ack", field.receipt(bundle))
    out = yn(field.a, "submissions", "purge", "--synced", "--yes")
    assert "media file(s) no remaining answer needs were erased" in out
    assert media_files(field.a) == []


def test_a_file_hq_holds_need_not_travel_again(field, form, tmp_path):
    """Two laptops with the same photo: each bundle carries it, HQ keeps one copy."""
    collect_photo(field.a, form, tmp_path / "in")
    _uuid, sha = collect_photo(field.b, form, tmp_path / "in")
    assert "1 media file(s) stored" in field.import_(field.bundle(field.a))
    out = field.import_(field.bundle(field.b))
    assert "1 new" in out and "media file" not in out  # checked, already held
    assert hq_files(field.hq) == [field.hq / "media" / sha[:2] / sha]


def test_a_replayed_bundle_restores_a_file_hq_lost_or_damaged(field, form, tmp_path):
    """Review nit: the hq_media row is there but the file is gone, or its bytes no longer
    hash to its name: the same bundle imported again writes it back from its verified
    bytes (and says so); an intact file is left alone."""
    _uuid, sha = collect_photo(field.a, form, tmp_path / "in")
    bundle = field.bundle(field.a)
    field.import_(bundle)
    kept = field.hq / "media" / sha[:2] / sha
    good = kept.read_bytes()
    kept.unlink()
    again = field.import_(bundle)
    assert "1 unchanged" in again and "1 media file(s) stored" in again
    assert kept.read_bytes() == good
    kept.chmod(0o600)
    kept.write_bytes(bytes(len(good)))  # the same size, other bytes: only a hash tells
    again = field.import_(bundle)
    assert "1 media file(s) stored" in again and kept.read_bytes() == good
    again = field.import_(bundle)
    assert "media file" not in again and hq_files(field.hq) == [kept]
    assert [r["sha256"] for r in rows(field.hq, "SELECT sha256 FROM hq_media")] == [sha]


def test_bundle_create_stops_when_a_named_file_is_gone(field, form, tmp_path):
    uuid, sha = collect_photo(field.a, form, tmp_path / "in")
    (field.a / "media" / sha[:2] / sha).unlink()
    out_dir = tmp_path / "bundles"
    out = yn(field.a, "bundle", "create", "-o", out_dir, code=2)
    assert "No bundle made" in out and uuid[:8] in out and "media folder" in out
    assert not list(out_dir.glob("*.ykb")) and not list(out_dir.glob(".*"))
    assert count(field.a, "sync_bundles") == 0


def nothing_imported(hq: Path) -> None:
    assert hq_files(hq) == []
    # Not even an empty `media/xx` folder (review nit): folders are made when a file is kept.
    root = hq / "media"
    assert not root.exists() or list(root.rglob("*")) == []
    assert rows(hq, "SELECT COUNT(*) AS n FROM hq_media")[0]["n"] == 0
    assert rows(hq, "SELECT COUNT(*) AS n FROM submissions")[0]["n"] == 0


def test_a_flipped_byte_in_the_media_section_fails_the_signature(field, form, tmp_path):
    """A byte changed in transit: the device's signature (over a sha256 of the whole file,
    media section included) fails first; the chunk's MAC is never reached (the next test
    reaches it)."""
    collect_photo(field.a, form, tmp_path / "in")
    bundle = field.bundle(field.a)
    data = bytearray(bundle.read_bytes())
    data[-64 - 100] ^= 1  # inside the last file's encrypted chunk
    bundle.write_bytes(bytes(data))
    out = field.import_(bundle, code=2)
    assert "refused" in out and "signature" in out
    nothing_imported(field.hq)


def test_a_flipped_byte_the_device_signed_fails_the_chunk_mac(field, form, tmp_path):
    """Review nit: the same flipped byte, but the device signs the result (a hostile or
    broken device): the signature passes, and the chunk's Poly1305 MAC refuses it."""
    import struct

    from yntymak_cli.sync import container, keys

    from .helpers import frame

    collect_photo(field.a, form, tmp_path / "in")
    data = field.bundle(field.a).read_bytes()
    parts, pos = [], 4
    while len(data) - pos > container.SIGNATURE_SIZE:
        tag, length = struct.unpack_from(">BI", data, pos)
        parts.append((tag, data[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    (h_tag, header), (p_tag, payload), (m_tag, media) = parts
    assert m_tag == container.TAG_MEDIA and len(media) > 50
    flipped = media[:50] + bytes([media[50] ^ 1]) + media[51:]  # inside the photo's chunk
    device = keys.load_or_create_device_identity(field.a)
    forged = tmp_path / "signed.ykb"
    forged.write_bytes(
        frame(
            container.BUNDLE_MAGIC,
            [(h_tag, header), (p_tag, payload), (m_tag, flipped)],
            device.signing_key,
        )  # fmt: skip
    )
    out = field.import_(forged, code=2)
    assert "does not decrypt" in out and "signature" not in out
    nothing_imported(field.hq)


def test_a_signed_answer_naming_a_file_not_carried_is_refused(field, form, tmp_path):
    from yntymak_cli.sync import container
    from yntymak_cli.sync.hq import revision_hash

    from .helpers import open_genuine

    collect_photo(field.a, form, tmp_path / "in")
    header, payload, device, hq_identity = open_genuine(field, field.a)
    record = payload["submissions"][0]
    record["answers"]["photo"] = "other.png sha256:" + "ab" * 32
    record["hash"] = revision_hash(record)  # the device's own hash: a genuine-looking record
    data = container.build_bundle(
        {"seq": header["seq"] + 100, "prev_hash": "0" * 64},
        {"forms": payload["forms"], "submissions": payload["submissions"]},
        device,
        hq_identity.public(),
    )
    forged = tmp_path / "forged.ykb"
    forged.write_bytes(data)
    out = field.import_(forged, code=2)
    assert "names the file " + "ab" * 32 in out and "neither in the bundle nor at HQ" in out
    nothing_imported(field.hq)


def test_a_carried_file_no_answer_names_is_refused(field, form, tmp_path):
    """A bundle the device signed carries a file none of its answers names: refused whole,
    nothing written (HQ keeps only files some answer names)."""
    collect_in(field.a, tmp_path, "Ak-Suu")  # no media answer at all
    extra = png(tmp_path / "extra.png")
    forged = _forged_with_files(field, lambda record: None, [extra], tmp_path)
    out = field.import_(forged, code=2)
    sha = hashlib.sha256(extra.read_bytes()).hexdigest()
    assert sha in out and "which no answer names" in out
    nothing_imported(field.hq)


def _forged_with_files(field, change, files: list[Path], tmp_path: Path) -> Path:
    """field.a's genuine bundle, its records changed by `change` (their hashes recomputed,
    as the device itself would), carrying `files`, signed by the device: a forgery only the
    device's own checks at HQ can stop."""
    from yntymak_cli.sync import container
    from yntymak_cli.sync.hq import revision_hash

    from .helpers import open_genuine

    header, payload, device, hq_identity = open_genuine(field, field.a)
    for record in payload["submissions"]:
        change(record)
        record["hash"] = revision_hash(record)
    carried = []
    for path in files:
        data = path.read_bytes()
        entry = container.MediaEntry(hashlib.sha256(data).hexdigest(), len(data), "image/png")
        carried.append((entry, path))
    forged = tmp_path / "forged.ykb"
    with forged.open("wb") as out:
        container.write_bundle(
            out,
            {"seq": header["seq"] + 100, "prev_hash": "0" * 64},
            {"forms": payload["forms"], "submissions": payload["submissions"]},
            device,
            hq_identity.public(),
            carried,
        )
    return forged


def test_a_file_named_only_in_a_text_answer_is_refused(field, form, tmp_path):
    """Review nit: only media answers (the media questions of the record's form) name a
    file; a `NAME sha256:HEX` typed into a text answer names nothing, so a device cannot
    have HQ keep a file no media answer stands for."""
    _uuid, sha = collect_photo(field.a, form, tmp_path / "in")
    photo_file = field.a / "media" / sha[:2] / sha
    extra = tmp_path / "extra.png"
    Image.new("RGB", (30, 20), (0, 0, 200)).save(extra, "PNG")
    extra_sha = hashlib.sha256(extra.read_bytes()).hexdigest()

    def text_names_it(record):
        record["answers"]["village"] = f"extra.png sha256:{extra_sha}"

    forged = _forged_with_files(field, text_names_it, [photo_file, extra], tmp_path)
    out = field.import_(forged, code=2)
    assert extra_sha in out and "which no answer names" in out
    nothing_imported(field.hq)


def test_a_file_named_only_by_a_record_hq_cannot_read_is_checked_not_kept(field, form, tmp_path):
    """A record whose form HQ cannot read is refused on its own: its files are checked with
    the others but not kept (no text-answer scan decides what HQ keeps)."""
    uuid, sha = collect_photo(field.a, form, tmp_path / "in")
    photo_file = field.a / "media" / sha[:2] / sha

    def unknown_form(record):
        record["form_hash"] = "0" * 64

    forged = _forged_with_files(field, unknown_form, [photo_file], tmp_path)
    out = field.import_(forged, code=2)  # exit 2: a record was refused
    assert "1 refused" in out and "media file" not in out
    nothing_imported(field.hq)


def test_a_device_signing_other_bytes_than_it_lists_is_refused(field, form, tmp_path, monkeypatch):
    """The device's signature is good, but the photo's bytes are not the listed hash."""
    from yntymak_cli.sync import container, media_section

    collect_photo(field.a, form, tmp_path / "in")
    other = png(tmp_path / "other.png")
    Image.new("RGB", (30, 20), (0, 0, 200)).save(other, "PNG")  # same kind, other pixels

    def swapped(box, files, out):
        for index, (entry, _path) in enumerate(files):
            data = other.read_bytes()[: entry.size].ljust(entry.size, b"\0")
            n = media_section.chunks_of(entry.size)
            for i in range(n):
                chunk = data[i * media_section.CHUNK_SIZE : (i + 1) * media_section.CHUNK_SIZE]
                out.write(box.encrypt(chunk, media_section._nonce(index, i, i == n - 1)).ciphertext)

    monkeypatch.setattr(media_section, "write_section", swapped)
    bundle = field.bundle(field.a)
    monkeypatch.undo()
    assert container.inspect_bundle(bundle.read_bytes())["format_version"] == 2
    out = field.import_(bundle, code=2)
    assert "does not match its sha256" in out
    nothing_imported(field.hq)
    # bundle verify says the same, and leaves nothing either.
    out = yn(field.hq, "bundle", "verify", bundle, code=2)
    assert "media-mismatch" in out or "does not match its sha256" in out
    nothing_imported(field.hq)


def test_a_format_1_bundle_still_imports(field, form, tmp_path):
    """A laptop of the previous version wrote format 1 (no media section): HQ reads it."""
    from yntymak_cli.sync import container

    from .helpers import open_genuine, seal_raw

    uuid = collect_in(field.a, tmp_path, "Ak-Suu")
    header, payload, device, hq_identity = open_genuine(field, field.a)
    old_header = {**header, "format_version": 1, "seq": header["seq"] + 100, "prev_hash": "0" * 64}
    old_payload = {k_: v for k_, v in payload.items() if k_ != "media"}
    data = seal_raw(old_header, canonical_bytes(old_payload), device, hq_identity.public())
    assert data[:4] == container.BUNDLE_MAGIC_V1
    old = tmp_path / "old.ykb"
    old.write_bytes(data)
    out = field.import_(old)
    assert "1 new" in out
    assert rows(field.hq, "SELECT uuid FROM submissions")[0]["uuid"] == uuid


def test_prompt_session_keeps_the_file_with_the_answer(yntymak_home, form, tmp_path):
    """The scripted survey loop: a path typed, a wrong one refused and asked again."""
    from yntymak_cli.collect.interactive import run_survey
    from yntymak_cli.collect.prompts import ScriptedPrompter
    from yntymak_cli.collect.session import Session
    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store

    png(tmp_path / "work.png")
    script = ScriptedPrompter(
        [
            ("village", "Kara-Suu"),
            ("photo", str(tmp_path / "missing.png")),
            ("photo", str(tmp_path / "work.png")),
            ("small", ""),
            ("located", ""),
            ("doc", ""),
            ("review", "finalise"),
        ]
    )
    the_form = load_form(form).require()
    with Store.open() as store:
        session = Session.start(store, the_form, lang="en", enumerator="A", device_id="d")
        buffer = io.StringIO()
        from contextlib import redirect_stdout

        with redirect_stdout(buffer):
            code = run_survey(session, "en", prompter=script)
        assert code == 0, buffer.getvalue()
        record = store.get_record(session.uuid)
    assert parse_ref(record["answers"]["photo"]).name == "work.png"
    assert "no file at" in buffer.getvalue()


def test_no_sensitive_leaves_out_columns_and_files(yntymak_home, tmp_path):
    form = tmp_path / "case.yaml"
    form.write_text(
        "id: case\nversion: '1'\nquestions:\n"
        "  - {name: scan, type: file, label: Scan, sensitive: true}\n"
        "  - {name: site, type: image, label: Site}\n",
        encoding="utf-8",
    )
    folder = tmp_path / "in"
    folder.mkdir()
    png(folder / "site.png")
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4\n%signed\n")
    path = answers(folder, "scan: scan.pdf\nsite: site.png\n")
    uuid = yn(yntymak_home, "collect", form, "--answers", path, "--enumerator", "A").strip()
    out = tmp_path / "out"
    yn(
        yntymak_home,
        "export",
        "case",
        "-o",
        out / "c.csv",
        "--media",
        out / "media",
        "--no-sensitive",
    )
    with open(out / "c.csv", encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f))
    assert "scan" not in header and "scan_URL" not in header and "site_URL" in header
    copied = sorted(p.name for p in (out / "media").rglob("*") if p.is_file())
    assert copied == ["site.png"]
    assert (out / "media" / "case" / uuid / "site.png").is_file()
