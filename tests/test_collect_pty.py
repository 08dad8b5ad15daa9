"""`yntymak collect` / `yntymak resume` in a real pseudo-terminal (pexpect): real keys,
real prompts, and the process killed mid-survey without losing an answer."""

from __future__ import annotations

import re
import signal
import sys

import pytest

from yntymak_cli.store.db import Store

from .conftest import DATA
from .helpers import BACKSPACE, CTRL_B, CTRL_C, DOWN, ENTER, SPACE, UP, UUID, Term

pexpect = pytest.importorskip("pexpect")
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty"),
    pytest.mark.slow,
]

CONTRACT = str(DATA / "village_safety.yaml")


@pytest.fixture
def term(yntymak_home):
    started: list[Term] = []

    def spawn(*args: str) -> Term:
        t = Term(yntymak_home, *args)
        started.append(t)
        return t

    yield spawn
    for t in started:
        if t.child.isalive():
            t.child.kill(signal.SIGKILL)


def collect(term, lang: str = "en") -> tuple[Term, str]:
    t = term("collect", CONTRACT, "--lang", lang, "--enumerator", "Aida")
    uuid = t.expect(rf"({UUID})")[1]
    return t, uuid


EXPECTED = {
    "oblast": "naryn",
    "district": "at_bashy",
    "village": "Ат-Башы",
    "age": 34,
    "felt_tension": "yes",
    "sources": ["land", "pasture"],
    "n_incidents": 2,
    "incidents": [
        {"incident_date": "2026-10-01", "resolved": "no"},
        {"incident_date": "2026-10-15", "resolved": "yes"},
    ],
    "n_sources": 2,
    "location": "41.23 75.8",
    "enumerator": "Aida",
}


def answers_of(record: dict) -> dict:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["answers"]["today"])
    return {k: v for k, v in record["answers"].items() if k != "today"}


def fill_from_tension(t: Term) -> None:
    """felt_tension onwards, with a skip rule seen and undone with Ctrl-B."""
    t.answer("Did you feel tension", DOWN + ENTER)  # No: the tension questions are skipped
    t.answer("Location", CTRL_B)
    t.answer("Did you feel tension", UP + ENTER)  # Yes (No was the default now)
    t.answer("Sources", SPACE + DOWN + DOWN + SPACE + ENTER)
    t.answer("How many incidents?", "2" + ENTER)
    t.answer("Incident 1 › Date", "2026-10-01" + ENTER)
    t.answer("Incident 1 › Resolved?", DOWN + ENTER)
    t.answer("Incident 2 › Date", "2026-10-15" + ENTER)
    t.answer("Incident 2 › Resolved?", ENTER)
    t.answer("Location", "41.23 75.80" + ENTER)
    t.answer("Read it, then press Enter", ENTER)
    t.answer("What next?", ENTER)


def test_contract_form_in_a_real_terminal(term):
    t, uuid = collect(term)
    assert f"Resume with: yntymak resume {uuid}" in t.text
    t.answer("Region (required)", DOWN + ENTER)  # Naryn
    t.answer("District (required)", ENTER)  # only At-Bashy is offered for Naryn
    t.answer("Village (required)", "Ат-Башы" + ENTER)
    t.answer("Age", "5" + ENTER)
    t.expect("Between 14 and 99")  # refused in place
    # The question is asked again, with 5 kept: type only once it is on screen (keys sent
    # earlier may reach the prompt that is closing, as a fast typist's would not).
    t.prompt("Age")
    t.child.send(BACKSPACE + "34" + ENTER)
    t.answer("Phone", CTRL_B)  # back: Age again, 34 as the default
    t.answer("Age", ENTER)
    t.answer("Phone", ENTER)
    fill_from_tension(t)
    t.expect(rf"Finalised: submission {uuid}, revision 1\.")
    assert t.finish() == 0
    text = t.text
    assert "Land, Pasture" in text and "Incident 2 › Resolved?" in text
    assert "Traceback" not in text
    record = Store.open().get_record(uuid)
    assert record["status"] == "final" and record["revision"] == 1
    assert answers_of(record) == EXPECTED


def test_change_on_the_review_returns_to_the_review(term):
    """ "Change an answer" on the review, in a real terminal: after the new answer, the
    review again, not a walk through every later question and incident."""
    t, uuid = collect(term)
    t.answer("Region", DOWN + ENTER)
    t.answer("District", ENTER)
    t.answer("Village", "Ат-Башы" + ENTER)
    t.answer("Age", "34" + ENTER)
    t.answer("Phone", ENTER)
    t.answer("Did you feel tension", ENTER)
    t.answer("Sources", SPACE + DOWN + DOWN + SPACE + ENTER)
    t.answer("How many incidents?", "2" + ENTER)
    t.answer("Incident 1 › Date", "2026-10-01" + ENTER)
    t.answer("Incident 1 › Resolved?", DOWN + ENTER)
    t.answer("Incident 2 › Date", "2026-10-15" + ENTER)
    t.answer("Incident 2 › Resolved?", ENTER)
    t.answer("Location", "41.23 75.80" + ENTER)
    t.answer("Read it, then press Enter", ENTER)
    t.answer("What next?", DOWN + ENTER)  # Change an answer
    t.answer("Which answer?", DOWN * 2 + ENTER)  # Village
    t.answer("Village", BACKSPACE * 10 + "Кара-Суу" + ENTER)
    # Straight back to the review: no later question (a prompt would wait for keys here).
    t.expect("Nothing else needs an answer: back to the review.")
    t.answer("What next?", ENTER)
    t.expect(rf"Finalised: submission {uuid}, revision 1\.")
    assert t.finish() == 0
    assert answers_of(Store.open().get_record(uuid)) == {**EXPECTED, "village": "Кара-Суу"}


def test_killed_mid_survey_then_resumed(term):
    t, uuid = collect(term)
    t.answer("Region", DOWN + ENTER)
    t.answer("District", ENTER)
    t.answer("Village", "Ат-Башы" + ENTER)
    t.answer("Age", "34" + ENTER)
    t.prompt("Phone")
    t.child.kill(signal.SIGKILL)  # no chance to save anything now
    t.child.expect(pexpect.EOF)
    t.child.close()
    assert t.child.signalstatus == signal.SIGKILL

    draft = Store.open().get_draft(uuid)
    saved = draft.state["answers"]
    assert {k: saved.get(k) for k in ("oblast", "district", "village", "age")} == {
        "oblast": "naryn",
        "district": "at_bashy",
        "village": "Ат-Башы",
        "age": 34,
    }

    r = term("resume", uuid[:8], "--lang", "en")
    r.expect(f"Continuing draft {uuid}")
    r.answer("Phone", ENTER)  # the first unanswered question
    fill_from_tension(r)
    r.expect(rf"Finalised: submission {uuid}, revision 1\.")
    assert r.finish() == 0
    assert "Region" not in r.text.split("Phone")[0]  # nothing answered is asked again
    assert answers_of(Store.open().get_record(uuid)) == EXPECTED


def test_ctrl_c_keeps_the_draft_and_exits_130(term):
    t = term("collect", CONTRACT, "--lang", "en")
    # No --enumerator and none remembered: asked once, in the survey's language.
    t.expect("Your name")
    t.child.send(ENTER)  # empty: refused
    t.expect("Please type your name")
    t.child.send("Бакыт" + ENTER)
    uuid = t.expect(rf"Draft ({UUID})")[1]
    t.answer("Region", ENTER)
    t.answer("District", CTRL_C)
    t.expect(f"Stopped. Nothing is lost: the answers are saved in draft {uuid}")
    assert t.finish() == 130
    draft = Store.open().get_draft(uuid)
    assert draft.state["answers"]["oblast"] == "osh" and draft.enumerator == "Бакыт"
    assert "Cancelled by user" not in t.text and "Traceback" not in t.text


def test_kyrgyz_survey_shows_no_english(term):
    t, uuid = collect(term, "ky")
    t.answer("Облус (милдеттүү)", ENTER)
    t.answer("Район (милдеттүү)", ENTER)
    t.answer("Айыл (милдеттүү)", "Кара-Суу" + ENTER)
    t.answer("Жашыңыз", "7" + ENTER)
    t.expect("14 жаштан 99 жашка чейин")
    t.prompt("Жашыңыз")  # asked again: type once it is on screen
    t.child.send(BACKSPACE + "40" + ENTER)
    t.answer("Телефон", ENTER)
    t.answer("Акыркы жылы чыңалуу сездиңизби?", ENTER)
    t.answer("Себептери", SPACE + ENTER)
    t.answer("Канча окуя?", "1" + ENTER)
    t.answer("Окуя 1 › Күнү", "2026-10-01" + ENTER)
    t.answer("Окуя 1 › Чечилдиби?", CTRL_B)
    t.answer("Окуя 1 › Күнү", "x" + ENTER)
    t.expect("ЖЖЖЖ-АА-КК түрүндөгү дата болушу керек")
    t.prompt("Окуя 1 › Күнү")
    t.child.send(BACKSPACE + ENTER)
    t.answer("Окуя 1 › Чечилдиби?", ENTER)
    t.answer("Жайгашкан жери", "40.5 72.8" + ENTER)
    t.answer("Окуп чыгып, Enter басыңыз", ENTER)
    t.answer("Эми эмне кылабыз?", ENTER)
    t.expect(rf"Аякталды: анкета {uuid}, 1-редакция\.")
    assert t.finish() == 0
    text = re.sub(UUID, "", t.text)
    assert "Каралама" in text and "артка" in text and "Жоопторду текшериңиз" in text
    # The only Latin words are key names, the command and option to type, and the name
    # the enumerator gave (in "Сурамжылоочу: Aida." at the start).
    latin = set(re.findall(r"[A-Za-z]{2,}", text))
    assert latin <= {"Ctrl", "Alt", "Enter", "yntymak", "resume", "enumerator", "Aida"}, latin
    answers = answers_of(Store.open().get_record(uuid))
    assert answers["incidents"] == [{"incident_date": "2026-10-01", "resolved": "yes"}]
    assert answers["sources"] == ["land"] and answers["age"] == 40
