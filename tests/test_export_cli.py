"""`yntymak export` over the local database, as an HQ analyst or a volunteer runs it."""

from __future__ import annotations

import csv
import json

import openpyxl
import pytest

from yntymak_cli.cli import app

from .helpers import collected, runner


def export(*args):
    # English messages: village_safety's default language (ky) would otherwise be used.
    return runner.invoke(app, ["--lang", "en", "export", "village_safety", *map(str, args)])


def test_xlsx_export_of_collected_data(tmp_path):
    first, second = collected(), collected()
    runner.invoke(app, ["submissions", "void", second, "--reason", "test interview"])
    out = tmp_path / "vs.xlsx"
    result = export("--format", "xlsx", "-o", out)
    assert result.exit_code == 0, result.output
    wb = openpyxl.load_workbook(out)
    # The main sheet: the form's title (its default language, ky, without --lang).
    assert wb.sheetnames[:2] == ["Айылдагы коопсуздук", "incidents"]
    main = wb["Айылдагы коопсуздук"]
    header = [c.value for c in main[1]]
    rows = list(main.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 1  # the void one is left out by default
    row = dict(zip(header, rows[0], strict=True))
    assert row["_uuid"] == first
    assert row["_id"] == 1 and row["__version__"] == row["_form_version"]  # the store's own
    assert row["respondent/age"] == 34
    assert row["sources"] == "land water" and row["sources/land"] == 1
    assert row["sources/pasture"] == 0
    assert row["_location_latitude"] == 40.53
    inc = wb["incidents"]
    inc_header = [c.value for c in inc[1]]
    inc_rows = [
        dict(zip(inc_header, r, strict=True)) for r in inc.iter_rows(min_row=2, values_only=True)
    ]
    assert [r["incidents/resolved"] for r in inc_rows] == ["no", "yes"]
    assert {r["_parent_index"] for r in inc_rows} == {row["_index"]}
    assert {(r["_submission__id"], r["_submission__uuid"]) for r in inc_rows} == {(1, first)}

    with_void = tmp_path / "all.xlsx"
    assert export("-o", with_void, "--include-void").exit_code == 0
    voided = openpyxl.load_workbook(with_void)["Айылдагы коопсуздук"]
    assert voided.max_row == 3
    ids = [c.value for c in next(voided.iter_cols(min_col=header.index("_id") + 1, min_row=2))]
    assert ids == [1, 2]


def test_csv_json_and_labels(tmp_path):
    collected()
    result = export("--format", "csv", "-o", tmp_path / "csv", "--lang", "ru")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "csv" / "village_safety.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["Область"] == "Ошская область"
    result = export("--format", "json", "-o", tmp_path / "vs.json", "--no-sensitive")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "vs.json").read_text(encoding="utf-8"))
    [sub] = doc["submissions"]
    assert sub["answers"]["incidents"][1] == {"incident_date": "2026-10-15", "resolved": "yes"}
    assert "phone" not in sub["answers"] and sub["uuid"]


def test_bad_options_exit_2(tmp_path):
    collected()
    assert export("--format", "pdf", "-o", tmp_path / "x").exit_code == 2
    assert export("--since", "yesterday", "-o", tmp_path / "x.xlsx").exit_code == 2
    assert export("--summary", "--format", "csv", "-o", tmp_path / "x").exit_code == 2
    result = runner.invoke(app, ["export", "nope", "-o", str(tmp_path / "x.xlsx")])
    assert result.exit_code == 2 and "no form 'nope'" in result.stderr


def test_since_filters_on_submission_time(tmp_path):
    collected()
    out = tmp_path / "s.jsonl"
    assert export("--format", "jsonl", "--since", "2999-01-01", "-o", out).exit_code == 0
    assert out.read_text(encoding="utf-8") == ""
    assert export("--format", "jsonl", "--since", "2000-01-01", "-o", out).exit_code == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1


@pytest.mark.slow
def test_progress_bar_only_on_a_terminal(tmp_path):
    import os
    import sys

    import pexpect

    collected()
    quiet = export("-o", tmp_path / "q.xlsx")
    assert quiet.exit_code == 0 and "submissions written" not in quiet.output
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "yntymak_cli",
            "--lang",
            "en",
            "export",
            "village_safety",
            "-o",
            str(tmp_path / "t.xlsx"),
        ],
        env=env,
        encoding="utf-8",
        timeout=30,
    )
    child.expect("submissions written")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_purged_submissions_are_not_exported(tmp_path):
    from yntymak_cli.store.db import Store

    uuid = collected()
    store = Store.open()
    with store.write() as conn:  # what `submissions purge --synced` leaves behind
        conn.execute(
            "UPDATE submissions SET answers = NULL, purged_at = 'x' WHERE uuid = ?", [uuid]
        )
    out = tmp_path / "p.jsonl"
    assert export("--format", "jsonl", "-o", out).exit_code == 0
    assert out.read_text(encoding="utf-8") == ""


SURVEY_V1 = """\
id: survey
version: "1"
choices:
  mood:
    - {name: good, label: Good}
    - {name: meh, label: Meh}
questions:
  - {name: name, type: text, label: Name}
  - {name: old_score, type: integer, label: Old score}
  - {name: mood, type: select_multiple mood, label: Mood}
"""
SURVEY_V2 = """\
id: survey
version: "2"
choices:
  mood:
    - {name: good, label: Good}
    - {name: great, label: Great}
questions:
  - {name: visited, type: date, label: Visited}
  - {name: mood, type: select_multiple mood, label: Mood}
  - {name: name, type: text, label: Name}
"""


def test_two_form_versions_collected_then_exported(make_form, tmp_path):
    def collect_with(form_text: str, name: str, answers: str) -> str:
        form = make_form(form_text, f"{name}.yaml")
        answers_file = make_form(answers, f"{name}-answers.yaml")
        result = runner.invoke(
            app, ["collect", str(form), "--answers", str(answers_file), "--enumerator", "Aida"]
        )
        assert result.exit_code == 0, result.output
        return result.stdout.strip().splitlines()[-1]

    old = collect_with(SURVEY_V1, "v1", "name: Айгүл\nold_score: 7\nmood: [meh]\n")
    new = collect_with(SURVEY_V2, "v2", "visited: '2026-11-05'\nmood: [great]\nname: Бакыт\n")
    out = tmp_path / "survey.xlsx"
    result = runner.invoke(app, ["export", "survey", "-o", str(out)])
    assert result.exit_code == 0, result.output
    ws = openpyxl.load_workbook(out)["survey"]
    header = [c.value for c in ws[1]]
    # The newest version's order, then what only the old version had (an old-only
    # choice closes its question's choice columns).
    assert header == [
        "visited",
        "mood",
        "mood/good",
        "mood/great",
        "mood/meh",
        "name",
        "old_score",
        "_id",
        "_uuid",
        "_submission_time",
        "_enumerator",
        "_device_id",
        "_form_version",
        "_status",
        "_validation_status",
        "_review_comment",
        "__version__",
        "_index",
    ]
    rows = [dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]
    by_uuid = {r["_uuid"]: r for r in rows}
    assert by_uuid[old]["_form_version"] == "1" and by_uuid[new]["_form_version"] == "2"
    assert (by_uuid[old]["_id"], by_uuid[new]["_id"]) == (1, 2)  # in the order collected
    assert (by_uuid[old]["old_score"], by_uuid[new]["old_score"]) == (7, None)
    assert (by_uuid[old]["mood/meh"], by_uuid[new]["mood/great"]) == (1, 1)
    assert by_uuid[new]["visited"].date().isoformat() == "2026-11-05"
    assert by_uuid[old]["name"] == "Айгүл"

    doc_path = tmp_path / "survey.json"
    result = runner.invoke(app, ["export", "survey", "--format", "json", "-o", str(doc_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(doc_path.read_text(encoding="utf-8"))["versions"] == ["2", "1"]


def test_output_folder_or_file_mixup_exits_2_with_one_line(tmp_path):
    collected()
    folder = tmp_path / "exports"
    folder.mkdir()
    for fmt in ("xlsx", "json"):
        result = export("--format", fmt, "-o", folder)
        assert result.exit_code == 2, result.output
        [line] = result.stderr.splitlines()
        assert line == (
            f"Error: -o {folder} is a folder: name the file to write, such as "
            f"{folder / ('village_safety.' + fmt)}"
        )
    a_file = tmp_path / "vs.json"
    a_file.write_text("{}", encoding="utf-8")
    result = export("--format", "csv", "-o", a_file)
    assert result.exit_code == 2 and "is a file" in result.stderr
    result = export("-o", a_file / "vs.xlsx")
    assert result.exit_code == 2 and f"{a_file} is a file, not a folder" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "vs.json"]
    assert list(folder.iterdir()) == []


@pytest.fixture
def bishkek_clock(monkeypatch):
    import time

    if not hasattr(time, "tzset"):
        pytest.skip("needs time.tzset")
    monkeypatch.setenv("TZ", "Asia/Bishkek")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_since_is_a_day_on_the_local_clock(tmp_path, bishkek_clock):
    from yntymak_cli.store.db import Store

    uuid = collected()
    store = Store.open()
    with store.write() as conn:  # finalised at 03:00 on 1 November in Bishkek (UTC+6)
        conn.execute(
            "UPDATE submissions SET submission_time = '2026-10-31T21:00:00.000000Z' WHERE uuid = ?",
            [uuid],
        )
    out = tmp_path / "s.jsonl"
    assert export("--format", "jsonl", "--since", "2026-11-01", "-o", out).exit_code == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1
    assert export("--format", "jsonl", "--since", "2026-11-02", "-o", out).exit_code == 0
    assert out.read_text(encoding="utf-8") == ""
