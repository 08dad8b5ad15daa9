"""The survey loop (collect.interactive) driven by a scripted prompter, and the real
questionary prompts driven through a prompt_toolkit pipe (no terminal needed)."""

from __future__ import annotations

import re

import pytest

from yntymak_cli.cli import app
from yntymak_cli.collect import interactive, prompts
from yntymak_cli.collect.prompts import BACK, ScriptedPrompter
from yntymak_cli.store.db import Store

from .conftest import DATA
from .helpers import CONTRACT, collect, press, runner, show

KEEP = ScriptedPrompter.KEEP
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def script(monkeypatch):
    """Install a scripted prompter as the survey's prompter factory; returns a setter."""
    holder: dict[str, ScriptedPrompter] = {}

    def install(*answers):
        prompter = ScriptedPrompter(answers)
        holder["p"] = prompter
        monkeypatch.setattr(prompts, "make_prompter", lambda lang: prompter)
        return prompter

    return install


def draft_uuid(output: str) -> str:
    match = UUID_RE.search(output)
    assert match, output
    return match[0]


CONTRACT_SCRIPT = [
    ("oblast", "osh"),
    ("district", "kara_suu"),
    ("village", "Кара-Суу"),
    ("age", "5"),  # violates the constraint: asked again
    ("age", "34"),
    ("phone", ""),
    ("felt_tension", "yes"),
    ("sources", ["land", "water"]),
    ("n_incidents", "2"),
    ("incidents[1]/incident_date", "2026-10-01"),
    ("incidents[1]/resolved", BACK),  # a back-step to the date...
    ("incidents[1]/incident_date", "2026-10-02"),  # ...which is corrected
    ("incidents[1]/resolved", "no"),
    ("incidents[2]/incident_date", "2026-10-15"),
    ("incidents[2]/resolved", "yes"),
    ("location", "40.53 72.80"),
    ("thanks", None),
    ("review", "finalise"),
]

CONTRACT_ANSWERS = {
    "oblast": "osh",
    "district": "kara_suu",
    "village": "Кара-Суу",
    "age": 34,
    "felt_tension": "yes",
    "sources": ["land", "water"],
    "n_incidents": 2,
    "incidents": [
        {"incident_date": "2026-10-02", "resolved": "no"},
        {"incident_date": "2026-10-15", "resolved": "yes"},
    ],
    "n_sources": 2,
    "location": "40.53 72.8",
    "enumerator": "Aida",
}


def without_today(answers: dict) -> dict:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", answers["today"])
    return {k: v for k, v in answers.items() if k != "today"}


def test_contract_form_through_collect(script):
    prompter = script(*CONTRACT_SCRIPT)
    result = collect(CONTRACT, "--lang", "en", "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    uuid = draft_uuid(result.output)
    # The command on a line of its own: no terminal cuts its UUID at column 80.
    assert f"Draft {uuid}: saved after every answer.\nResume with: yntymak resume {uuid}\n" in (
        result.output
    )
    assert "Between 14 and 99" in result.output  # the constraint message, then asked again
    assert f"Finalised: submission {uuid}, revision 1." in result.output
    assert prompter.script == []
    # The cascade: only Osh's districts were offered once Osh was chosen.
    district = next(s for s in prompter.steps if s.where == "district")
    assert [c.name for c in district.choices] == ["kara_suu"]
    assert district.required and district.label == "District"

    record = Store.open().get_record(uuid)
    assert record["status"] == "final" and record["revision"] == 1
    assert record["enumerator"] == "Aida"
    assert without_today(record["answers"]) == CONTRACT_ANSWERS
    assert record["instance_name"] == f"Кара-Суу {record['answers']['today']}"
    shown = show(uuid)
    assert shown["answers"] == record["answers"]
    assert shown["status"] == "final"


def test_skip_rule_leaves_out_the_tension_questions(script):
    prompter = script(
        "osh",
        "kara_suu",
        "Ош",
        "20",
        "",
        ("felt_tension", "no"),
        ("location", ""),
        ("thanks", None),
        ("review", "finalise"),
    )
    result = collect(CONTRACT, "--lang", "en", "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    assert not {"sources", "n_incidents"} & set(prompter.asked)
    assert not any(a.startswith("incidents") for a in prompter.asked)
    answers = Store.open().get_record(draft_uuid(result.output))["answers"]
    assert without_today(answers) == {
        "oblast": "osh",
        "district": "kara_suu",
        "village": "Ош",
        "age": 20,
        "felt_tension": "no",
        "enumerator": "Aida",
        "n_sources": 0,
    }


def test_flipping_an_answer_on_review_skips_what_no_longer_applies(script):
    """Change "felt tension" from yes to no on the review screen: the repeat drops out, and
    nothing later needs an answer, so the review comes straight back."""
    script(
        *CONTRACT_SCRIPT[:-1],
        ("review", "change"),
        ("jump", ("felt_tension",)),
        ("felt_tension", "no"),
        ("review", "finalise"),
    )
    result = collect(CONTRACT, "--lang", "en", "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    assert "Nothing else needs an answer: back to the review." in result.output
    answers = Store.open().get_record(draft_uuid(result.output))["answers"]
    assert answers["felt_tension"] == "no"
    assert "incidents" not in answers and "sources" not in answers
    assert answers["location"] == "40.53 72.8"


def test_changing_an_answer_on_review_returns_to_the_review(script):
    """Nothing later depends on the village: straight back to the review, not through
    every later question and incident."""
    prompter = script(
        *CONTRACT_SCRIPT[:-1],
        ("review", "change"),
        ("jump", ("village",)),
        ("village", "Ош"),
        ("review", "finalise"),
    )
    result = collect(CONTRACT, "--lang", "en", "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    assert prompter.asked[-4:] == ["review", "jump", "village", "review"]
    answers = Store.open().get_record(draft_uuid(result.output))["answers"]
    assert without_today(answers) == {**CONTRACT_ANSWERS, "village": "Ош"}


def test_changing_an_answer_on_review_asks_what_became_relevant(script):
    """felt_tension no -> yes on the review: the questions it opens are asked, in form
    order, then the review again (location, answered before, is not asked)."""
    prompter = script(
        "osh",
        "kara_suu",
        "Ош",
        "20",
        "",
        ("felt_tension", "no"),
        ("location", "40.5 72.8"),
        ("thanks", None),
        ("review", "change"),
        ("jump", ("felt_tension",)),
        ("felt_tension", "yes"),
        ("sources", ["water"]),
        ("n_incidents", "2"),
        ("incidents[1]/incident_date", "2026-10-01"),
        ("incidents[1]/resolved", BACK),  # Ctrl-B works as ever...
        ("incidents[1]/incident_date", KEEP),  # ...and forward goes on from there
        ("incidents[1]/resolved", "no"),
        ("incidents[2]/incident_date", "2026-10-15"),
        ("incidents[2]/resolved", "yes"),
        ("review", "change"),  # more instances from the review: only the new one is asked
        ("jump", ("n_incidents",)),
        ("n_incidents", "3"),
        ("incidents[3]/incident_date", "2026-11-01"),
        ("incidents[3]/resolved", "yes"),
        ("review", "finalise"),
    )
    result = collect(CONTRACT, "--lang", "en", "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    assert prompter.script == []
    answers = Store.open().get_record(draft_uuid(result.output))["answers"]
    assert answers["felt_tension"] == "yes" and answers["sources"] == ["water"]
    assert answers["incidents"] == [
        {"incident_date": "2026-10-01", "resolved": "no"},
        {"incident_date": "2026-10-15", "resolved": "yes"},
        {"incident_date": "2026-11-01", "resolved": "yes"},
    ]
    assert answers["location"] == "40.5 72.8"


def test_changing_an_answer_on_review_asks_what_it_made_invalid(load):
    """Lowering A makes B (later) fail its constraint: B is asked, then the review; the
    questions between (C, D and the note) are passed over. Then raising A makes E, left
    blank while optional, required: E is asked."""
    session = start_session(
        load(
            """
            id: ab
            version: "1"
            questions:
              - {name: a, type: integer, label: A}
              - {name: c, type: text, label: C}
              - {name: hello, type: note, label: Hello}
              - {name: b, type: integer, label: B, constraint: ". <= ${a}",
                 constraint_message: B may not exceed A}
              - {name: d, type: text, label: D}
              - {name: e, type: text, label: E, required: "${a} > 5"}
            """
        )
    )
    prompter = ScriptedPrompter(
        [
            ("a", "5"),
            ("c", "x"),
            ("hello", None),
            ("b", "4"),
            ("d", "y"),
            ("e", ""),  # not required while A <= 5
            ("review", "change"),
            ("jump", ("a",)),
            ("a", "3"),  # B = 4 now fails
            ("b", "2"),
            ("review", "change"),
            ("jump", ("a",)),
            ("a", "9"),  # E is now required and blank
            ("e", "z"),
            ("review", "finalise"),
        ]
    )
    assert interactive.run_survey(session, "en", prompter=prompter) == 0, prompter.script
    assert Store.open().get_record(session.uuid)["answers"] == {
        "a": 9,
        "c": "x",
        "b": 2,
        "d": "y",
        "e": "z",
    }


def test_normal_flow_after_back_from_the_review_is_unchanged(load):
    """Ctrl-B on the review (not "change") goes to the last step, and forward from there is
    the ordinary walk."""
    session = start_session(load(REPEAT_FORM))
    prompter = ScriptedPrompter(
        [
            ("household", "H"),
            ("add:visit[1]", False),
            ("rating", 3),
            ("a", "5"),
            ("b", "1"),
            ("closing", None),
            ("review", BACK),
            ("closing", BACK),
            ("b", "2"),
            ("closing", None),  # not passed over: this is not fixing from the review
            ("review", "finalise"),
        ]
    )
    assert interactive.run_survey(session, "en", prompter=prompter) == 0, prompter.script
    assert Store.open().get_record(session.uuid)["answers"]["b"] == 2


def start_session(form, lang="en"):
    from yntymak_cli.collect.session import Session

    return Session.start(Store.open(), form, lang=lang, enumerator="Aida", device_id="dev")


def contract():
    from yntymak_cli.forms.loader import load_form

    return load_form(CONTRACT).require()


def test_back_at_the_first_question_stays_there(capsys):
    session = start_session(contract())
    prompter = ScriptedPrompter(
        [
            ("oblast", BACK),
            ("oblast", "naryn"),
            ("district", BACK),
            ("oblast", KEEP),
            ("district", "at_bashy"),
        ]
    )
    code = interactive.run_survey(session, "en", prompter=prompter)
    assert code == 130  # the script ran out: like a closed terminal
    out = capsys.readouterr().out
    assert "This is the first question." in out
    assert f"Resume with: yntymak resume {session.uuid}" in out
    draft = Store.open().get_draft(session.uuid)
    assert draft.state["answers"]["oblast"] == "naryn"
    assert draft.state["answers"]["district"] == "at_bashy"
    assert [b["from"] for b in draft.paradata["back_steps"]] == ["oblast", "district"]


def test_ctrl_c_keeps_the_draft_and_resume_continues_where_it_stopped(capsys):
    session = start_session(contract())
    first = ScriptedPrompter(["osh", "kara_suu", "Кара-Суу", KeyboardInterrupt])
    assert interactive.run_survey(session, "en", prompter=first) == 130
    out = capsys.readouterr().out
    # Wrapped at spaces on 80 columns (the UUID is never cut), so compare words.
    stopped = f"Stopped. Nothing is lost: the answers are saved in draft {session.uuid}."
    assert stopped in " ".join(out.split())
    saved = Store.open().get_draft(session.uuid).state["answers"]
    assert {k: saved[k] for k in ("oblast", "district", "village")} == {
        "oblast": "osh",
        "district": "kara_suu",
        "village": "Кара-Суу",
    }

    from yntymak_cli.collect.session import Session

    again = Session.resume(Store.open(), session.uuid[:8], lang="en")
    second = ScriptedPrompter([("age", "34"), *CONTRACT_SCRIPT[5:]])
    assert interactive.run_survey(again, "en", resume=True, prompter=second) == 0
    assert second.asked[0] == "age"
    assert f"Continuing draft {session.uuid}" in capsys.readouterr().out
    record = Store.open().get_record(session.uuid)
    assert without_today(record["answers"]) == CONTRACT_ANSWERS
    assert Store.open().get_draft(session.uuid, missing_ok=True) is None


REPEAT_FORM = """
id: visits
version: "1"
questions:
  - name: household
    type: text
    label: Household
    required: true
  - type: repeat
    name: visit
    label: Visit
    questions:
      - name: day
        type: date
        label: Day
      - name: ok
        type: acknowledge
        label: Door opened
  - name: rating
    type: range
    label: Rating
    parameters: {start: 1, end: 5, step: 1}
  - name: a
    type: integer
    label: A
  - name: b
    type: integer
    label: B
    constraint: . <= ${a}
    constraint_message: B may not exceed A
  - name: closing
    type: note
    label: Bye
"""


def test_repeat_without_count_asks_add_another(load, capsys):
    session = start_session(load(REPEAT_FORM))
    prompter = ScriptedPrompter(
        [
            ("household", "H1"),
            ("add:visit[1]", True),
            ("visit[1]/day", "2026-01-02"),
            ("visit[1]/ok", "OK"),
            ("add:visit[2]", BACK),  # back from "add another?" to the last question
            ("visit[1]/ok", KEEP),
            ("add:visit[2]", "yes"),
            ("visit[2]/day", "2026-01-03"),
            ("visit[2]/ok", "OK"),
            ("add:visit[3]", False),
            ("rating", 4),
            ("a", "10"),
            ("b", "5"),
            ("closing", BACK),  # back from a note
            ("b", "11"),  # B may not exceed A: asked again
            ("b", "7"),
            ("closing", None),
            # Lower A on the review screen: B's constraint now fails, so "finalise" jumps to B.
            ("review", "change"),
            ("jump", ("a",)),
            ("a", "3"),
            ("b", KEEP),  # 7 > 3: refused
            ("b", "2"),  # nothing else needs an answer: the review again (no "closing")
            ("review", BACK),  # Ctrl-B on the review: the last step again
            ("closing", None),
            ("review", "finalise"),
        ]
    )
    assert interactive.run_survey(session, "en", prompter=prompter) == 0, prompter.script
    out = capsys.readouterr().out
    assert out.count("B may not exceed A") == 2
    assert "Visit 2 › Day" in out  # the review table names the instance
    add = next(s for s in prompter.steps if s.kind == "add_repeat")
    assert add.label == "Add “Visit”?"
    assert Store.open().get_record(session.uuid)["answers"] == {
        "household": "H1",
        "visit": [{"day": "2026-01-02", "ok": "OK"}, {"day": "2026-01-03", "ok": "OK"}],
        "rating": 4,
        "a": 3,
        "b": 2,
    }


def test_review_shows_problems_and_finalise_jumps_to_the_first(load, capsys):
    form = load(REPEAT_FORM)
    session = start_session(form)
    # A state with a broken constraint (as after an edit of an older record).
    session.engine.answer(session.state, ("household",), "H")
    session.engine.decline_repeat(session.state, ("visit",))
    session.engine.answer(session.state, ("rating",), "3")
    session.engine.answer(session.state, ("a",), "1")
    session.state.answers["b"] = 9
    session.engine.refresh(session.state)
    session.save()
    prompter = ScriptedPrompter([("review", "finalise"), ("b", "1"), ("review", "finalise")])
    assert interactive.run_survey(session, "en", resume=True, prompter=prompter) == 0
    out = capsys.readouterr().out
    assert "These answers must be fixed before finalising:" in out
    assert "B: B may not exceed A" in out
    assert Store.open().get_record(session.uuid)["answers"]["b"] == 1


def test_edit_stores_a_new_revision(script):
    script(*CONTRACT_SCRIPT)
    uuid = draft_uuid(collect(CONTRACT, "--lang", "en", "--enumerator", "Aida").output)
    # The edit opens on the review: pick the answer to change, every other one is kept.
    script(
        ("review", "change"),
        ("jump", ("age",)),
        ("age", "35"),
        ("review", "finalise"),
    )
    result = runner.invoke(app, ["submissions", "edit", uuid, "--lang", "en"])
    assert result.exit_code == 0, result.output
    record = show(uuid)
    assert record["revision"] == 2
    assert without_today(record["answers"]) == {**CONTRACT_ANSWERS, "age": 35}


def test_ask_enumerator_in_three_languages_until_given(monkeypatch):
    prompter = ScriptedPrompter([("enumerator", "  "), ("enumerator", " Aida ")])
    monkeypatch.setattr(prompts, "make_prompter", lambda lang: prompter)
    assert interactive.ask_enumerator() == "Aida"
    assert prompter.errors == ["Атыңызды жазыңыз / Введите ваше имя / Please type your name"]


# -- the real questionary prompts, fed keys through a pipe --------------------------------

DOWN, SPACE, ENTER, CTRL_B, CTRL_C, BACKSPACE = "\x1b[B", " ", "\r", "\x02", "\x03", "\x7f"


@pytest.fixture
def contract_steps():
    from yntymak_cli.engine.survey import Engine

    engine = Engine(contract(), lang="ru")
    state = engine.start()
    for path, value in (
        ("oblast", "osh"),
        ("district", "kara_suu"),
        ("felt_tension", "yes"),
        ("n_incidents", "1"),
    ):
        assert engine.answer(state, (path,), value) is None
    steps = {s.where: s for s in engine.steps(state)}

    def validator(where):
        return lambda raw: engine.validate(state, steps[where].path, raw)[1]

    return steps, validator


@pytest.mark.slow
def test_real_prompts_take_keys(contract_steps, capsys):
    steps, validator = contract_steps
    p = prompts.QuestionaryPrompter("ru")
    assert press(DOWN + ENTER, lambda: p.ask(steps["oblast"])) == "naryn"
    assert press(ENTER, lambda: p.ask(steps["oblast"])) == "osh"  # the current value is default
    assert press(CTRL_B, lambda: p.ask(steps["oblast"])) is BACK
    # The "← Назад" entry below the choices: Да, Нет, (оставить пустым), ← Назад.
    assert press(DOWN * 3 + ENTER, lambda: p.ask(steps["felt_tension"])) is BACK
    assert press(DOWN * 2 + ENTER, lambda: p.ask(steps["felt_tension"])) is None
    # A refused number stays in place with the message; a fixed one is accepted.
    age = lambda: p.ask(steps["age"], validator("age"))  # noqa: E731
    assert press("5" + ENTER + BACKSPACE + "34" + ENTER, age) == "34"
    assert press(CTRL_B, age) is BACK
    sources = lambda: p.ask(steps["sources"], validator("sources"))  # noqa: E731
    assert press(SPACE + DOWN + DOWN + SPACE + ENTER, sources) == ["land", "pasture"]
    assert press("2026-10-01" + ENTER, lambda: p.ask(steps["incidents[1]/incident_date"])) == (
        "2026-10-01"
    )
    assert press(ENTER, lambda: p.ask(steps["thanks"])) is None
    with pytest.raises(KeyboardInterrupt):
        press(CTRL_C, sources)
    with pytest.raises(KeyboardInterrupt):
        press(CTRL_C, age)
    out = capsys.readouterr().out
    assert "Область  Нарынская область" in out
    assert "Причины  Земля, Пастбища" in out


def test_real_add_another_and_ranges(load):
    from yntymak_cli.engine.survey import Engine

    engine = Engine(load(REPEAT_FORM), lang="en")
    state = engine.start()
    engine.answer(state, ("household",), "H")
    add = engine.next_step(state, engine.first_step(state))
    assert add.kind == "add_repeat"
    p = prompts.QuestionaryPrompter("en")
    assert press(ENTER, lambda: p.ask(add)) is True
    assert press(DOWN + ENTER, lambda: p.ask(add)) is False
    engine.decline_repeat(state, add.path)
    rating = engine.next_step(state, engine.next_step(state, engine.first_step(state)))
    assert rating.where == "rating"
    assert press(DOWN * 3 + ENTER, lambda: p.ask(rating)) == 4  # a list of 1..5


# -- found by using the tool on the programme's forms ------------------------------------


def test_back_from_an_instance_added_by_mistake_removes_it(load):
    session = start_session(load(REPEAT_FORM))
    prompter = ScriptedPrompter(
        [
            ("household", "H1"),
            ("add:visit[1]", True),
            ("visit[1]/day", "2026-01-02"),
            ("visit[1]/ok", "OK"),
            ("add:visit[2]", True),  # a slip of the finger...
            ("visit[2]/day", BACK),  # ...undone: the empty instance goes, "add?" again
            ("add:visit[2]", False),
            ("rating", KeyboardInterrupt),
        ]
    )
    assert interactive.run_survey(session, "en", prompter=prompter) == 130
    answers = Store.open().get_draft(session.uuid).state["answers"]
    assert answers["visit"] == [{"day": "2026-01-02", "ok": "OK"}]


def test_back_from_a_started_instance_keeps_it(load):
    from yntymak_cli.engine.survey import Engine

    engine = Engine(load(REPEAT_FORM), lang="en")
    state = engine.start({"household": "H"})
    engine.add_repeat(state, ("visit",))
    first = next(s for s in engine.steps(state) if s.where == "visit[1]/day")
    engine.answer(state, ("visit", 0, "ok"), "OK")
    assert engine.back_out_of_instance(state, first) is None
    assert len(state.answers["visit"]) == 1


def test_enter_on_a_list_left_blank_keeps_it_blank(contract_steps, capsys):
    from dataclasses import replace

    steps, validator = contract_steps
    p = prompts.QuestionaryPrompter("en")
    fresh = steps["felt_tension"]
    unseen = replace(fresh, value=None, answered=False)
    assert press(ENTER, lambda: p.ask(unseen)) == "yes"  # the first choice
    skipped = replace(fresh, value=None, answered=True)
    assert press(ENTER, lambda: p.ask(skipped)) is None
    assert "(no answer)" in capsys.readouterr().out  # not "(leave blank)"


def test_a_refused_choice_is_not_echoed_as_accepted(load, capsys):
    from yntymak_cli.engine.survey import Engine

    form = load(
        """
        id: f
        version: "1"
        choices:
          yn: [{name: y, label: "Yes"}, {name: n, label: "No"}]
        questions:
          - {name: pick, type: select_one yn, label: Pick, constraint: ". = 'n'",
             constraint_message: Only no}
        """
    )
    engine = Engine(form, lang="en")
    state = engine.start()
    step = engine.first_step(state)
    p = prompts.QuestionaryPrompter("en")

    def validate(raw):
        return engine.validate(state, step.path, raw)[1]

    # Refused: "✗" and the form's message under it, then the same list again (Yes is still
    # the default, so Down picks No).
    assert press(ENTER + DOWN + ENTER, lambda: p.ask(step, validate)) == "n"
    out = capsys.readouterr().out
    assert "✗ Pick  Yes\n  Only no\n" in out and "✔ Pick  Yes" not in out
    assert "✔ Pick  No" in out


def test_edit_keeps_blank_answers_blank(script):
    from yntymak_cli.collect.session import Session

    script(*CONTRACT_SCRIPT)
    uuid = draft_uuid(collect(CONTRACT, "--lang", "en", "--enumerator", "Aida").output)
    session = Session.edit(Store.open(), uuid, lang="en", enumerator="Aida", device_id="d")
    steps = {s.where: s for s in session.engine.steps(session.state)}
    assert steps["phone"].value is None and steps["phone"].answered
    # Resuming the edit goes to the review, not to a question answered blank before.
    assert session.engine.first_unanswered(session.state).kind == "end"


def test_resume_without_lang_keeps_the_draft_language(script):
    script(("oblast", "osh"), KeyboardInterrupt)
    result = collect(CONTRACT, "--lang", "ru", "--enumerator", "Aida")
    assert result.exit_code == 130
    uuid = draft_uuid(result.output)
    script(KeyboardInterrupt)
    result = runner.invoke(app, ["resume", uuid[:8]])
    assert f"Продолжаем черновик {uuid}" in result.output


def test_edit_walked_with_enter_adds_no_instance(load):
    from yntymak_cli.collect.session import Session, submit_answers

    form = load(REPEAT_FORM)
    answers = {"household": "H", "visit": [{"day": "2026-01-02"}], "a": 1}
    uuid = submit_answers(Store.open(), form, answers, lang="en", enumerator="A", device_id="d")
    session = Session.edit(Store.open(), uuid, lang="en", enumerator="A", device_id="d")
    add = next(s for s in session.engine.steps(session.state) if s.kind == "add_repeat")
    assert add.value is False  # the prompt's default is "No", as when it was finalised


def test_edit_without_lang_uses_the_language_of_the_last_revision(script):
    result = runner.invoke(
        app,
        [
            "collect",
            str(CONTRACT),
            "--answers",
            str(DATA / "village_safety_answers.yaml"),
            "--lang",
            "ru",
            "--enumerator",
            "Aida",
        ],
    )
    uuid = result.stdout.split()[-1]
    script(KeyboardInterrupt)
    result = runner.invoke(app, ["submissions", "edit", uuid])
    assert result.exit_code == 130
    assert f"Продолжаем черновик {uuid}" in result.output or f"Черновик {uuid}" in result.output
