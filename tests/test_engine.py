"""The pure form engine, through its public API, with small inline forms."""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from pathlib import Path

import pytest

from yntymak_cli.engine.fill import fill
from yntymak_cli.engine.survey import Engine, EngineError, Step, SurveyState, format_path
from yntymak_cli.errors import ProblemsError
from yntymak_cli.forms.loader import load_form_text
from yntymak_cli.i18n import t
from yntymak_cli.yaml_io import load_yaml

DATA = Path(__file__).parent / "data"
NOW = dt.datetime(2026, 11, 5, 9, 30, 15)

YES_NO = """
choices:
  yes_no:
    - {name: "yes", label: {en: "Yes", ky: Ооба}}
    - {name: "no", label: {en: "No", ky: Жок}}
"""


def make(body: str, lang: str | None = "en", choices: str = YES_NO) -> Engine:
    text = "id: t\nversion: '1'\n" + textwrap.dedent(choices) + textwrap.dedent(body)
    form = load_form_text(text, "t.yaml").require()
    return Engine(form, lang=lang, now=lambda: NOW, username="aigul", deviceid="dev-1")


def paths(engine: Engine, st: SurveyState) -> list[tuple]:
    """Every step's path in order, walking with next_step as a UI would."""
    out = []
    step = engine.first_step(st)
    while step.kind != "end":
        out.append(step.path)
        step = engine.next_step(st, step)
    return out


def step_at(engine: Engine, st: SurveyState, path: tuple) -> Step:
    return next(s for s in engine.steps(st) if s.path == path)


# ---------------------------------------------------------------------- relevance

RELEVANCE = """
questions:
  - {name: has_kids, type: select_one yes_no, label: Kids?}
  - {name: n_kids, type: integer, label: How many?, relevant: "${has_kids} = 'yes'"}
  - name: school
    type: group
    relevant: ${n_kids} > 0
    questions:
      - {name: school_name, type: text, label: School}
  - {name: town, type: text, label: Town}
"""


def test_relevance_skips_restores_and_drops_at_finalise():
    e = make(RELEVANCE)
    st = e.start()
    assert paths(e, st) == [("has_kids",), ("town",)]
    assert e.answer(st, ("has_kids",), "yes") is None
    assert paths(e, st) == [("has_kids",), ("n_kids",), ("town",)]
    assert e.answer(st, ("n_kids",), "2") is None
    assert e.answer(st, ("school_name",), "No. 5") is None
    assert paths(e, st) == [("has_kids",), ("n_kids",), ("school_name",), ("town",)]

    e.answer(st, ("has_kids",), "no")
    first = e.first_step(st)
    assert e.next_step(st, first).path == ("town",)  # n_kids and the whole group skipped
    assert st.answers["n_kids"] == 2 and st.answers["school_name"] == "No. 5"  # kept in draft
    record = e.finalise(st)
    assert "n_kids" not in record and "school_name" not in record
    assert record["has_kids"] == "no"

    e.answer(st, ("has_kids",), "yes")  # flipping back restores the answers
    assert step_at(e, st, ("n_kids",)).value == 2
    assert e.finalise(st)["school_name"] == "No. 5"


def test_group_relevance_is_inherited_even_when_child_has_own_condition():
    e = make(
        """
        questions:
          - {name: a, type: integer, label: A}
          - name: g
            type: group
            relevant: ${a} > 1
            questions:
              - {name: b, type: text, label: B, relevant: "${a} < 10"}
        """
    )
    st = e.start()
    e.answer(st, ("a",), 1)
    assert ("b",) not in paths(e, st)  # own condition true, group false
    e.answer(st, ("a",), 5)
    assert ("b",) in paths(e, st)


# ---------------------------------------------------------------------- constraints, required

CONSTRAINED = """
languages: [ky, en]
default_language: ky
questions:
  - name: age
    type: integer
    label: {ky: Жашы, en: Age}
    constraint: . >= 14 and . <= 99
    constraint_message: {ky: 14 жаштан 99 жашка чейин, en: Between 14 and 99}
  - {name: score, type: integer, label: {ky: Упай, en: Score}, constraint: . < 10}
  - name: nick
    type: text
    label: {ky: Ат, en: Nick}
    constraint: string-length(${nick}) > 2
    constraint_message: {ky: Өтө кыска}
"""


def test_constraint_messages_in_ky_and_en():
    en, ky = make(CONSTRAINED, lang="en"), make(CONSTRAINED, lang="ky")
    for engine, message in ((en, "Between 14 and 99"), (ky, "14 жаштан 99 жашка чейин")):
        st = engine.start()
        assert engine.answer(st, ("age",), "7") == message
        assert "age" not in st.answers  # a refused answer is not stored
        assert engine.answer(st, ("age",), "34") is None
        assert st.answers["age"] == 34
        assert engine.answer(st, ("age",), "") is None  # constraints only check answers
    # No constraint_message: the catalog's message in the engine's language.
    assert ky.validate(ky.start(), ("score",), "12") == (12, t("constraint_failed", "ky"))
    assert en.validate(en.start(), ("score",), "12") == (12, "The answer is not allowed.")
    # Missing translation falls back to the form's default language; ${self} is the candidate.
    assert en.validate(en.start(), ("nick",), "ab") == ("ab", "Өтө кыска")
    assert en.validate(en.start(), ("nick",), "abc") == ("abc", None)


def test_type_errors_are_reported_in_the_engine_language():
    ky = make(CONSTRAINED, lang="ky")
    assert ky.answer(ky.start(), ("age",), "отуз") == t("invalid_integer", "ky")


def test_required_bool_and_expression():
    e = make(
        """
        questions:
          - {name: consent, type: select_one yes_no, label: Consent, required: true}
          - name: reason
            type: text
            label: Why not?
            required: ${consent} = 'no'
            required_message: Please say why
          - {name: note, type: text, label: Note}
        """
    )
    st = e.start()
    assert e.answer(st, ("consent",), "") == "This question requires an answer."
    assert e.first_step(st).required
    e.answer(st, ("consent",), "yes")
    assert e.answer(st, ("reason",), "") is None
    assert not step_at(e, st, ("reason",)).required
    e.answer(st, ("consent",), "no")
    assert step_at(e, st, ("reason",)).required
    assert e.problems(st) == [(("reason",), "Please say why")]
    with pytest.raises(ProblemsError, match="reason: Please say why"):
        e.finalise(st)
    assert e.answer(st, ("reason",), "") == "Please say why"
    assert e.answer(st, ("reason",), "busy") is None
    assert e.problems(st) == []


# ---------------------------------------------------------------------- calculations


def test_calculation_chain_recalculates_after_change():
    e = make(
        """
        questions:
          - {name: price, type: decimal, label: Price}
          - {name: qty, type: integer, label: Qty}
          - {name: total, type: calculate, calculation: "${price} * ${qty}"}
          - {name: taxed, type: calculate, calculation: "${total} * 1.5"}
          - {name: big, type: calculate, calculation: "${taxed} > 100"}
          - {name: day, type: calculate, calculation: "date('2026-01-31')"}
          - {name: hidden, type: calculate, calculation: "1", relevant: "${qty} > 5"}
        """
    )
    st = e.start()
    assert "total" not in st.answers  # NaN (empty inputs) is stored as empty
    assert st.answers["day"] == "2026-01-31"
    e.answer(st, ("price",), "2,5")
    e.answer(st, ("qty",), "4")
    assert st.answers["total"] == 10 and isinstance(st.answers["total"], int)
    assert st.answers["taxed"] == 15 and st.answers["big"] == "false"
    assert "hidden" not in st.answers
    e.answer(st, ("qty",), "100")
    assert st.answers["total"] == 250 and st.answers["taxed"] == 375
    assert st.answers["big"] == "true" and st.answers["hidden"] == 1
    e.answer(st, ("price",), "0.3")
    assert st.answers["taxed"] == pytest.approx(45.0)
    e.answer(st, ("qty",), "3")
    assert "hidden" not in st.answers  # a non-relevant calculate is empty
    assert e.finalise(st)["total"] == pytest.approx(0.9)


HOUSEHOLD = """
questions:
  - type: repeat
    name: members
    label: Member
    questions:
      - {name: m_name, type: text, label: "Name"}
      - {name: m_age, type: integer, label: "Age of ${m_name}"}
      - {name: adult, type: calculate, calculation: "if(${m_age} >= 18, 'adult', 'child')"}
      - {name: num, type: calculate, calculation: "position(..)"}
  - {name: n_members, type: calculate, calculation: "count(${members})"}
  - {name: total_age, type: calculate, calculation: "sum(${m_age})"}
  - {name: oldest, type: calculate, calculation: "max(${m_age})"}
"""


def test_calculations_in_repeats_and_over_them():
    e = make(HOUSEHOLD)
    st = e.start()
    assert st.answers["n_members"] == 0 and st.answers["total_age"] == 0
    for name, age in (("Aibek", "40"), ("Nurai", "9")):
        step = e.first_unanswered(st)
        assert step.kind == "add_repeat"
        base = e.add_repeat(st, step.path)
        e.answer(st, (*base, "m_name"), name)
        assert step_at(e, st, (*base, "m_age")).label == f"Age of {name}"
        e.answer(st, (*base, "m_age"), age)
    members = st.answers["members"]
    assert [m["adult"] for m in members] == ["adult", "child"]
    assert [m["num"] for m in members] == [1, 2]
    assert st.answers["n_members"] == 2 and st.answers["total_age"] == 49
    assert st.answers["oldest"] == 40
    e.answer(st, ("members", 1, "m_age"), "19")
    assert members[1]["adult"] == "adult" and st.answers["total_age"] == 59
    e.remove_repeat(st, ("members", 0))
    assert st.answers["n_members"] == 1 and st.answers["members"][0]["num"] == 1
    assert st.answers["total_age"] == 19


# ---------------------------------------------------------------------- choice filters

CASCADE = """
choices:
  oblast:
    - {name: osh, label: Osh}
    - {name: naryn, label: Naryn}
  district:
    - {name: kara_suu, oblast: osh, label: Kara-Suu}
    - {name: uzgen, oblast: osh, label: Uzgen}
    - {name: at_bashy, oblast: naryn, label: At-Bashy}
questions:
  - {name: oblast, type: select_one oblast, label: Oblast}
  - name: district
    type: select_one district
    label: District
    choice_filter: oblast = ${oblast}
  - name: districts
    type: select_multiple district
    label: Districts
    choice_filter: oblast = ${oblast} or name = 'at_bashy'
"""


def test_cascading_choice_filter():
    e = make(CASCADE, choices="")
    st = e.start()
    assert step_at(e, st, ("district",)).choices == ()  # nothing chosen yet: nothing offered
    e.answer(st, ("oblast",), "osh")
    step = e.next_step(st, e.first_step(st))
    assert [c.name for c in step.choices] == ["kara_suu", "uzgen"]
    assert e.answer(st, ("district",), "at_bashy") == (
        "'at_bashy' is not allowed here given the earlier answers; choose one of: kara_suu, uzgen"
    )
    assert e.answer(st, ("district",), "uzgen") is None
    assert e.answer(st, ("districts",), "uzgen at_bashy") is None
    assert e.answer(st, ("districts",), ["kara_suu", "nope"]).startswith("'nope' is not one")
    e.answer(st, ("oblast",), "naryn")  # the earlier choice no longer fits
    assert e.problems(st) == [
        (
            ("district",),
            "'uzgen' is not allowed here given the earlier answers; choose one of: at_bashy",
        ),
        (
            ("districts",),
            "'uzgen' is not allowed here given the earlier answers; choose one of: at_bashy",
        ),
    ]


# ---------------------------------------------------------------------- repeats

COUNTED = """
questions:
  - {name: n, type: text, label: How many?}
  - type: repeat
    name: visits
    label: Visit
    repeat_count: ${n}
    questions:
      - {name: place, type: text, label: Place, required: true}
  - {name: after, type: text, label: After}
"""


def test_repeat_count_follows_the_answer_and_keeps_extra_instances_in_the_draft():
    e = make(COUNTED)
    st = e.start()
    e.answer(st, ("n",), "3")
    assert paths(e, st) == [
        ("n",), ("visits", 0, "place"), ("visits", 1, "place"), ("visits", 2, "place"), ("after",)
    ]  # fmt: skip
    assert step_at(e, st, ("visits", 1, "place")).repeat_index == 2
    for k, place in enumerate(("Osh", "Naryn", "Talas")):
        e.answer(st, ("visits", k, "place"), place)
    after = step_at(e, st, ("after",))
    assert e.previous_step(st, after).path == ("visits", 2, "place")  # no prompt: counted
    assert e.previous_step(st, step_at(e, st, ("visits", 0, "place"))).path == ("n",)
    e.answer(st, ("n",), "1")
    assert paths(e, st) == [("n",), ("visits", 0, "place"), ("after",)]
    assert e.previous_step(st, after).path == ("visits", 0, "place")
    assert [v["place"] for v in st.answers["visits"]] == ["Osh", "Naryn", "Talas"]
    assert e.finalise(st)["visits"] == [{"place": "Osh"}]
    e.answer(st, ("n",), "3")
    assert [v["place"] for v in e.finalise(st)["visits"]] == ["Osh", "Naryn", "Talas"]


@pytest.mark.parametrize("count", ["", "-2", "many", "0"])
def test_empty_negative_or_non_numeric_repeat_count_means_no_instances(count):
    e = make(COUNTED)
    st = e.start()
    e.answer(st, ("n",), count)
    assert paths(e, st) == [("n",), ("after",)]
    assert e.problems(st) == []  # the required question inside has no instance to ask
    assert "visits" not in e.finalise(st)


ASK = """
questions:
  - {name: hh, type: text, label: Household}
  - type: repeat
    name: child
    label: {en: Child, ky: Бала}
    questions:
      - {name: c_name, type: text, label: Name}
      - {name: c_age, type: integer, label: Age, default: "5"}
  - {name: done, type: text, label: Done}
"""


def test_ask_to_add_two_then_decline_and_navigate_back():
    e = make(ASK)
    st = e.start()
    step = e.next_step(st, e.first_step(st))
    assert (step.kind, step.path, step.repeat_index) == ("add_repeat", ("child", 0), 1)
    assert step.label == "Add “Child”?" and step.value is None
    assert e.add_repeat(st, step.path) == ("child", 0)
    step = e.next_step(st, step)
    assert step.path == ("child", 0, "c_name") and step.repeat_label == "Child"
    e.answer(st, step.path, "Bakyt")
    step = e.next_step(st, e.next_step(st, step))
    assert (step.kind, step.path, step.label) == (
        "add_repeat",
        ("child", 1),
        "Add another “Child”?",
    )
    e.add_repeat(st, step.path)
    step = e.next_step(st, step)
    assert step.path == ("child", 1, "c_name") and step.repeat_index == 2
    e.answer(st, step.path, "Saltanat")
    add = e.next_step(st, e.next_step(st, step))
    assert add.path == ("child", 2)
    e.decline_repeat(st, add.path)
    after = e.next_step(st, add)
    assert after.path == ("done",)
    assert st.declined_repeats == [("child",)]
    # Back from the question after the repeat: the prompt (answered no), then the last
    # question of the last instance, then across the instance boundary.
    back = e.previous_step(st, after)
    assert (back.kind, back.value) == ("add_repeat", False)
    back = e.previous_step(st, back)
    assert back.path == ("child", 1, "c_age") and back.value == 5  # default applied on add
    back = e.previous_step(st, e.previous_step(st, back))
    assert back.path == ("child", 0, "c_age")
    assert e.previous_step(st, e.first_step(st)) is None
    assert e.previous_step(st, e.next_step(st, after)).path == ("done",)  # back from "end"
    assert [c["c_name"] for c in e.finalise(st)["child"]] == ["Bakyt", "Saltanat"]
    assert e.first_unanswered(st).path == ("hh",)
    # Saying yes after all re-opens the repeat.
    assert e.add_repeat(st, add.path) == ("child", 2)
    assert st.declined_repeats == []


def test_counted_repeats_refuse_manual_instances():
    e = make(COUNTED)
    with pytest.raises(EngineError):
        e.add_repeat(e.start(), ("visits",))


NESTED = """
questions:
  - type: repeat
    name: plots
    label: Plot
    questions:
      - {name: crop, type: select_one yes_no, label: Irrigated?}
      - name: irrigation
        type: group
        label: Irrigation
        relevant: ${crop} = 'yes'
        questions:
          - {name: source, type: text, label: Source}
          - {name: hours, type: integer, label: Hours}
      - {name: n_workers, type: integer, label: Workers}
      - type: repeat
        name: workers
        label: Worker
        repeat_count: ${n_workers}
        questions:
          - {name: w_name, type: text, label: "Worker of plot ${crop}"}
          - {name: w_days, type: integer, label: Days}
      - {name: plot_days, type: calculate, calculation: "sum(${w_days})"}
  - {name: all_days, type: calculate, calculation: "sum(${w_days})"}
  - {name: irrigated, type: calculate, calculation: "count-non-empty(${source})"}
"""


def test_nested_group_and_nested_repeat_inside_a_repeat():
    e = make(NESTED)
    st = e.start()
    for k, (crop, workers) in enumerate((("yes", [3, 4]), ("no", [10]))):
        e.add_repeat(st, ("plots",))
        e.answer(st, ("plots", k, "crop"), crop)
        e.answer(st, ("plots", k, "n_workers"), str(len(workers)))
        for j, days in enumerate(workers):
            e.answer(st, ("plots", k, "workers", j, "w_days"), str(days))
    order = paths(e, st)
    assert ("plots", 0, "source") in order and ("plots", 1, "source") not in order
    assert order.index(("plots", 0, "workers", 1, "w_days")) < order.index(("plots", 1, "crop"))
    assert step_at(e, st, ("plots", 1, "workers", 0, "w_name")).repeat_index == 1
    assert [p["plot_days"] for p in st.answers["plots"]] == [7, 10]
    assert st.answers["all_days"] == 17 and st.answers["irrigated"] == 0
    e.answer(st, ("plots", 0, "source"), "canal")
    e.answer(st, ("plots", 1, "source"), "well")  # stored, but its group is not relevant
    assert st.answers["irrigated"] == 1  # expressions see non-relevant answers as empty
    assert e.finalise(st)["plots"][1] == {
        "crop": "no", "n_workers": 1, "workers": [{"w_days": 10}], "plot_days": 10,
    }  # fmt: skip
    # Back from the first question of plot 2 lands in plot 1's nested repeat.
    first_of_second = step_at(e, st, ("plots", 1, "crop"))
    assert e.previous_step(st, first_of_second).path == ("plots", 0, "workers", 1, "w_days")
    assert e.next_step(st, step_at(e, st, ("plots", 0, "workers", 1, "w_days"))).path == (
        "plots", 1, "crop"
    )  # fmt: skip


# ---------------------------------------------------------------------- resume, state, metadata

META = """
questions:
  - {name: started, type: start}
  - {name: ended, type: end}
  - {name: day, type: today}
  - {name: dev, type: deviceid}
  - {name: who, type: username}
  - {name: village, type: text, label: Village}
  - {name: size, type: integer, label: Size, default: "12"}
  - {name: ok, type: acknowledge, label: I agree}
  - {name: shown, type: text, label: Shown, read_only: true, default: fixed}
  - {name: photo, type: unsupported, label: Photo, xlsform: {type: image}}
  - {name: bye, type: note, label: "Thanks, ${village}!"}
"""


def test_metadata_defaults_read_only_and_unsupported():
    e = make(META)
    st = e.start()
    # start/end carry the laptop's UTC offset (NOW is naive: the machine's local time).
    stamp = NOW.astimezone().isoformat(timespec="seconds")
    assert stamp.startswith("2026-11-05T09:30:15") and stamp[19] in "+-"
    assert st.answers == {
        "started": stamp,
        "day": "2026-11-05",
        "dev": "dev-1",
        "who": "aigul",
        "size": 12,
        "shown": "fixed",
    }
    steps = list(e.steps(st))
    assert [s.kind for s in steps] == ["question", "question", "question", "note", "unsupported",
                                       "note"]  # fmt: skip
    assert steps[1].value == 12 and steps[3].value == "fixed"
    assert "image" in steps[4].hint and "terminal" in steps[4].hint
    e.answer(st, ("village",), "Ak-Talaa")
    assert e.next_step(st, steps[4]).label == "Thanks, Ak-Talaa!"
    assert e.answer(st, ("ok",), "ok") is None
    with pytest.raises(EngineError):
        e.answer(st, ("shown",), "changed")
    record = e.finalise(st)
    assert record["ended"] == stamp and st.answers["ended"] == record["ended"]
    assert record["ok"] == "OK" and record["size"] == 12
    assert e.review(st)[:3] == [
        (("village",), "Village", "Ak-Talaa"),
        (("size",), "Size", "12"),
        (("ok",), "I agree", "OK"),
    ]


def test_first_unanswered_resumes_after_a_json_round_trip():
    e = make(META + "  - {name: last, type: text, label: Last}\n")
    st = e.start()
    assert e.first_unanswered(st).path == ("village",)
    e.answer(st, ("village",), "Ak-Talaa")
    # The default of `size` was never confirmed: resume stops there.
    assert e.first_unanswered(st).path == ("size",)
    e.answer(st, ("size",), "12")
    e.answer(st, ("ok",), "OK")
    saved = json.loads(json.dumps(st.to_json()))
    loaded = SurveyState.from_json(saved)
    assert loaded == st and loaded.answers is not st.answers
    fresh = make(META + "  - {name: last, type: text, label: Last}\n")
    assert fresh.first_unanswered(loaded).path == ("last",)
    fresh.answer(loaded, ("last",), "")  # skipped on purpose: seen, not unanswered
    assert fresh.first_unanswered(loaded).kind == "end"


def test_state_round_trip_keeps_repeat_navigation():
    e = make(ASK)
    st = e.start()
    e.add_repeat(st, ("child",))
    e.answer(st, ("child", 0, "c_name"), "Bakyt")
    e.decline_repeat(st, ("child", 1))
    loaded = SurveyState.from_json(json.loads(json.dumps(st.to_json())))
    assert loaded.declined_repeats == [("child",)]
    assert list(e.steps(loaded)) == list(e.steps(st))
    assert e.first_unanswered(loaded).path == ("hh",)
    e.answer(loaded, ("hh",), "12")
    assert e.first_unanswered(loaded).path == ("child", 0, "c_age")  # default unconfirmed
    with pytest.raises(Exception, match="format"):
        SurveyState.from_json({"format": 99, "answers": {}})


def test_bad_paths_raise_engine_errors():
    e = make(ASK)
    st = e.start()
    for bad in [("nope",), ("c_name",), ("child", "x", "c_name"), ("child", 0)]:
        with pytest.raises(EngineError):
            e.answer(st, bad, "x")
    with pytest.raises(EngineError, match="no such repeat instance"):
        e.answer(st, ("child", 3, "c_name"), "x")


# ---------------------------------------------------------------------- fill()


@pytest.fixture(scope="module")
def contract() -> tuple[Engine, dict]:
    text = (DATA / "village_safety.yaml").read_text("utf-8")
    form = load_form_text(text, "village_safety.yaml").require()
    answers, _ = load_yaml((DATA / "village_safety_answers.yaml").read_text("utf-8"))
    return Engine(form, lang="en", now=lambda: NOW, username="aigul"), answers


def test_contract_answers_fill_without_problems(contract):
    engine, answers = contract
    record, problems = fill(engine, answers)
    assert problems == []
    assert record["age"] == 34 and record["n_incidents"] == 2 and record["n_sources"] == 2
    assert record["felt_tension"] == "yes" and record["sources"] == ["land", "water"]
    assert record["incidents"][1] == {"incident_date": "2026-10-15", "resolved": "yes"}
    assert record["today"] == "2026-11-05" and record["enumerator"] == "aigul"
    assert list(record)[:3] == ["today", "enumerator", "oblast"]  # form order


def test_fill_reports_every_problem_kind(contract):
    engine, good = contract
    bad = json.loads(json.dumps(good))
    bad.pop("village")  # required
    bad["vilage"] = "Kara-Suu"  # misspelt
    bad["age"] = "10"  # constraint
    bad["location"] = "north"  # type
    bad["district"] = "at_bashy"  # outside the choice_filter
    bad["n_sources"] = 3  # calculated
    bad["thanks"] = "ok"  # note
    bad["today"] = "2026-01-01"  # metadata
    bad["respondent"] = {"age": 3}  # a group
    bad["resolved"] = "yes"  # belongs inside the repeat
    bad["incidents"].append({"resolved": "maybe", "village": "x"})
    _, problems = fill(engine, bad)
    assert problems == [
        # Structural problems first, in the order of the answers file...
        "incidents[3]/resolved: 'maybe' is not one of the choices: yes, no",
        "incidents[3]: question 'village' is not part of repeat 'incidents'",
        "location: must be 'latitude longitude [altitude [accuracy]]', e.g. 42.87 74.59",
        "vilage: unknown question 'vilage' (did you mean 'village'?)",
        "n_sources: is calculated by the form and cannot be given",
        "thanks: is a note and takes no answer",
        "today: is filled in automatically (today) and cannot be given",
        "respondent: is a group: write its questions directly, without the group",
        "question 'resolved' belongs inside repeat 'incidents': give it in each instance",
        # ...then what the form's logic says, in form order.
        "district: 'at_bashy' is not allowed here given the earlier answers;"
        " choose one of: kara_suu",
        "village: This question requires an answer.",
        "age: Between 14 and 99",
        "incidents: 3 instances given but repeat_count is 2",
    ]


def test_fill_reports_answers_that_are_not_relevant_and_bad_repeat_shapes(contract):
    engine, good = contract
    bad = json.loads(json.dumps(good))
    bad["felt_tension"] = "no"
    record, problems = fill(engine, bad)
    assert record is None
    why = "not relevant here (condition ${felt_tension} = 'yes' is false): remove this answer"
    assert problems == [
        f"sources: {why}",
        f"n_incidents: {why}",
        "incidents: 2 instances given but repeat_count is 0",  # n_incidents counts as empty
    ]
    shaped = json.loads(json.dumps(good))
    shaped["incidents"] = {"incident_date": "2026-10-01"}
    assert fill(engine, shaped)[1] == ["incidents: must be a list of mappings, one per instance"]
    shaped["incidents"] = [{"incident_date": "2026-10-01"}, "no"]
    assert fill(engine, shaped)[1] == [
        "incidents[2]: must be a mapping of question names to answers"
    ]


def test_fill_checks_nested_paths_and_short_repeats():
    e = make(NESTED)
    _, problems = fill(
        e,
        {
            "plots": [
                {"crop": "yes", "n_workers": "2", "workers": [{"w_days": "3"}]},
                {"crop": "no", "source": "well", "workers": [{"w_days": "x"}], "n_workers": 1},
            ],
            "all_days": 5,
        },
    )
    assert problems == [
        "plots[2]/workers[1]/w_days: must be a whole number",
        "all_days: is calculated by the form and cannot be given",
        "plots[1]/workers: 1 instance given but repeat_count is 2",
        "plots[2]/source: not relevant here (condition ${crop} = 'yes' is false): "
        "remove this answer",
    ]
    record, problems = fill(e, {"plots": [{"crop": "no", "n_workers": "0"}]})
    assert problems == [] and record["plots"] == [{"crop": "no", "n_workers": 0, "plot_days": 0}]
    assert fill(e, ["not", "a", "mapping"]) == (
        None, ["answers must be a mapping of question names to answers"]
    )  # fmt: skip


def test_format_path_is_one_based():
    assert format_path(("incidents", 1, "resolved")) == "incidents[2]/resolved"
    assert format_path(("plots", 0, "workers", 2, "w_days")) == "plots[1]/workers[3]/w_days"
    assert format_path(("age",)) == "age"


def test_expression_failures_do_not_stop_the_survey():
    e = make(
        """
        questions:
          - {name: when, type: text, label: When}
          - {name: day, type: calculate, calculation: "date(${when})"}
          - {name: later, type: text, label: Later, relevant: "format-date(${when}, '%Y') = '2026'"}
        """
    )
    st = e.start()
    assert e.answer(st, ("when",), "2026-03-01") is None
    assert st.answers["day"] == "2026-03-01" and ("later",) in paths(e, st)
    assert e.answer(st, ("when",), "soon") is None
    assert "day" not in st.answers and ("later",) not in paths(e, st)
    assert any("cannot convert 'soon'" in m for m in e.expression_errors)


def test_copied_state_is_independent_and_recomputed():
    import copy

    e = make(HOUSEHOLD)
    st = e.start()
    e.add_repeat(st, ("members",))
    e.answer(st, ("members", 0, "m_age"), "30")
    twin = copy.deepcopy(st)
    e.answer(twin, ("members", 0, "m_age"), "50")
    assert st.answers["total_age"] == 30 and twin.answers["total_age"] == 50


def test_instance_name_of_the_contract_record(contract):
    engine, answers = contract
    record, _ = fill(engine, answers)
    assert engine.instance_name(engine.start(record)) == "Кара-Суу 2026-11-05"


MIXED = """
questions:
  - {name: a, type: integer, label: A}
  - {name: b, type: select_one yes_no, label: B, relevant: "${a} > 3"}
  - {name: c, type: calculate, calculation: "${a} * 2 + count(${kid})"}
  - {name: n, type: integer, label: N, relevant: "${c} < 30"}
  - type: repeat
    name: rows
    label: Row
    repeat_count: ${n}
    questions:
      - {name: x, type: integer, label: X}
      - {name: y, type: calculate, calculation: "${x} + ${c}", relevant: "${b} = 'yes'"}
      - type: repeat
        name: kid
        label: Kid
        questions:
          - {name: k, type: integer, label: K, relevant: "${x} != 2"}
  - {name: total, type: calculate, calculation: "sum(${y}) + sum(${k})"}
  - {name: z, type: text, label: Z, relevant: "${total} > 10 or ${b} = 'no'"}
"""


@pytest.mark.parametrize("seed", range(4))
def test_incremental_work_matches_a_full_recompute(seed):
    """Random edits anywhere: next/previous agree with the full step list, and the
    incrementally recalculated answers equal those of recomputing everything."""
    import copy
    import random

    rng = random.Random(seed)
    e = make(MIXED)
    st = e.start()
    for _ in range(60):
        steps = list(e.steps(st))
        s = rng.choice(steps)
        if s.kind == "question":
            raw = rng.choice(["yes", "no"]) if s.choices else str(rng.randint(0, 6))
            assert e.answer(st, s.path, raw) is None
        elif s.kind == "add_repeat":
            if rng.random() < 0.7:
                e.add_repeat(st, s.path)
            else:
                e.decline_repeat(st, s.path)
        order = [x.path for x in e.steps(st)]
        if s.path in order:
            i = order.index(s.path)
            assert e.next_step(st, s).path == (order[i + 1] if i + 1 < len(order) else ())
            back = e.previous_step(st, s)
            assert (back and back.path) == (order[i - 1] if i else None)
        twin = copy.deepcopy(st)
        e.refresh(twin)
        assert twin.answers == st.answers


def test_review_problems_name_a_filtered_out_choice_by_its_label():
    from yntymak_cli.forms.loader import load_form

    from .conftest import DATA

    form = load_form(DATA / "village_safety.yaml").require()
    e = Engine(form, lang="ky")
    st = e.start()
    for name, value in (("oblast", "osh"), ("district", "kara_suu"), ("oblast", "naryn")):
        assert e.answer(st, (name,), value) is None
    problems = dict(e.problems(st, names=False))  # for the review screen
    assert problems[("district",)].startswith("«Кара-Суу району»")  # not the name kara_suu
    assert "kara_suu" in dict(e.problems(st))[("district",)]  # for answers files


def test_now_carries_the_offset_and_an_unanswered_number_names_nothing():
    engine = make(
        """
        instance_name: "${n} + 1"
        questions:
          - {name: n, type: integer, label: N}
          - {name: t, type: calculate, calculation: "now()"}
        """
    )
    st = engine.start()
    stamp = st.answers["t"]
    assert re.fullmatch(r"2026-11-05T09:30:15[+-]\d\d:\d\d", stamp), stamp
    assert engine.instance_name(st) is None  # NaN, not the text "NaN"
