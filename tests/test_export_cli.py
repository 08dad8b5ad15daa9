"""`yntymak export` over the local database, as an HQ analyst or a volunteer runs it."""

from __future__ import annotations

import csv
import json

import openpyxl
from typer.testing import CliRunner

from yntymak_cli.cli import app

from .conftest import DATA

runner = CliRunner()
CONTRACT = DATA / "village_safety.yaml"
ANSWERS = DATA / "village_safety_answers.yaml"


def collect(answers=ANSWERS):
    result = runner.invoke(
        app, ["collect", str(CONTRACT), "--answers", str(answers), "--enumerator", "Aida"]
    )
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def export(*args):
    return runner.invoke(app, ["export", "village_safety", *map(str, args)])


def test_xlsx_export_of_collected_data(tmp_path):
    first, second = collect(), collect()
    runner.invoke(app, ["submissions", "void", second, "--reason", "test interview"])
    out = tmp_path / "vs.xlsx"
    result = export("--format", "xlsx", "-o", out)
    assert result.exit_code == 0, result.output
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[:2] == ["village_safety", "incidents"]
    main = wb["village_safety"]
    header = [c.value for c in main[1]]
    rows = list(main.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 1  # the void one is left out by default
    row = dict(zip(header, rows[0], strict=True))
    assert row["_uuid"] == first
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

    with_void = tmp_path / "all.xlsx"
    assert export("-o", with_void, "--include-void").exit_code == 0
    assert openpyxl.load_workbook(with_void)["village_safety"].max_row == 3


def test_csv_json_and_labels(tmp_path):
    collect()
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
    collect()
    assert export("--format", "pdf", "-o", tmp_path / "x").exit_code == 2
    assert export("--since", "yesterday", "-o", tmp_path / "x.xlsx").exit_code == 2
    assert export("--summary", "--format", "csv", "-o", tmp_path / "x").exit_code == 2
    result = runner.invoke(app, ["export", "nope", "-o", str(tmp_path / "x.xlsx")])
    assert result.exit_code == 2 and "no form 'nope'" in result.stderr


def test_since_filters_on_submission_time(tmp_path):
    collect()
    out = tmp_path / "s.jsonl"
    assert export("--format", "jsonl", "--since", "2999-01-01", "-o", out).exit_code == 0
    assert out.read_text(encoding="utf-8") == ""
    assert export("--format", "jsonl", "--since", "2000-01-01", "-o", out).exit_code == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1


def test_progress_bar_only_on_a_terminal(tmp_path):
    import os
    import sys

    import pexpect

    collect()
    quiet = export("-o", tmp_path / "q.xlsx")
    assert quiet.exit_code == 0 and "submissions written" not in quiet.output
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "yntymak_cli", "export", "village_safety", "-o", str(tmp_path / "t.xlsx")],
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

    uuid = collect()
    store = Store.open()
    with store.write() as conn:  # what `submissions purge --synced` leaves behind
        conn.execute(
            "UPDATE submissions SET answers = NULL, purged_at = 'x' WHERE uuid = ?", [uuid]
        )
    out = tmp_path / "p.jsonl"
    assert export("--format", "jsonl", "-o", out).exit_code == 0
    assert out.read_text(encoding="utf-8") == ""
