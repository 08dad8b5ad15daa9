"""`yntymak forms validate|show|schema` through the CLI, as authors use them."""

from __future__ import annotations

import json
import re

import pytest

from yntymak_cli.cli import app
from yntymak_cli.forms.loader import load_form

from .conftest import DATA, FORMS
from .helpers import runner

LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*)$")


def validate(*paths):
    return runner.invoke(app, ["forms", "validate", *map(str, paths)])


def problems(result) -> list[tuple[int, str]]:
    out = []
    for line in result.stderr.splitlines():
        m = LINE.match(line)
        assert m, f"not a FILE:LINE:COL line: {line!r}"
        out.append((int(m["line"]), m["msg"]))
    return out


def test_contract_form_is_valid_and_keeps_text_as_written():
    result = validate(DATA / "village_safety.yaml")
    assert result.exit_code == 0, result.output
    form = load_form(DATA / "village_safety.yaml").require()
    assert [c.name for c in form.choices["yes_no"]] == ["yes", "no"]
    assert form.version == "2026-11-01"
    assert form.index["age"].constraint == ". >= 14 and . <= 99"
    assert form.group_path("age") == "respondent/age"


def test_programme_library_is_valid_without_warnings():
    paths = sorted(FORMS.glob("*.yaml"))
    assert len(paths) >= 4
    result = validate(*paths)
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr


def test_choice_codes_and_dates_stay_text(make_form):
    path = make_form(
        """
        id: codes
        version: 3
        questions:
          - {name: q, type: select_one l, label: Q, default: 0555}
          - {name: d, type: date, label: D, default: 2026-10-01}
        choices:
          l:
            - {name: 01, label: one}
            - {name: 0555, label: other}
            - {name: no, label: "No"}
        """
    )
    form = load_form(path).require()
    assert [c.name for c in form.choices["l"]] == ["01", "0555", "no"]
    assert form.version == "3"
    assert form.index["q"].default == "0555"
    assert form.index["d"].default == "2026-10-01"


BROKEN = {
    "unknown type": ("- {name: a, type: integr, label: A}", "unknown type 'integr'"),
    "unknown list": ("- {name: a, type: select_one nope, label: A}", "unknown choice list"),
    "duplicate": (
        "- {name: a, type: text, label: A}\n  - {name: a, type: text, label: B}",
        "duplicate name",
    ),
    "bad identifier": ("- {name: 1a, type: text, label: A}", "name is not valid"),
    "bad expression": ("- {name: a, type: integer, label: A, constraint: '. >>= 3'}", "constraint"),
    "unknown function": (
        "- {name: a, type: integer, label: A, relevant: 'frob(1)'}",
        "unknown function",
    ),
    "unknown reference": (
        "- {name: a, type: integer, label: A, relevant: '${b} = 1'}",
        "unknown question '${b}'",
    ),
    "unknown key": ("- {name: a, type: text, lable: A}", "did you mean 'label'"),
    "cycle": (
        "- {name: a, type: calculate, calculation: '${b} + 1'}\n"
        "  - {name: b, type: calculate, calculation: '${a} + 1'}",
        "cycle",
    ),
    "self reference": ("- {name: a, type: calculate, calculation: '${a} + 1'}", "cycle"),
    "bad range": (
        "- {name: a, type: range, label: A, parameters: {start: 0, end: 5, step: 0}}",
        "step must be positive",
    ),
    "bad default": ("- {name: a, type: integer, label: A, default: abc}", "default"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_forms_exit_2_with_located_problems(make_form, case):
    body, expected = BROKEN[case]
    path = make_form(f"id: f\nversion: '1'\nquestions:\n  {body}\n")
    result = validate(path)
    assert result.exit_code == 2
    found = problems(result)
    assert any(expected in msg for _, msg in found), found
    assert all(line >= 3 for line, _ in found if "warning" not in _)
    assert "Traceback" not in result.output


def test_missing_translation_is_a_warning_only(make_form):
    path = make_form(
        """
        id: f
        version: '1'
        languages: [ky, ru, en]
        questions:
          - name: a
            type: text
            label: {ky: Аты, en: Name}
        """
    )
    result = validate(path)
    assert result.exit_code == 0
    [(line, msg)] = problems(result)
    assert line == 8 and msg.startswith("warning:") and "'ru'" in msg


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\x01\x02\xff\xfe binary",
        b"- just\n- a list\n",
        b"id: [\n",
        b"\xef\xbb\xbf",
        b"a: &x [*x]\n",
        b"questions: 5\nid: x\nversion: 1\n",
        b"{id: x, version: 1, questions: [3]}",
    ],
)
def test_garbage_never_tracebacks(tmp_path, content):
    path = tmp_path / "g.yaml"
    path.write_bytes(content)
    result = validate(path)
    assert result.exit_code == 2
    assert result.stderr.strip()
    for line in result.stderr.splitlines():
        assert LINE.match(line), line


def test_missing_file_is_a_clean_error(tmp_path):
    result = validate(tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "cannot read file" in result.stderr


def test_show_prints_tree_in_chosen_language():
    result = runner.invoke(
        app, ["forms", "show", str(DATA / "village_safety.yaml"), "--lang", "ru"]
    )
    assert result.exit_code == 0, result.output
    assert "Безопасность в селе" in result.stdout
    assert "incident_date" in result.stdout
    assert "oblast = ${oblast}" in result.stdout


def test_schema_is_json_schema_of_the_format():
    result = runner.invoke(app, ["forms", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "questions" in schema["properties"]
    assert "Question" in schema["$defs"]


def test_home_option_and_env(tmp_path, monkeypatch):
    from yntymak_cli import home

    monkeypatch.setenv("YNTYMAK_HOME", str(tmp_path / "env"))
    assert home.home_dir() == tmp_path / "env"
    result = runner.invoke(app, ["--home", str(tmp_path / "opt"), "forms", "schema"])
    assert result.exit_code == 0
    assert home.home_dir() == tmp_path / "opt"
    home.set_home(None)


def test_included_lists_work_without_choices_and_problems_point_into_their_file(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "lists.yaml").write_text(
        "choices:\n  yn:\n    - {name: a, label: A}\n    - {name: a, label: B}\n",
        encoding="utf-8",
    )
    form = tmp_path / "f.yaml"
    form.write_text(
        "id: f\nversion: '1'\ninclude: [shared/lists.yaml]\nquestions:\n"
        "  - {name: q, type: select_one yn, label: Q}\n",
        encoding="utf-8",
    )
    result = validate(form)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{tmp_path / 'shared' / 'lists.yaml'}:4:14: choice list 'yn': duplicate choice 'a'"
    )


def test_expression_errors_point_at_the_column_in_plain_and_quoted_text(make_form):
    path = make_form(
        "id: f\nversion: '1'\nquestions:\n"
        '  - {name: a, type: integer, label: A, relevant: ". > frob(1)"}\n'
        "  - {name: b, type: integer, label: A, relevant: . > frob(1)}\n"
    )
    found = problems(validate(path))
    lines = (path.read_text(encoding="utf-8").splitlines()[3], path.read_text().splitlines()[4])
    assert [(line, msg.split(":")[0]) for line, msg in found] == [
        (4, "question 'a'"),
        (5, "question 'b'"),
    ]
    result = validate(path)
    cols = [int(ln.split(":")[2]) for ln in result.stderr.splitlines()]
    assert [text[col - 1 : col + 3] for text, col in zip(lines, cols, strict=True)] == [
        "frob",
        "frob",
    ]
