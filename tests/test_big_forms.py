"""Forms with very long choice lists (a country's villages): behaviour at scale, not speed.

Speed is measured by benchmarks/bigform_bench.py. Here: the work per answer does not grow
with the list (counted operations), a 20,000-choice form validates and collects the right
values through the CLI, long lists are asked as type-to-search prompts, and the libyaml
fast path reads every file exactly as ruamel.yaml does.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yntymak_cli.cli import app
from yntymak_cli.collect import prompts
from yntymak_cli.collect.prompts import BACK
from yntymak_cli.engine.survey import Engine
from yntymak_cli.forms import expressions as ex
from yntymak_cli.forms.loader import load_form_text
from yntymak_cli.forms.model import Form
from yntymak_cli.forms.values import parse_value

from .conftest import DATA, FORMS, SHARED
from .helpers import press, runner

REGIONS = 10


def big_form_text(n: int, extra_choice: str = "") -> str:
    """A form over one list of n places, each in one of REGIONS regions."""
    lines = [
        "id: big",
        'version: "1"',
        "choices:",
        "  regions:",
        *(f"    - {{name: r{r}, label: Region {r}}}" for r in range(REGIONS)),
        "  places:",
        *(f"    - {{name: p{i}, label: Place {i}, region: r{i % REGIONS}}}" for i in range(n)),
        *([f"    - {extra_choice}"] if extra_choice else []),
        "questions:",
        "  - {name: place, type: select_one places, label: Place}",
        "  - {name: region, type: select_one regions, label: Region}",
        "  - {name: village, type: select_one places, label: Village,",
        "     choice_filter: 'region = ${region}'}",
        "  - {name: visited, type: select_multiple places, label: Visited}",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def big_form() -> Form:
    return load_form_text(big_form_text(5000)).require()


# -- through the CLI -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_20000_choice_form_validates_and_collects(tmp_path):
    n = 20000
    form = tmp_path / "big.yaml"
    form.write_text(big_form_text(n), encoding="utf-8")
    result = runner.invoke(app, ["forms", "validate", str(form)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("big.yaml: ok")

    answers = tmp_path / "answers.yaml"
    answers.write_text(
        "place: p19999\nregion: r9\nvillage: p19999\nvisited: p19999 p10000 p0\n", "utf-8"
    )
    result = runner.invoke(app, ["collect", str(form), "--answers", str(answers)])
    assert result.exit_code == 0, result.output
    uuid = result.stdout.strip().splitlines()[-1]
    shown = runner.invoke(app, ["submissions", "show", uuid, "--json"])
    stored = json.loads(shown.stdout)["answers"]
    assert stored["place"] == stored["village"] == "p19999"
    assert stored["region"] == "r9"
    assert stored["visited"] == ["p19999", "p10000", "p0"]

    # A village of another region is refused; an unknown one names a few choices, not all.
    answers.write_text("region: r9\nvillage: p10000\nplace: nowhere\n", "utf-8")
    result = runner.invoke(app, ["collect", str(form), "--answers", str(answers)])
    assert result.exit_code == 2
    assert "village: 'p10000' is not allowed here given the earlier answers" in result.output
    assert "place: 'nowhere' is not one of the choices: p0, p1, p2," in result.output
    assert "p19, … (+19980)" in result.output
    assert "p20," not in result.output


@pytest.mark.slow
def test_a_problem_in_a_big_list_is_located(tmp_path):
    form = tmp_path / "big.yaml"
    form.write_text(big_form_text(20000, extra_choice="{name: p7, label: Again}"), "utf-8")
    line = 4 + REGIONS + 1 + 20000 + 1  # 4 lines, the regions, places:, the places, then it
    result = runner.invoke(app, ["forms", "validate", str(form)])
    assert result.exit_code == 2
    assert f"big.yaml:{line}:14: choice list 'places': duplicate choice 'p7'" in result.output


# -- the engine: work per answer does not grow with the list ------------------------------


def count_calls(monkeypatch, owner, name):
    calls = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_checking_a_select_answer_looks_the_choice_up(monkeypatch, big_form):
    scans = count_calls(monkeypatch, Form, "choice_list")
    place = big_form.index["place"]
    visited = big_form.index["visited"]
    for i in range(200):
        assert parse_value(big_form, place, f"p{i}") == f"p{i}"
        assert parse_value(big_form, visited, f"p{i} p{i + 1}") == [f"p{i}", f"p{i + 1}"]
    assert len(scans) <= 1  # the list is indexed once, not scanned per answer (was 400)


def test_a_cascade_is_a_lookup_and_its_answer_one_evaluation(monkeypatch, big_form):
    engine = Engine(big_form, lang="en")
    state = engine.start()
    assert engine.answer(state, ("region",), "r3") is None
    evaluations = count_calls(monkeypatch, ex, "evaluate")
    village = next(s for s in engine.steps(state) if s.where == "village")
    assert [c.name for c in village.choices[:3]] == ["p3", "p13", "p23"]
    assert len(village.choices) == 500
    assert engine.answer(state, ("village",), "p4993") is None
    assert engine.answer(state, ("village",), "p4994") is not None  # region r4
    assert engine.problems(state) == []
    assert len(evaluations) <= 5  # was one per choice, at every step and answer (~15,000)


@pytest.mark.parametrize(
    "choice_filter",
    [
        "region = ${region}",
        "${region} = region",
        "name = ${region}",
        "region = ${size}",  # a number: compared as numbers, row by row
        "region = ${region} or name = 'p1'",
        "label = ${region}",
    ],
)
def test_cascade_lookup_offers_what_evaluating_each_row_offers(monkeypatch, choice_filter):
    form = load_form_text(
        f"""
id: f
version: "1"
choices:
  places:
    - {{name: p1, label: P1, region: r1}}
    - {{name: p2, label: r1, region: r2}}
    - {{name: r1, label: P3}}
    - {{name: p4, label: P4, region: "1"}}
    - {{name: p5, label: P5, region: "01"}}
questions:
  - {{name: region, type: text, label: Region}}
  - {{name: size, type: integer, label: Size}}
  - {{name: village, type: select_one places, label: Village, choice_filter: "{choice_filter}"}}
"""
    ).require()
    for answers in ({"region": "r1", "size": 1}, {"region": "", "size": None}, {}):
        engine = Engine(form, lang="en")
        state = engine.start({k: v for k, v in answers.items() if v is not None})
        q = form.index["village"]
        looked_up = engine._choices(state, q, ())
        monkeypatch.setattr(Engine, "_cascade", lambda *args: None)
        evaluated = engine._choices(state, q, ())
        monkeypatch.undo()
        assert [c.name for c in looked_up] == [c.name for c in evaluated], answers


# -- the interactive prompt for a long list -------------------------------------------------

ENTER, DOWN, CTRL_B, BACKSPACE = "\r", "\x1b[B", "\x02", "\x7f"


@pytest.fixture
def long_list():
    choices = [f"    - {{name: c{i}, label: Village {i}}}" for i in range(300)]
    text = "\n".join(
        [
            "id: f",
            'version: "1"',
            "choices:",
            "  big:",
            *choices,
            "  small: [{name: a, label: A}]",
            "questions:",
            "  - {name: one, type: select_one big, label: Village, required: true}",
            "  - {name: many, type: select_multiple big, label: Villages}",
            "  - {name: short, type: select_one small, label: Short}",
        ]
    )
    form = load_form_text(text).require()
    engine = Engine(form, lang="en")
    state = engine.start()
    steps = {s.where: s for s in engine.steps(state)}

    def ask(where, keys):
        step = steps[where]

        def validate(raw):
            return engine.validate(state, step.path, raw)[1]

        return press(keys, lambda: prompts.QuestionaryPrompter("en").ask(step, validate))

    return steps, ask


def test_long_lists_are_searched_short_ones_listed(long_list):
    steps, _ = long_list
    assert prompts.searchable(steps["one"]) and prompts.searchable(steps["many"])
    assert not prompts.searchable(steps["short"])


@pytest.mark.slow
def test_search_prompt_takes_a_label_a_name_or_back(long_list, capsys):
    _, ask = long_list
    assert ask("one", "village 299" + ENTER) == "c299"  # a label, in any case
    assert ask("one", "c7" + ENTER) == "c7"
    assert ask("one", "Village 29" + DOWN + ENTER) == "c29"
    assert ask("one", CTRL_B) is BACK
    # Not a choice: refused in place, then corrected; required: an empty line is refused.
    assert ask("one", "nowhere" + ENTER + BACKSPACE * 7 + ENTER + "c1" + ENTER) == "c1"
    assert "✔ Village  Village 1" in capsys.readouterr().out
    assert ask("many", "c3 Village 12" + ENTER) == ["c3", "c12"]
    assert ask("many", ENTER) == []  # optional: nothing chosen
    assert ask("many", CTRL_B) is BACK


def test_search_offers_matches_by_label_or_name():
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    class C:
        def __init__(self, name, label):
            self.name, self.label = name, label

    choices = [C(f"v{i}", f"Kara-Suu {i}") for i in range(1000)] + [C("osh", "Ош"), C("x", "Ош")]
    search = prompts.ChoiceSearch(choices, lambda c: c.label)
    assert search.matches("kara-suu 99") == [("v99", "Kara-Suu 99"), ("v990", "Kara-Suu 990")] + [
        (f"v99{i}", f"Kara-Suu 99{i}") for i in range(1, 10)
    ]
    assert len(search.matches("kara")) == prompts.MAX_MATCHES_SHOWN
    assert search.matches("OSH") == [("osh", "Ош")]  # by name too
    assert search.read("ош", False, "en")[1] is not None  # two choices have that label
    completer = search.completer(multiple=True)
    found = list(completer.get_completions(Document("osh Kara-Suu 12"), CompleteEvent()))
    assert [(c.text, c.start_position) for c in found[:2]] == [("v12", -11), ("v120", -11)]


# -- the libyaml fast path reads as ruamel.yaml does ---------------------------------------

SNIPPETS = [
    "a: 01\nb: 2026-10-01\nc: yes\nd: 'x'\ne:\nf: [0555, no, ~, true, 1.50]\n",
    "a: >-\n  ${x} +\n  ${y}\nb: |\n  p\n  q\nc: >\n  folded\n  text\n\n  more\n",
    "label: \"Кара-Суу\"\nhint: 'it''s'\nx: {a: Null, b: FALSE, c: True, d: \"\", e: NULL}\n",
    "- a\n- - b\n  - c\n- {}\n- []\n- {k: [1, {m: n}]}\n",
    "# only a comment first\nid: x  # trailing\nempty:  # a comment\nnext:\n",
    "key: \"two\n  lines\"\nother: 'one'\n",
    "вопрос: {имя: 'да', метка: нет}\nсписок:\n  - {имя: ж, метка: 'Жалал-Абад'}\n",
    "a:\n- x\n- y\nb:\n    c: d\n",
]
FALLBACK = [
    "a: &x 1\nb: *x\n",  # an alias
    "a: &x 1\n",  # an anchor
    "a: !!str 1\n",  # a tag
    "a: 1\na: 2\n",  # a duplicate key
    "a: 1\n---\nb: 2\n",  # two documents
    "a: 1\n---\n",  # a second, empty one
    "%YAML 1.1\n---\na: yes\n",  # a directive
    "a: [1,\n",  # a syntax error
    "",
    "[" * 150 + "]" * 150,  # nested deeper than yaml_io allows
    "? [a]\n: b\n",  # a key that is not text
    "just text\n",  # not a mapping: not a form
    "--- \na: 1\n...\n",  # document end markers
    "a: |#\n  x\n",  # block scalars where the parsers differ
    "a: >\n  \n   x\n",
    "a:\tb\n",  # tabs
    "a: b\x85c: d\n",  # a YAML 1.1 line break
]


def ruamel_load(text):
    """What yaml_io.load_yaml gives without the fast path."""
    from yntymak_cli import yaml_fast
    from yntymak_cli.yaml_io import load_yaml

    token = yaml_fast._RUAMEL_ONLY.set(True)
    try:
        return load_yaml(text)
    finally:
        yaml_fast._RUAMEL_ONLY.reset(token)


def same_reading(fast, slow):
    assert fast[0] == slow[0]
    assert (fast[1].values, fast[1].keys, fast[1].quoted) == (
        slow[1].values,
        slow[1].keys,
        slow[1].quoted,
    )


def repo_yaml_files():
    return sorted({*DATA.rglob("*.yaml"), *FORMS.rglob("*.yaml"), *SHARED.rglob("*.yaml")})


@pytest.mark.slow
@pytest.mark.parametrize("text", SNIPPETS + [p.read_text("utf-8-sig") for p in repo_yaml_files()])
def test_fast_path_reads_as_ruamel_does(text):
    from yntymak_cli.yaml_fast import load_fast

    fast = load_fast(text)
    assert fast is not None
    same_reading(fast, ruamel_load(text))


@pytest.mark.parametrize("text", FALLBACK)
def test_what_only_ruamel_decides_is_left_to_it(text):
    from yntymak_cli.yaml_fast import load_fast

    assert load_fast(text) is None


TOKENS = [*"\n:-[]{},'\"#?|>&*!%@`\\", "  ", "\r\n", "\t", "\x85", "...", "---", "a: ", "- "]
TOKENS += ["a", "b", "yes", "null", "~", "true", "01", "Кара", "${x}", "\n  ", "\n  - "]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map("".join))
def test_fast_path_never_reads_text_differently(text):
    from yntymak_cli.yaml_fast import load_fast

    fast = load_fast(text)
    if fast is not None:  # ruamel.yaml must read it, and read it the same
        same_reading(fast, ruamel_load(text))
