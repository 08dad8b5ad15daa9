"""Numbers, dates and times typed the local way (decimal comma, `DD.MM.YYYY`, `14.30`):
through the engine, `collect --answers`, an XLSForm default and a real Kyrgyz terminal,
each asserting the value stored. The rule itself is `forms.values.read_numbers`."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import sys
import textwrap
from pathlib import Path

import pytest

import yntymak_cli
from yntymak_cli.cli import app
from yntymak_cli.engine.survey import Engine
from yntymak_cli.forms.loader import load_form_text
from yntymak_cli.i18n import t
from yntymak_cli.store.db import Store

from .helpers import runner

NOW = dt.datetime(2026, 11, 5, 9, 30, 15)

FORM = """
id: local_input
version: "1"
title: {ky: Жергиликтүү жазуу, ru: Местная запись, en: Local input}
languages: [ky, ru, en]
default_language: ky
questions:
  - {name: place, type: geopoint, label: {ky: Жайгашкан жери, ru: Место, en: Place}}
  - name: day
    type: date
    label: {ky: Күнү, ru: Дата, en: Day}
    constraint: . >= date('2026-01-01') and . <= date('2026-12-31')
    constraint_message: {ky: 2026-жылдын күнү, ru: Дата 2026 года, en: A day in 2026}
  - {name: at, type: time, label: {ky: Убактысы, ru: Время, en: Time}}
  - {name: moment, type: datetime, label: {ky: Күнү жана убактысы, ru: Дата и время, en: When}}
  - {name: amount, type: decimal, label: {ky: Суммасы, ru: Сумма, en: Amount}}
  - {name: count, type: integer, label: {ky: Саны, ru: Количество, en: Count}}
"""


def engine(lang: str = "ky") -> Engine:
    form = load_form_text(textwrap.dedent(FORM), "local_input.yaml").require()
    return Engine(form, lang=lang, now=lambda: NOW, username="aigul", deviceid="dev-1")


def typed(question: str, raw: str, lang: str = "ky") -> tuple[object, str | None]:
    """(stored value, None) or (None, the refusal in `lang`) for `raw` typed at `question`."""
    e = engine(lang)
    st = e.start()
    error = e.answer(st, (question,), raw)
    return st.answers.get(question), error


# ------------------------------------------------------------------ through the engine

# Every spelling on one line is the same answer; each line has a form today's code
# refuses or stores wrongly.
ACCEPTED = [
    ("place", ["40,53 72,80", "40,53; 72,80", "40.53, 72.80", "40.53 72.80"], "40.53 72.8"),
    # A comma between numbers that all hold a decimal point can only separate them.
    ("place", ["40.53,72.80", "40.53 ,72.80", "40.53,72.8"], "40.53 72.8"),
    ("place", ["40,53 72,80 1200 5", "40.53; 72.8; 1200; 5"], "40.53 72.8 1200 5"),
    ("place", ["40.53,72.80,1200.0,5.0", "40,53 72,80 1200,0 5,0"], "40.53 72.8 1200 5"),
    # Not one altitude grouped in thousands: 850100 m or 9001 m is no altitude, nor `0 500`.
    ("place", ["40,53 72,80 850 100", "40.53 72.80 850 100"], "40.53 72.8 850 100"),
    ("place", ["40,53 72,80 0 500"], "40.53 72.8 0 500"),
    ("place", ["40,53 72,80 9 001", "40.53; 72.80; 9; 1"], "40.53 72.8 9 1"),
    # Separated by ";" (or given as a list) the four numbers are what was written.
    ("place", ["40,53; 72,80; 1; 200", "40.53, 72.80, 1, 200"], "40.53 72.8 1 200"),
    ("place", ["-40,5 -72,8", "-40.5, -72.8", "-40.5  ;  -72.8"], "-40.5 -72.8"),
    ("day", ["05.10.2026", "5.10.2026", "2026-10-05"], "2026-10-05"),
    ("day", ["5.1.2026", "05.01.2026", "2026-01-05"], "2026-01-05"),
    ("at", ["14.30", "14:30"], "14:30"),
    ("at", ["9.05", "09:05"], "09:05"),
    ("at", ["14.30.15", "14:30:15"], "14:30:15"),
    ("moment", ["31.12.2026 14.30", "31.12.2026 14:30", "2026-12-31 14:30"], "2026-12-31T14:30:00"),
    ("moment", ["2026-12-31 14.30", "2026-12-31T14:30"], "2026-12-31T14:30:00"),
    ("amount", ["1 234,5", "1\u00a0234,5", "1234.5", "1234,5", "+1234,50"], 1234.5),
]


@pytest.mark.parametrize(
    ("question", "spellings", "stored"), ACCEPTED, ids=[f"{q}:{s[0]}" for q, s, _ in ACCEPTED]
)
def test_local_spellings_store_one_value(question, spellings, stored):
    for raw in spellings:
        assert typed(question, raw) == (stored, None), raw


# What could be read two ways is refused, in the volunteer's language, never guessed.
REFUSED = [
    ("place", "40,53,72,80", "ambiguous_geopoint"),  # today: 40 53 72 80
    ("place", "40, 53, 72, 80", "ambiguous_geopoint"),  # four comma-separated integers
    ("place", "40, 53 72, 80", "ambiguous_geopoint"),  # commas and spaces mixed
    ("place", "40.53,72.80,1200,5", "ambiguous_geopoint"),  # not every part has a point
    ("place", "40,53,72.80", "ambiguous_geopoint"),
    # The altitude grouped in thousands: today altitude 1, accuracy 200.
    ("place", "40,53 72,80 1 200", "ambiguous_altitude"),
    ("place", "40.53 72.80 1 200", "ambiguous_altitude"),
    ("place", "40.53\t72.80  9 000", "ambiguous_altitude"),
    ("place", "40,53 72,80 1 200 5", "ambiguous_altitude"),  # altitude 1 200, accuracy 5
    ("place", "40,72", "ambiguous_geopoint"),  # one number, 40.72
    ("amount", "12, 5", "ambiguous_number"),  # today: 12.5, a guess
    ("amount", "1.234,5", "ambiguous_number"),
    ("amount", "1,234.5", "ambiguous_number"),
    ("amount", "12.5,3.5", "ambiguous_number"),  # two numbers where one is asked for
    ("day", "2026-W41-1", "invalid_date"),  # today: an ISO week date, 2026-10-05
]


@pytest.mark.parametrize(("question", "raw", "key"), REFUSED, ids=[r for _, r, _ in REFUSED])
@pytest.mark.parametrize("lang", ["ky", "ru", "en"])
def test_what_could_be_misread_is_refused_in_the_volunteers_language(question, raw, key, lang):
    assert typed(question, raw, lang) == (None, t(key, lang))


def test_spaces_only_group_thousands():
    assert typed("amount", "1 234 567,5") == (1234567.5, None)
    assert typed("count", "1 234") == (1234, None)
    # Any other space separates two numbers where one is asked for: today both are 125.
    assert typed("amount", "12 5") == (None, t("ambiguous_number", "ky"))
    assert typed("count", "12 5") == (None, t("invalid_integer", "ky"))


@pytest.mark.parametrize("lang", ["ky", "ru", "en"])
def test_an_altitude_grouped_in_thousands_is_to_be_written_without_a_space(lang):
    # `1 200` is altitude 1200 or altitude 1 and accuracy 200: the message shows the way.
    message = t("ambiguous_altitude", lang)
    assert "42,87 74,59 1200 5" in message and message != t("ambiguous_geopoint", lang)
    assert typed("place", "40,53 72,80 1 200", lang) == (None, message)
    assert typed("place", "40,53 72,80 1200 5", lang) == ("40.53 72.8 1200 5", None)
    # Numbers given one by one are what was written.
    e = engine(lang)
    st = e.start()
    assert e.answer(st, ("place",), ["40,53", "72,80", "1", "200"]) is None
    assert st.answers["place"] == "40.53 72.8 1 200"


# Still refused, and the message says how to write it the local way.
MASKS = {
    "date": {"ky": "КК.АА.ЖЖЖЖ", "ru": "ДД.ММ.ГГГГ", "en": "DD.MM.YYYY"},
    "time": {"ky": "СС.ММ", "ru": "ЧЧ.ММ", "en": "HH.MM"},
}
STILL_REFUSED = [
    ("day", "05/10/2026", "invalid_date", "date"),  # day or month first? never guessed
    ("day", "31.02.2026", "invalid_date", "date"),
    ("at", "14.3", "invalid_time", "time"),
    ("at", "24.00", "invalid_time", "time"),
    ("moment", "31.12.2026", "invalid_datetime", "date"),
]


@pytest.mark.parametrize(
    ("question", "raw", "key", "mask"), STILL_REFUSED, ids=[r for _, r, _, _ in STILL_REFUSED]
)
@pytest.mark.parametrize("lang", ["ky", "ru", "en"])
def test_refusals_show_the_local_form(question, raw, key, mask, lang):
    value, error = typed(question, raw, lang)
    assert value is None and error == t(key, lang)
    assert MASKS[mask][lang] in error


@pytest.mark.parametrize(
    ("key", "ky", "ru"),
    [
        ("invalid_date", "КК.АА.ЖЖЖЖ", "ДД.ММ.ГГГГ"),
        ("invalid_time", "СС.ММ", "ЧЧ.ММ"),
        ("invalid_datetime", "КК.АА.ЖЖЖЖ СС:ММ", "ДД.ММ.ГГГГ ЧЧ:ММ"),
        ("format_date", "КК.АА.ЖЖЖЖ", "ДД.ММ.ГГГГ"),
        ("format_time", "СС.ММ", "ЧЧ.ММ"),
        ("format_datetime", "КК.АА.ЖЖЖЖ", "ДД.ММ.ГГГГ"),
        ("format_geopoint", "42,87 74,59", "42,87 74,59"),
        ("format_decimal", "12,5", "12,5"),
    ],
)
def test_messages_and_hints_name_the_local_form(key, ky, ru):
    assert ky in t(key, "ky") and ru in t(key, "ru")
    assert not re.search(r"[A-Za-z]", t(key, "ky") + t(key, "ru"))


def test_a_date_range_constraint_judges_the_local_date():
    assert typed("day", "31.12.2026") == ("2026-12-31", None)
    assert typed("day", "1.1.2027") == (None, "2026-жылдын күнү")
    assert typed("day", "31.12.2025", "ru") == (None, "Дата 2026 года")


def test_a_default_typed_the_local_way(load):
    form = load(
        """
        id: defaults
        version: "1"
        questions:
          - {name: place, type: geopoint, label: Place, default: "40,53 72,80"}
          - {name: day, type: date, label: Day, default: 05.10.2026}
          - {name: at, type: time, label: Time, default: "14.30"}
        """
    )
    st = Engine(form, lang="en", now=lambda: NOW).start()
    assert (st.answers["place"], st.answers["day"], st.answers["at"]) == (
        "40.53 72.8",
        "2026-10-05",
        "14:30",
    )


def test_an_ambiguous_default_is_a_form_error(make_form):
    from yntymak_cli.forms.loader import load_form

    path = make_form(
        """
        id: defaults
        version: "1"
        questions:
          - {name: place, type: geopoint, label: Place, default: "40,53,72,80"}
        """
    )
    errors = [str(p) for p in load_form(path).errors]
    assert len(errors) == 1 and "default " + t("ambiguous_geopoint", "en") in errors[0]


def test_an_xlsform_default_is_stored_as_the_answer_would_be(tmp_path):
    from openpyxl import Workbook

    from yntymak_cli.xlsform import import_xlsform

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "survey"
    sheet.append(["type", "name", "label", "default"])
    sheet.append(["geopoint", "place", "Place", "40,53 72,80"])
    sheet.append(["date", "day", "Day", "05.10.2026"])
    sheet.append(["time", "at", "Time", "14.30"])
    sheet.append(["decimal", "amount", "Amount", "2,5"])
    sheet.append(["geopoint", "bad", "Bad", "40,53,72,80"])
    workbook.save(tmp_path / "form.xlsx")
    result = import_xlsform(tmp_path / "form.xlsx")
    questions = {q["name"]: q for q in result.form_data["questions"]}
    assert {name: q.get("default") for name, q in questions.items()} == {
        "place": "40.53 72.8",
        "day": "2026-10-05",
        "at": "14:30",
        "amount": "2.5",
        "bad": None,
    }
    # The ambiguous one is not used: kept aside as written, with the reason.
    assert questions["bad"]["xlsform"] == {"default": "40,53,72,80"}
    [warning] = result.warnings
    assert "'bad'" in warning and t("ambiguous_geopoint", "en") in warning


# ------------------------------------------------------------------ collect --answers


def collect_answers(tmp_path: Path, answers: str, suffix: str = ".yaml"):
    form = tmp_path / "local_input.yaml"
    form.write_text(textwrap.dedent(FORM), encoding="utf-8")
    path = tmp_path / f"answers{suffix}"
    path.write_text(textwrap.dedent(answers), encoding="utf-8")
    args = ["collect", str(form), "--answers", str(path), "--enumerator", "Aida"]
    return runner.invoke(app, [*args, "--lang", "ky"])


def stored_answers(result) -> dict:
    assert result.exit_code == 0, result.output
    uuid = result.stdout.strip().splitlines()[-1]
    return Store.open().get_record(uuid)["answers"]


def test_answers_file_with_local_spellings(tmp_path):
    answers = stored_answers(
        collect_answers(
            tmp_path,
            """
            place: 40,53 72,80
            day: 05.10.2026
            at: 14.30
            moment: 31.12.2026 14.30
            amount: 1 234,5
            count: 1 234
            """,
        )
    )
    assert {k: answers[k] for k in ("place", "day", "at", "moment", "amount", "count")} == {
        "place": "40.53 72.8",
        "day": "2026-10-05",
        "at": "14:30",
        "moment": "2026-12-31T14:30:00",
        "amount": 1234.5,
        "count": 1234,
    }


def test_json_answers_file_with_local_spellings(tmp_path):
    body = {"place": "40,53; 72,80", "day": "5.1.2026", "at": "9.05", "amount": "2,5"}
    answers = stored_answers(collect_answers(tmp_path, json.dumps(body), ".json"))
    assert {k: answers[k] for k in body} == {
        "place": "40.53 72.8",
        "day": "2026-01-05",
        "at": "09:05",
        "amount": 2.5,
    }


def test_answers_file_with_an_ambiguous_point_saves_nothing(tmp_path):
    result = collect_answers(tmp_path, "place: 40,53,72,80\nday: 05.10.2026\n")
    assert result.exit_code == 2
    assert f"place: {t('ambiguous_geopoint', 'ky')}" in result.output
    assert Store.open().list_records() == []


def test_answers_file_with_an_altitude_grouped_in_thousands_saves_nothing(tmp_path):
    # Today stored as altitude 1, accuracy 200.
    result = collect_answers(tmp_path, "place: 40,53 72,80 1 200\nday: 05.10.2026\n")
    assert result.exit_code == 2
    assert f"place: {t('ambiguous_altitude', 'ky')}" in result.output
    assert Store.open().list_records() == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("place", "stored"),
    [
        ("40.53,72.80", "40.53 72.8"),  # today refused as ambiguous
        ("40.53 72.80 850 100", "40.53 72.8 850 100"),
        ("40,53 72,80 1200 5", "40.53 72.8 1200 5"),
        (["40,53", "72,80", "1", "200"], "40.53 72.8 1 200"),
    ],
    ids=str,
)
def test_answers_file_with_a_pasted_point_or_an_altitude(tmp_path, place, stored):
    body = {"place": place, "day": "05.10.2026"}
    answers = stored_answers(collect_answers(tmp_path, json.dumps(body), ".json"))
    assert answers["place"] == stored


# ------------------------------------------------------------------ a real Kyrgyz terminal


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")
def test_kyrgyz_terminal_stores_local_spellings(tmp_path, yntymak_home):
    pexpect = pytest.importorskip("pexpect")
    form = tmp_path / "local_input.yaml"
    form.write_text(textwrap.dedent(FORM), encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(yntymak_home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "YNTYMAK_HOME": str(yntymak_home),
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "TERM": "xterm",
        # The sources this test imported, not whatever else is installed.
        "PYTHONPATH": str(Path(yntymak_cli.__file__).resolve().parents[1]),
    }
    args = ["-m", "yntymak_cli", "collect", str(form), "--lang", "ky", "--enumerator", "Aida"]
    child = pexpect.spawn(
        sys.executable, args, env=env, encoding="utf-8", timeout=20, dimensions=(40, 120)
    )
    try:
        uuid = _kyrgyz_survey(child, pexpect)
    finally:
        if child.isalive():
            child.kill(signal.SIGKILL)
    answers = Store.open().get_record(uuid)["answers"]
    assert {k: answers[k] for k in ("place", "day", "at", "amount")} == {
        "place": "40.53 72.8",
        "day": "2026-10-05",
        "at": "14:30",
        "amount": 2.5,
    }


def _kyrgyz_survey(child, pexpect) -> str:
    enter, backspace = "\r", "\x7f"

    def answer(label: str, hint: str, keys: str) -> None:
        # The prompt, then its hint in Kyrgyz, then the back key.
        child.expect(re.escape(label) + r"[^\n]*?" + re.escape(hint) + r"[^\n]*?Ctrl-B")
        child.send(keys)

    child.expect(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    uuid = child.match.group()
    answer("Жайгашкан жери", t("format_geopoint", "ky"), "40,53,72,80" + enter)
    child.expect(re.escape(t("ambiguous_geopoint", "ky")[:40]))
    child.send(backspace * 11 + "40,53 72,80" + enter)
    answer("Күнү", t("format_date", "ky"), "05.10.2026" + enter)
    answer("Убактысы", t("format_time", "ky"), "14.30" + enter)
    answer("Күнү жана убактысы", t("format_datetime", "ky"), enter)
    answer("Суммасы", t("format_decimal", "ky"), "2,5" + enter)
    answer("Саны", t("format_integer", "ky"), enter)
    child.expect("Эми эмне кылабыз?")
    child.send(enter)
    child.expect(re.escape(f"Аякталды: анкета {uuid}"))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    return uuid
