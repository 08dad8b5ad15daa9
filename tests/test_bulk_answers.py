"""`yntymak collect FORM --answers FILE [FILE…]`: paper questionnaires entered in bulk
(issue 18, section 6): many files, .jsonl, .csv, all or nothing, --keep-going, and
problems named FILE:LINE: question: message."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from yntymak_cli.cli import app

from .conftest import DATA, FORMS
from .helpers import CONTRACT, runner

TRAINING = FORMS / "training_assessment.yaml"
TRAINING_ANSWERS = yaml.safe_load(
    (DATA / "answers" / "training_assessment.yaml").read_text(encoding="utf-8")
)


def collect(form: Path, *args) -> object:
    return runner.invoke(app, ["collect", str(form), *map(str, args), "--lang", "en"])


def stored() -> list[dict]:
    listing = runner.invoke(app, ["submissions", "list", "--json"])
    assert listing.exit_code == 0, listing.output
    return json.loads(listing.stdout)


def answers_of(uuid: str) -> dict:
    shown = runner.invoke(app, ["submissions", "show", uuid, "--json"])
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.stdout)["answers"]


def participant(n: int, **changes) -> dict:
    return {**TRAINING_ANSWERS, "participant_code": f"P-{n:03d}", **changes}


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def uuids(result) -> list[str]:
    return result.stdout.split()


def test_many_answers_files_after_one_option(tmp_path):
    files = []
    for n in (1, 2, 3):
        path = tmp_path / f"p{n}.yaml"
        path.write_text(yaml.safe_dump(participant(n), allow_unicode=True), encoding="utf-8")
        files.append(path)
    result = collect(TRAINING, "--answers", *files, "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    saved = uuids(result)
    assert len(saved) == 3 and len(set(saved)) == 3
    assert [answers_of(u)["participant_code"] for u in saved] == ["P-001", "P-002", "P-003"]
    # --answers may also be repeated.
    again = collect(TRAINING, "--answers", files[0], "--answers", files[1])
    assert again.exit_code == 0, again.output
    assert len(uuids(again)) == 2 and len(stored()) == 5


def test_jsonl_one_submission_per_line(tmp_path):
    path = write_jsonl(tmp_path / "paper.jsonl", [participant(n) for n in range(1, 5)])
    path.write_text(path.read_text("utf-8") + "\n\n", encoding="utf-8")  # blank lines skipped
    result = collect(TRAINING, "--answers", path)
    assert result.exit_code == 0, result.output
    saved = uuids(result)
    assert len(saved) == 4
    assert answers_of(saved[3])["participant_code"] == "P-004"
    records = stored()
    assert {r["form_version"] for r in records} == {"2026-11-30.1"}


def test_all_or_nothing_with_file_line_question_messages(tmp_path):
    rows = [participant(1), participant(2, q1="z"), participant(3), "{not json", "[1, 2]"]
    bad = write_jsonl(tmp_path / "paper.jsonl", rows)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(participant(9), allow_unicode=True), encoding="utf-8")
    result = collect(TRAINING, "--answers", good, bad)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert f"{bad}:2: q1: 'z' is not one of the choices" in result.stderr, result.stderr
    assert f"{bad}:4:2: invalid JSON" in result.stderr
    assert f"{bad}:5: each line of a .jsonl file must be a JSON object" in result.stderr
    assert "nothing saved: 3 of 6 submissions have problems" in result.stderr
    assert stored() == []


def test_keep_going_saves_the_valid_ones_and_reports_the_rest(tmp_path):
    rows = [participant(1), participant(2, participant_code="X-1"), participant(3)]
    path = write_jsonl(tmp_path / "paper.jsonl", rows)
    result = collect(TRAINING, "--answers", path, "--keep-going")
    assert result.exit_code == 2, result.output
    saved = uuids(result)
    assert len(saved) == 2
    assert [answers_of(u)["participant_code"] for u in saved] == ["P-001", "P-003"]
    assert f"{path}:2: participant_code: Format: P-NNN" in result.stderr
    assert "2 of 3 submissions saved, 1 refused" in result.stderr
    assert len(stored()) == 2


def test_yaml_problems_name_the_line_of_the_answer(tmp_path):
    text = (DATA / "answers" / "training_assessment.yaml").read_text(encoding="utf-8")
    path = tmp_path / "one.yaml"
    path.write_text(text.replace("q3: c", "q3: zz"), encoding="utf-8")
    line = 1 + text.splitlines().index("q3: c")
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(participant(4), allow_unicode=True), encoding="utf-8")
    result = collect(TRAINING, "--answers", other, path)
    assert result.exit_code == 2
    assert f"{path}:{line}: q3: 'zz' is not one of the choices" in result.stderr, result.stderr
    assert stored() == []


def test_csv_rows_with_the_exports_column_names(tmp_path):
    # One submission in, exported as CSV, read back: the export's columns are accepted.
    first = collect(TRAINING, "--answers", DATA / "answers" / "training_assessment.yaml")
    assert first.exit_code == 0, first.output
    out = tmp_path / "export"
    exported = runner.invoke(
        app, ["export", "training_assessment", "--format", "csv", "-o", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    [csv_file] = sorted(out.rglob("*.csv")) if out.is_dir() else [out]
    header = next(csv.reader(csv_file.open(encoding="utf-8-sig", newline="")))
    assert "participant/participant_code" in header and "_uuid" in header
    result = collect(TRAINING, "--answers", csv_file)
    assert result.exit_code == 0, result.output
    [copy] = uuids(result)
    original = answers_of(first.stdout.split()[-1])
    again = answers_of(copy)
    for key in ("participant_code", "q1", "q8", "confidence", "training_date", "district"):
        assert again[key] == original[key]

    # A sheet typed by hand: bare question names, one row per questionnaire, a
    # quoted cell spanning two lines, and a bad row named by its line.
    names = [k for k in TRAINING_ANSWERS if k != "most_useful"] + ["most_useful"]
    rows = [names]
    for n in (5, 6, 7):
        row = participant(n, most_useful="Ролдук оюндар,\nжана талкуу" if n == 5 else "Баары")
        rows.append([str(row[k]) for k in names])
    rows[3][names.index("confidence")] = "9"
    sheet = tmp_path / "sheet.csv"
    with sheet.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    result = collect(TRAINING, "--answers", sheet)
    assert result.exit_code == 2
    assert f"{sheet}:5: confidence: " in result.stderr, result.stderr  # row 3 starts on line 5
    result = collect(TRAINING, "--answers", sheet, "--keep-going")
    assert len(uuids(result)) == 2
    assert answers_of(uuids(result)[0])["most_useful"] == "Ролдук оюндар,\nжана талкуу"


def test_csv_select_multiple_and_geopoint_from_flag_and_part_columns(tmp_path, make_form):
    form = make_form(
        """
        id: flags
        version: "1"
        choices:
          fruit: [{name: apple, label: Apple}, {name: pear, label: Pear}]
        questions:
          - type: group
            name: g
            label: G
            questions:
              - {name: fruits, type: select_multiple fruit, label: Fruits}
              - {name: where, type: geopoint, label: Where}
          - {name: n, type: calculate, calculation: "1 + 1"}
        """
    )
    sheet = tmp_path / "flags.csv"
    sheet.write_text(
        "g/fruits/apple,g/fruits/pear,g/_where_latitude,g/_where_longitude,n,_uuid\n"
        "1,0,42.5,74.6,2,ignored\n"
        "1,1,,,,\n",
        encoding="utf-8",
    )
    result = collect(form, "--answers", sheet)
    assert result.exit_code == 0, result.output
    first, second = (answers_of(u) for u in uuids(result))
    assert first["fruits"] == ["apple"] and first["where"] == "42.5 74.6"
    assert second["fruits"] == ["apple", "pear"] and "where" not in second

    unknown = tmp_path / "unknown.csv"
    unknown.write_text("g/fruits,g/fruts/apple\napple,1\n", encoding="utf-8")
    result = collect(form, "--answers", unknown, "--keep-going")
    assert result.exit_code == 2
    assert f"{unknown}:1: unknown question 'g/fruts/apple'" in result.stderr
    assert uuids(result) == []  # a file with a column it cannot place is refused whole


def test_csv_refused_for_a_form_with_repeats(tmp_path):
    sheet = tmp_path / "vs.csv"
    sheet.write_text("oblast,district\nosh,kara_suu\n", encoding="utf-8")
    result = collect(CONTRACT, "--answers", sheet)
    assert result.exit_code == 2
    assert "cannot hold the repeats of form 'village_safety' (incidents)" in result.stderr
    assert "use .jsonl, .yaml or .json" in result.stderr


def test_unreadable_file_stops_before_anything_is_saved(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [participant(1)])
    result = collect(TRAINING, "--answers", good, tmp_path / "missing.jsonl", "--keep-going")
    assert result.exit_code == 2
    assert "missing.jsonl" in result.stderr
    assert stored() == []


def test_files_without_answers_option_are_refused(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [participant(1)])
    result = runner.invoke(app, ["collect", str(TRAINING), str(good), "--lang", "en"])
    assert result.exit_code == 2
    assert "answers files follow --answers" in result.stderr
    assert stored() == []


def test_one_transaction_saves_all_or_none(tmp_path, monkeypatch):
    """A failure while saving the third of three (disk full, say) leaves none saved."""
    from yntymak_cli.collect import bulk
    from yntymak_cli.collect import session as session_mod
    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store

    path = write_jsonl(tmp_path / "paper.jsonl", [participant(n) for n in (1, 2, 3)])
    form = load_form(TRAINING).require()
    store = Store.open()
    real = session_mod.save_filled
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(session_mod, "save_filled", failing)
    with pytest.raises(OSError):
        bulk.collect_many(store, form, [path], lang="en", enumerator="A", device_id="d")
    assert store.list_records() == [] and store.list_drafts() == []
    monkeypatch.setattr(session_mod, "save_filled", real)
    result = bulk.collect_many(store, form, [path], lang="en", enumerator="A", device_id="d")
    assert len(result.uuids) == 3 and len(store.list_records()) == 3
