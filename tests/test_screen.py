"""The screen a volunteer actually has: 80 columns by 24 rows, in Kyrgyz.

The pexpect tests feed the child's output into a terminal emulator (pyte), which also
answers prompt_toolkit's cursor-position requests as a real terminal does (so prompts lay
themselves out as they would on a laptop), and assert on the rows of the screen. The
CliRunner tests check the tables on 80 columns and that their short UUIDs work as
arguments.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import time

import pytest

from yntymak_cli.cli import app
from yntymak_cli.collect import prompts
from yntymak_cli.collect.prompts import ScriptedPrompter
from yntymak_cli.store.db import Store

from .conftest import DATA
from .helpers import runner, spawn_yntymak

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

CONTRACT = str(DATA / "village_safety.yaml")
ROWS, COLS = 24, 80
UP, DOWN, SPACE, ENTER, BACKSPACE, CTRL_C = "\x1b[A", "\x1b[B", " ", "\r", "\x7f", "\x03"
ALT_LEFT = "\x1b[1;3D"  # what xterm, tmux and screen send for Alt-←
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class Screen:
    """One `yntymak` process on an emulated 80x24 terminal."""

    def __init__(self, home, *args: str) -> None:
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.Stream(self.screen)
        self.child = spawn_yntymak(home, args, rows=ROWS, cols=COLS)
        # The emulator's replies (cursor position) go back to the program, as a terminal's do.
        self.screen.write_process_input = self.child.send
        self.child.logfile_read = self

    # pexpect hands everything it reads to logfile_read: the emulator draws it.
    def write(self, data: str) -> None:
        self.stream.feed(data)

    def flush(self) -> None:
        pass

    @property
    def rows(self) -> list[str]:
        return [row.rstrip() for row in self.screen.display]

    def __str__(self) -> str:
        return "\n".join(f"{i:2}|{row}" for i, row in enumerate(self.rows))

    __repr__ = __str__  # the screen in assertion messages

    def _pump(self, timeout: float = 0.05) -> None:
        if self.child.flag_eof:
            time.sleep(timeout)  # the program ended: the screen stays as it is
            return
        try:
            self.child.read_nonblocking(65536, timeout)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pass

    def wait(self, found, what: str = "", timeout: float = 20) -> None:
        """Until `found(rows)` (or a text on some row), then until the output is quiet."""
        if isinstance(found, str):
            what, text = found, found
            found = lambda rows: any(text in row for row in rows)  # noqa: E731
        deadline = time.monotonic() + timeout
        while not found(self.rows):
            if time.monotonic() > deadline:
                raise AssertionError(f"never on the screen: {what}\n{self}")
            self._pump()
        self.settle()

    def settle(self) -> None:
        before = None
        while before != self.rows:
            before = self.rows
            self._pump(0.15)

    def prompt(self, label: str) -> int:
        """Wait for the prompt of `label` (its key hint names Ctrl-B); its row."""
        self.wait(
            lambda rows: (
                any(r.startswith(f"? {label}") for r in rows) and "Ctrl-B" in "".join(rows)
            ),
            f"the prompt {label!r}",
        )
        return self.row(f"? {label}", start=True)

    def row(self, text: str, start: bool = False) -> int:
        """The last row holding `text` (at its start when `start`)."""
        hits = [i for i, r in enumerate(self.rows) if (r.startswith(text) if start else text in r)]
        assert hits, f"{text!r} not on the screen\n{self}"
        return hits[-1]

    def pick(self, label: str, entry: str) -> None:
        """In the list of prompt `label`, move from the pointer (») to `entry`, Enter."""
        top = self.prompt(label)
        entries = [r for r in self.rows[top + 1 :] if r.startswith(("   ", " » ")) and r.strip()]
        at = next(i for i, r in enumerate(entries) if r.startswith(" » "))
        to = next(i for i, r in enumerate(entries) if entry in r)
        self.child.send((DOWN * (to - at) if to >= at else UP * (at - to)) + ENTER)

    def answer(self, label: str, keys: str) -> None:
        self.prompt(label)
        self.child.send(keys)

    def finish(self) -> int:
        if not self.child.flag_eof:
            self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus


@pytest.fixture
def screen(yntymak_home):
    started: list[Screen] = []

    def spawn(*args: str) -> Screen:
        s = Screen(yntymak_home, *args)
        started.append(s)
        return s

    yield spawn
    for s in started:
        if s.child.isalive():
            s.child.kill(signal.SIGKILL)


def collect_ky(screen) -> tuple[Screen, str]:
    s = screen("collect", CONTRACT, "--lang", "ky", "--enumerator", "Айгүл")
    s.wait(lambda rows: re.search(UUID, "\n".join(rows)), "the draft's UUID")
    uuid = re.search(UUID, "\n".join(s.rows))[0]
    return s, uuid


def back_steps(uuid: str) -> list[str]:
    return [b["from"] for b in Store.open().get_draft(uuid).paradata["back_steps"]]


# -- the survey on 80x24 ------------------------------------------------------------------


@pytest.mark.slow
def test_refusals_show_under_their_prompt(screen):
    s, uuid = collect_ky(screen)
    s.answer("Облус", ENTER)
    s.answer("Район", ENTER)
    s.answer("Айыл", ENTER)  # required, left empty
    s.wait("Бул суроого жооп берүү милдеттүү.")
    message = s.row("Бул суроого жооп берүү милдеттүү.")
    assert s.rows[message - 1].startswith("✗ Айыл"), s
    assert s.prompt("Айыл") == message + 1, s  # asked again right below
    s.child.send("Кара-Суу" + ENTER)
    s.answer("Жашыңыз", "7" + ENTER)  # the form's constraint message
    s.wait("14 жаштан 99 жашка чейин")
    message = s.row("14 жаштан 99 жашка чейин")
    assert re.match(r"✗ Жашыңыз\s+7$", s.rows[message - 1]), s
    assert s.prompt("Жашыңыз") == message + 1, s
    assert message < ROWS - 2, s  # under the question, not at the bottom of the terminal
    s.child.send(BACKSPACE + "40" + ENTER)
    s.answer("Телефон", CTRL_C)
    s.wait("Токтотулду.")
    assert s.finish() == 130
    # Every "yntymak resume UUID" line holds the whole UUID: none is cut at column 80.
    commands = [row for row in s.rows if "yntymak resume" in row]
    assert len(commands) == 2 and all(row.endswith(f"yntymak resume {uuid}") for row in commands)
    assert Store.open().get_draft(uuid).state["answers"]["age"] == 40


@pytest.mark.slow
def test_the_start_says_whose_name_is_recorded(screen):
    s, _ = collect_ky(screen)
    s.answer("Облус", CTRL_C)
    assert s.finish() == 130
    # The next survey, without --enumerator: the remembered name is said, with the way out.
    s = screen("collect", CONTRACT, "--lang", "ky")
    s.prompt("Облус")
    line = s.row("Сурамжылоочу: Айгүл.")
    assert '--enumerator "АТЫҢЫЗ"' in " ".join(s.rows[line : line + 2]), s
    s.child.send(CTRL_C)
    assert s.finish() == 130


@pytest.mark.slow
def test_second_back_key_and_back_entry_of_a_multi_choice_list(screen):
    s, uuid = collect_ky(screen)
    s.answer("Облус", DOWN + ENTER)  # Нарын
    s.answer("Район", ENTER)
    hint = s.prompt("Айыл")
    assert "< жана Enter, Ctrl-B же Alt-←: артка" in " ".join(s.rows[hint : hint + 2])
    s.child.send("<" + ENTER)  # `<` alone on a text prompt: back
    s.answer("Район", ALT_LEFT)  # Alt-← on a list: back
    s.answer("Облус", ENTER)
    s.answer("Район", ENTER)
    s.answer("Айыл", "Ат-Башы" + ENTER)
    s.answer("Жашыңыз", "34" + ENTER)
    s.answer("Телефон", ENTER)
    s.answer("Акыркы жылы чыңалуу сездиңизби?", ENTER)
    row = s.prompt("Себептери")
    assert "← Артка" in s.rows[row + 5], s  # Жер, Суу, Жайыт, a blank, ← Артка
    s.child.send(SPACE + DOWN * 3 + ENTER)  # a tick, then Enter on "← Артка"
    s.answer("Акыркы жылы чыңалуу сездиңизби?", CTRL_C)
    s.wait("Токтотулду.")
    assert s.finish() == 130
    assert back_steps(uuid) == ["village", "district", "sources"]
    answers = Store.open().get_draft(uuid).state["answers"]
    assert answers["village"] == "Ат-Башы" and "sources" not in answers


LONG_FORM_QUESTIONS = 32


def long_form(make_form) -> str:
    lines = [
        "id: long_check",
        'version: "1"',
        "languages: [ky, en]",
        "default_language: ky",
        "questions:",
    ]
    for i in range(1, LONG_FORM_QUESTIONS + 1):
        lines.append(f"  - {{name: q{i:02}, type: text, label: {{ky: Суроо {i:02}, en: Q {i}}}}}")
    return str(make_form("\n".join(lines) + "\n"))


@pytest.mark.slow
def test_review_of_a_long_form_pages_on_24_rows(screen, make_form):
    from yntymak_cli.collect.session import Session
    from yntymak_cli.forms.loader import load_form

    form = load_form(long_form(make_form)).require()
    session = Session.start(Store.open(), form, lang="ky", enumerator="Айгүл", device_id="d")
    for step in list(session.engine.steps(session.state)):
        assert session.answer(step, f"жооп {step.where}") is None
    s = screen("resume", session.uuid[:8])  # every question answered: the review
    s.prompt("Эми эмне кылабыз?")
    assert s.row("Жоопторду текшериңиз") < s.row("Суроо 01"), s  # title, then the first row
    pages = int(re.search(r"Жоопторду текшериңиз \((\d+) беттин 1-бети\)", str(s))[1])
    assert pages >= 3
    assert s.row("Суроо 01") < s.row("? Эми эмне кылабыз?"), s  # the first row, on screen
    seen = {int(m) for m in re.findall(r"Суроо (\d+)", str(s))}
    for page in range(2, pages + 1):
        s.child.send(ENTER)  # the default: the next page
        s.wait(f"({pages} беттин {page}-бети)")
        s.prompt("Эми эмне кылабыз?")
        assert s.row("Жоопторду текшериңиз") < s.row("Суроо"), s  # the title above the rows
        seen |= {int(m) for m in re.findall(r"Суроо (\d+)", str(s))}
    assert seen == set(range(1, LONG_FORM_QUESTIONS + 1))
    s.child.send(ENTER)  # on the last page the default is to finalise
    s.wait("Аякталды")
    assert s.finish() == 0
    assert Store.open().get_record(session.uuid)["answers"]["q32"] == "жооп q32"


@pytest.mark.slow
def test_submissions_edit_opens_on_the_review(screen):
    filled = runner.invoke(
        app,
        [
            "collect",
            CONTRACT,
            "--answers",
            str(DATA / "village_safety_answers.yaml"),
            "--lang",
            "ky",
            "--enumerator",
            "Айгүл",
        ],
    )
    assert filled.exit_code == 0, filled.output
    uuid = filled.stdout.split()[-1]
    s = screen("submissions", "edit", uuid[:8], "--lang", "ky")
    s.prompt("Эми эмне кылабыз?")  # the review first: no question asked before it
    assert s.row("Жоопторду текшериңиз") < s.row("? Эми эмне кылабыз?")
    s.pick("Эми эмне кылабыз?", "Жоопту өзгөртүү")
    s.pick("Кайсы жоопту?", "Жашыңыз: 34")
    s.answer("Жашыңыз", BACKSPACE * 3 + "35" + ENTER)
    s.pick("Эми эмне кылабыз?", "Аяктоо жана сактоо")
    s.wait(f"Аякталды: анкета {uuid}, 2-редакция.")
    assert s.finish() == 0
    record = Store.open().get_record(uuid)
    assert record["revision"] == 2 and record["answers"]["age"] == 35


# -- tables on 80 columns, short UUIDs back as arguments ----------------------------------


@pytest.fixture
def script(monkeypatch):
    def install(*answers):
        prompter = ScriptedPrompter(answers)
        monkeypatch.setattr(prompts, "make_prompter", lambda lang: prompter)
        return prompter

    return install


def fill(*args: str) -> str:
    answers = str(DATA / "village_safety_answers.yaml")
    result = runner.invoke(app, ["collect", CONTRACT, "--answers", answers, *args])
    assert result.exit_code == 0, result.output
    return result.stdout.split()[-1]


def table_rows(output: str) -> list[str]:
    lines = output.splitlines()
    assert all(len(line) <= 80 for line in lines), output
    assert "…" not in output, output  # no cut cell
    return lines


def test_submissions_list_fits_80_columns_and_its_short_uuids_work(monkeypatch, script):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("YNTYMAK_LANG", "ky")
    names = ("Айгүл Бекмуратова-Сатыбалдиева", "Бакыт", "Nurlan Abdykadyrov")
    uuids = [fill("--lang", "ky", "--enumerator", name) for name in names]
    result = runner.invoke(app, ["submissions", "list"])
    assert result.exit_code == 0, result.output
    lines = table_rows(result.stdout)
    for uuid in uuids:
        assert any(line.split()[:1] == [uuid[:8]] for line in lines), result.stdout
        assert uuid not in result.stdout
    for uuid in uuids:  # each short UUID as shown works as an argument
        shown = runner.invoke(app, ["submissions", "show", uuid[:8], "--json"])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["uuid"] == uuid
    script(("review", "change"), ("jump", ("age",)), ("age", "36"), ("review", "finalise"))
    edited = runner.invoke(app, ["submissions", "edit", uuids[0][:8], "--lang", "ky"])
    assert edited.exit_code == 0, edited.output
    assert Store.open().get_record(uuids[0])["answers"]["age"] == 36
    voided = runner.invoke(app, ["submissions", "void", uuids[1][:8], "--reason", "кайталанган"])
    assert voided.exit_code == 0, voided.output
    assert Store.open().get_record(uuids[1])["status"] == "void"


def test_drafts_fit_80_columns_and_resume_takes_the_short_uuid(monkeypatch, script, make_form):
    from yntymak_cli.forms.loader import load_form

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("YNTYMAK_LANG", "ky")
    store = Store.open()
    form = load_form(CONTRACT).require()
    uuid = store.create_draft(form, {"answers": {}}, "Айгүл Бекмуратова-Сатыбалдиева", "d", {})
    result = runner.invoke(app, ["drafts"])
    assert result.exit_code == 0, result.output
    lines = table_rows(result.stdout)
    short = next(line.split()[0] for line in lines if line.startswith(uuid[:8]))
    assert short == uuid[:8] and uuid not in result.stdout
    script(("oblast", KeyboardInterrupt))
    resumed = runner.invoke(app, ["resume", short, "--lang", "ky"])
    assert resumed.exit_code == 130, resumed.output
    assert f"{uuid} караламасы уланууда" in resumed.output
