"""`yntymak collect --answers`, `submissions list|show|void`, drafts: through the CLI."""

from __future__ import annotations

import json

import pytest

from yntymak_cli.cli import app

from .conftest import DATA, FORMS
from .helpers import CONTRACT, CONTRACT_ANSWERS, LIST_KEYS, collect, runner, show


def test_contract_answers_file_is_accepted_as_is():
    result = collect(CONTRACT, "--answers", CONTRACT_ANSWERS, "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    uuid = result.stdout.strip().splitlines()[-1]
    record = show(uuid)
    assert record["uuid"] == uuid
    assert record["revision"] == 1
    assert record["status"] == "final"
    assert record["form_id"] == "village_safety"
    assert record["form_version"] == "2026-11-01"
    assert record["enumerator"] == "Aida"
    answers = record["answers"]
    assert answers["oblast"] == "osh"
    assert answers["district"] == "kara_suu"
    assert answers["village"] == "Кара-Суу"
    assert answers["age"] == 34
    assert answers["felt_tension"] == "yes"
    assert answers["sources"] == ["land", "water"]
    assert answers["n_incidents"] == 2
    assert answers["incidents"] == [
        {"incident_date": "2026-10-01", "resolved": "no"},
        {"incident_date": "2026-10-15", "resolved": "yes"},
    ]
    assert answers["location"] == "40.53 72.8"
    assert answers["n_sources"] == 2
    assert answers["enumerator"] == "Aida"
    assert len(answers["today"]) == 10
    assert record["device_id"] and len(record["device_id"]) == 16
    assert record["instance_name"] == f"Кара-Суу {answers['today']}"
    # The enumerator is remembered for the next run.
    again = collect(CONTRACT, "--answers", CONTRACT_ANSWERS)
    assert again.exit_code == 0
    assert show(again.stdout.strip().splitlines()[-1])["enumerator"] == "Aida"


@pytest.mark.slow
@pytest.mark.parametrize("form", sorted(p.stem for p in FORMS.glob("*.yaml")))
def test_every_programme_form_completes_with_answers(form):
    result = collect(
        FORMS / f"{form}.yaml",
        "--answers",
        DATA / "answers" / f"{form}.yaml",
        "--enumerator",
        "Bakyt",
    )
    assert result.exit_code == 0, result.output
    record = show(result.stdout.strip().splitlines()[-1])
    assert record["status"] == "final" and record["form_id"] == form
    assert record["answers"]["district"]


def write(tmp_path, text, name="answers.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BAD_ANSWERS = {
    "invalid value": ("age: abc", "age: "),
    "constraint": ("age: 7", "age: Between 14 and 99"),
    "missing required": ("oblast: null", "oblast: "),
    "unknown key": ("vilage: X", "did you mean 'village'"),
    "not relevant": ("felt_tension: no\nsources: [land]", "sources: "),
    "choice filter": ("district: at_bashy", "district: "),
    "repeat count": (None, "incidents"),
    "repeat item": (None, "incidents[2]/resolved"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD_ANSWERS))
def test_bad_answers_exit_2_save_nothing(tmp_path, case):
    change, expected = BAD_ANSWERS[case]
    base = CONTRACT_ANSWERS.read_text(encoding="utf-8")
    if case == "repeat count":
        text = base.replace("n_incidents: 2", "n_incidents: 3")
    elif case == "repeat item":
        text = base.replace("resolved: yes}", "resolved: maybe}")
    else:
        key = change.split(":")[0]
        lines = [ln for ln in base.splitlines() if not ln.startswith(f"{key}:")]
        if key == "felt_tension":
            lines = [
                ln
                for ln in lines
                if not ln.startswith(("sources", "n_incidents", "incidents", "  -"))
            ]
        text = "\n".join(lines) + "\n" + change + "\n"
    result = collect(CONTRACT, "--answers", write(tmp_path, text), "--lang", "en")
    assert result.exit_code == 2, result.output
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.output
    listing = runner.invoke(app, ["submissions", "list", "--json"])
    assert json.loads(listing.stdout) == []


def test_json_answers_and_problems_name_their_path(tmp_path):
    answers = {
        "oblast": "osh",
        "district": "kara_suu",
        "village": "Ош",
        "felt_tension": "yes",
        "n_incidents": 1,
        "incidents": [{"incident_date": "2026-13-01", "resolved": "no"}],
    }
    path = write(tmp_path, json.dumps(answers), "a.json")
    result = collect(CONTRACT, "--answers", path, "--lang", "en")
    assert result.exit_code == 2
    assert "incidents[1]/incident_date:" in result.stderr


def test_unreadable_answers_file(tmp_path):
    result = collect(CONTRACT, "--answers", write(tmp_path, "a: [1,\n"))
    assert result.exit_code == 2
    assert "answers.yaml:2:1" in result.stderr
    result = collect(CONTRACT, "--answers", write(tmp_path, "- 1\n- 2\n"))
    assert result.exit_code == 2 and "mapping" in result.stderr


def test_registered_form_id_and_void():
    first = collect(CONTRACT, "--answers", CONTRACT_ANSWERS, "--enumerator", "Aida")
    uuid = first.stdout.strip().splitlines()[-1]
    # The form is now registered: its id works as FORM.
    by_id = collect("village_safety", "--answers", CONTRACT_ANSWERS)
    assert by_id.exit_code == 0, by_id.output
    result = runner.invoke(app, ["submissions", "void", uuid, "--reason", "duplicate interview"])
    assert result.exit_code == 0, result.output
    record = show(uuid)
    assert record["status"] == "void" and record["void_reason"] == "duplicate interview"
    assert record["answers"]["village"] == "Кара-Суу"  # kept, never deleted
    finals = json.loads(
        runner.invoke(app, ["submissions", "list", "--status", "final", "--json"]).stdout
    )
    assert [r["uuid"] for r in finals] == [by_id.stdout.strip().splitlines()[-1]]
    again = runner.invoke(app, ["submissions", "void", uuid, "--reason", "x"])
    assert again.exit_code == 2


def test_list_json_shape_is_a_contract():
    collect(CONTRACT, "--answers", CONTRACT_ANSWERS, "--enumerator", "Aida")
    [item] = json.loads(runner.invoke(app, ["submissions", "list", "--json"]).stdout)
    assert list(item) == LIST_KEYS


def test_unknown_things_are_clean_errors(tmp_path):
    assert collect(tmp_path / "none.yaml").exit_code == 2
    assert collect("no_such_form", "--answers", CONTRACT_ANSWERS).exit_code == 2
    result = runner.invoke(app, ["submissions", "show", "0000"])
    assert result.exit_code == 2 and "no submission" in result.stderr
    result = collect(CONTRACT, "--answers", CONTRACT_ANSWERS, "--lang", "de")
    assert result.exit_code == 2 and "--lang" in result.stderr


def test_drafts_empty():
    result = runner.invoke(app, ["drafts"])
    assert result.exit_code == 0 and "no drafts" in result.stdout


def test_interactive_without_terminal_refuses_before_creating_a_draft():
    result = collect(CONTRACT, "--enumerator", "Aida")
    assert result.exit_code == 2
    assert "--answers" in result.stderr
    assert runner.invoke(app, ["drafts"]).stdout.strip() == "no drafts"


def test_drafts_on_an_80_column_terminal_show_short_uuids(monkeypatch):
    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store

    store = Store.open()
    form = load_form(CONTRACT).require()
    uuid = store.create_draft(form, {"answers": {}}, "Айгүл Бекмуратова", "dev", {})
    monkeypatch.setenv("COLUMNS", "80")
    result = runner.invoke(app, ["drafts"])
    assert result.exit_code == 0
    # The first 8 characters, whole (`yntymak resume` takes them: tests/test_screen.py).
    assert uuid[:8] in result.stdout.split() and uuid not in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())


def test_resume_of_a_finalised_submission_points_to_edit():
    uuid = collect(CONTRACT, "--answers", CONTRACT_ANSWERS, "--enumerator", "A").stdout.split()[-1]
    result = runner.invoke(app, ["resume", uuid[:8]])
    assert result.exit_code == 2
    assert f"yntymak submissions edit {uuid}" in result.stderr


def test_a_changed_form_without_a_new_version_is_flagged(tmp_path):
    assert collect(CONTRACT, "--answers", CONTRACT_ANSWERS, "--enumerator", "A").exit_code == 0
    same = collect(CONTRACT, "--answers", CONTRACT_ANSWERS)
    assert same.exit_code == 0 and "new version" not in same.stderr
    changed = tmp_path / "vs.yaml"
    changed.write_text(
        CONTRACT.read_text(encoding="utf-8").replace("en: Village}", "en: Village name}"),
        encoding="utf-8",
    )
    result = collect(changed, "--answers", CONTRACT_ANSWERS)
    assert result.exit_code == 0
    assert "give the changed form a new version" in result.stderr
