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

from .helpers import ENTER, UUID, Term

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
