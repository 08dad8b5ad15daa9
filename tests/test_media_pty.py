"""A photo answered in a real terminal (pexpect): the path prompt, a refused path asked
again, and the process killed right after the photo was accepted keeping it."""

from __future__ import annotations

import hashlib
import io
import signal
import sys

import pytest
from PIL import Image

from yntymak_cli.forms.media import parse_ref
from yntymak_cli.store.db import Store

from .helpers import ENTER, UUID, Term, yn

pexpect = pytest.importorskip("pexpect")
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty"),
    pytest.mark.slow,
]

FORM = """\
id: photo_visit
version: "1"
questions:
  - {name: village, type: text, label: Village}
  - {name: photo, type: image, label: Photo of the work, required: true, max_pixels: 64}
  - {name: note_after, type: text, label: Comment}
"""


@pytest.fixture
def setup(yntymak_home, tmp_path):
    form = tmp_path / "visit.yaml"
    form.write_text(FORM, encoding="utf-8")
    Image.new("RGB", (200, 100), (10, 200, 10)).save(tmp_path / "work.jpg", "JPEG")
    started: list[Term] = []

    def spawn() -> Term:
        t = Term(yntymak_home, "collect", str(form), "--lang", "en", "--enumerator", "Aida")
        started.append(t)
        return t

    yield spawn, tmp_path
    for t in started:
        if t.child.isalive():
            t.child.kill(signal.SIGKILL)


def stored_photo(yntymak_home, ref_text: str) -> bytes:
    ref = parse_ref(ref_text)
    assert ref is not None and ref.name == "work.jpg"
    data = (yntymak_home / "media" / ref.sha256[:2] / ref.sha256).read_bytes()
    assert hashlib.sha256(data).hexdigest() == ref.sha256
    return data


def test_photo_answered_in_a_terminal(setup, yntymak_home):
    spawn, folder = setup
    t = spawn()
    uuid = t.expect(rf"({UUID})")[1]
    t.answer("Village", "Kara-Suu" + ENTER)
    t.answer("Photo of the work", str(folder / "nothing.jpg") + ENTER)
    t.expect("no file at")
    t.answer("Photo of the work", "\x15" + str(folder / "work.jpg") + ENTER)  # Ctrl-U clears
    t.answer("Comment", ENTER)
    t.answer("What next?", ENTER)
    t.expect(rf"Finalised: submission {uuid}, revision 1\.")
    assert t.finish() == 0
    record = Store.open().get_record(uuid)
    data = stored_photo(yntymak_home, record["answers"]["photo"])
    assert Image.open(io.BytesIO(data)).size == (64, 32)  # max_pixels


def test_killed_right_after_the_photo_keeps_it(setup, yntymak_home):
    spawn, folder = setup
    t = spawn()
    uuid = t.expect(rf"({UUID})")[1]
    t.answer("Village", "Kara-Suu" + ENTER)
    t.answer("Photo of the work", str(folder / "work.jpg") + ENTER)
    t.prompt("Comment")  # the photo was accepted: the next question is asked
    t.child.kill(signal.SIGKILL)
    t.child.expect(pexpect.EOF)
    t.child.close()
    assert t.child.signalstatus == signal.SIGKILL

    draft = Store.open().get_draft(uuid)
    stored_photo(yntymak_home, draft.state["answers"]["photo"])


VISIT_FORM = """\
id: site_visit
version: "1"
title: Site visit
questions:
  - {name: village, type: text, label: Village}
  - {name: photo, type: image, label: Photo of the work, required: true}
  - {name: pasture, type: geoshape, label: Disputed pasture}
  - {name: note_after, type: text, label: Comment}
"""


def test_a_photo_and_a_shape_from_the_terminal_to_hq_and_back_out(field, tmp_path):
    """The whole journey: answered in a real terminal, bundled, checked and kept at HQ,
    exported with links that open the same photo and a shape that is GeoJSON."""
    import csv
    import json

    geojson = pytest.importorskip("geojson")
    form = tmp_path / "visit.yaml"
    form.write_text(VISIT_FORM, encoding="utf-8")
    photo = tmp_path / "work.jpg"
    Image.new("RGB", (120, 80), (200, 120, 10)).save(photo, "JPEG")
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()  # no GPS: kept byte for byte

    t = Term(field.a, "collect", str(form), "--lang", "en", "--enumerator", "Aida")
    try:
        uuid = t.expect(rf"({UUID})")[1]
        t.answer("Village", "Kara-Suu" + ENTER)
        t.answer("Photo of the work", str(photo) + ENTER)
        t.answer("Disputed pasture", "42,87 74,59; 42,88 74,59; 42,88 74,60" + ENTER)
        t.expect("closed")  # the first point was added at the end, and the volunteer told
        t.answer("Comment", ENTER)
        t.answer("What next?", ENTER)
        t.expect(rf"Finalised: submission {uuid}, revision 1\.")
        assert t.finish() == 0
    finally:
        if t.child.isalive():
            t.child.kill(signal.SIGKILL)

    bundle = field.bundle(field.a)
    assert "1 media file(s) stored" in field.import_(bundle)
    assert (field.hq / "media" / sha[:2] / sha).read_bytes() == photo.read_bytes()

    out = tmp_path / "export"
    yn(field.hq, "hq", "export", "site_visit", "-o", out / "visit.csv", "--media", out / "m")
    with (out / "visit.csv").open(encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    assert row["photo"] == "work.jpg"
    assert (out / row["photo_URL"]).read_bytes() == photo.read_bytes()
    assert row["pasture"] == "42.87 74.59;42.88 74.59;42.88 74.6;42.87 74.59"

    yn(field.hq, "hq", "export", "site_visit", "--format", "geojson", "-o", out / "v.geojson")
    collection = geojson.loads((out / "v.geojson").read_text(encoding="utf-8"))
    assert collection.is_valid
    (feature,) = collection["features"]
    assert feature["geometry"]["type"] == "Polygon"
    assert feature["geometry"]["coordinates"][0][0] == [74.59, 42.87]  # lon, lat
    assert feature["properties"]["_uuid"] == uuid
    assert json.loads(yn(field.a, "submissions", "show", uuid, "--json"))["status"] == "final"
