"""`export --paradata` / `hq export --paradata`: one row per submission x question, as its
own sheet or file; HQ's `iter_quality_rows` on SQLite and PostgreSQL; the paradata of a
survey filled in a real terminal, through a bundle, to HQ's export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
import sys
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from yntymak_cli.collect import prompts
from yntymak_cli.collect.prompts import ScriptedPrompter
from yntymak_cli.quality.paradata import IDLE_CAP
from yntymak_cli.store import hq_schema
from yntymak_cli.store.db import Store

from .helpers import (
    CONTRACT,
    UUID,
    Field,
    collect,
    collect_in,
    collected,
    hq_db,
    runner,
    yn,
)
from .test_interactive import CONTRACT_SCRIPT

HEADERS = [
    "_uuid",
    "_revision",
    "_enumerator",
    "question",
    "first",
    "last",
    "seconds",
    "changes",
    "back_steps",
]
FORMULA = '=HYPERLINK("http://example.org","click")'
SCRIPT = CONTRACT_SCRIPT  # the contract survey, with a refused answer and a back-step
ANSWERED = {
    "oblast",
    "district",
    "village",
    "age",
    "phone",
    "felt_tension",
    "sources",
    "n_incidents",
    "incidents[1]/incident_date",
    "incidents[1]/resolved",
    "incidents[2]/incident_date",
    "incidents[2]/resolved",
    "location",
}


@pytest.fixture
def script(monkeypatch):
    """`collect` answers from a script (collect.prompts' scripted prompter)."""

    def install(answers: list[tuple[str, Any]]) -> None:
        prompter = ScriptedPrompter(list(answers))
        monkeypatch.setattr(prompts, "make_prompter", lambda lang: prompter)

    return install


def scripted(script, home: Path | None = None) -> str:
    """One submission of the contract form through the survey loop; its UUID."""
    script(SCRIPT)
    args = (CONTRACT, "--lang", "en", "--enumerator", "Aida")
    if home is None:
        result = collect(*args)
        assert result.exit_code == 0, result.output
        text = result.output
    else:
        text = yn(home, "collect", *args)
    return text.split("Finalised: submission ")[1][:36]


def export(*args: Any, hq: Path | None = None, code: int = 0):
    command = ["--lang", "en"] + (["--home", str(hq), "hq"] if hq else [])
    result = runner.invoke(app(), [*command, "export", "village_safety", *map(str, args)])
    assert result.exit_code == code, (result.output, result.exception)
    return result


def app():
    from yntymak_cli.cli import app as cli_app

    return cli_app


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def check_rows(rows: list[dict[str, Any]], uuid: str) -> dict[str, dict[str, Any]]:
    """The rows of one submission, by question, checked for sense."""
    mine = {r["question"]: r for r in rows if r["_uuid"] == uuid}
    assert ANSWERED <= set(mine)
    for question in ANSWERED:
        row = mine[question]
        assert parse(row["first"]) <= parse(row["last"])
        assert 0 <= float(row["seconds"]) <= IDLE_CAP
        assert int(row["_revision"]) == 1 and row["_enumerator"] == "Aida"
    return mine


def xlsx_rows(path: Path, sheet: str = "paradata") -> list[dict[str, Any]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    values = list(wb[sheet].iter_rows(values_only=True))
    assert list(values[0]) == HEADERS
    return [dict(zip(HEADERS, row, strict=True)) for row in values[1:]]


def csv_rows(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    assert reader.fieldnames == HEADERS
    return list(reader)


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


# -- the laptop's export ------------------------------------------------------------------


def test_xlsx_has_a_paradata_sheet_with_a_row_per_question(script, tmp_path):
    uuid = scripted(script)
    untimed = collected()  # --answers: no timing, no rows
    out = tmp_path / "out.xlsx"
    result = export("--paradata", "-o", out)
    assert "1 submission(s) have no timing paradata" in result.stderr
    rows = xlsx_rows(out)
    assert {r["_uuid"] for r in rows} == {uuid} and untimed not in str(rows)
    mine = check_rows(rows, uuid)
    assert mine["incidents[1]/incident_date"]["changes"] == 1  # corrected after the back-step
    assert mine["incidents[1]/resolved"]["back_steps"] == 1
    assert mine["oblast"]["changes"] == 0
    # The data sheets are as without --paradata.
    wb = openpyxl.load_workbook(out, read_only=True)
    assert wb.sheetnames == ["Айылдагы коопсуздук", "incidents", "paradata"]
    # Without --paradata: no sheet.
    export("-o", tmp_path / "plain.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "plain.xlsx", read_only=True)
    assert "paradata" not in wb.sheetnames


def test_csv_folder_zip_and_json_siblings(script, tmp_path):
    uuid = scripted(script)
    collected()
    folder = tmp_path / "csv"
    export("--paradata", "-o", f"{folder}/")
    assert sorted(p.name for p in folder.iterdir()) == [
        "incidents.csv",
        "paradata.csv",
        "village_safety.csv",
    ]
    check_rows(csv_rows((folder / "paradata.csv").read_text("utf-8")), uuid)

    export("--paradata", "-o", tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        assert "paradata.csv" in zf.namelist()
        check_rows(csv_rows(zf.read("paradata.csv").decode("utf-8")), uuid)

    for fmt in ("json", "jsonl"):
        out = tmp_path / f"out.{fmt}"
        result = export("--paradata", "-o", out)
        sibling = tmp_path / "out.paradata.jsonl"
        assert str(sibling) in result.stdout
        rows = jsonl_rows(sibling)
        assert list(rows[0]) == HEADERS
        mine = check_rows(rows, uuid)
        assert isinstance(mine["oblast"]["seconds"], float | int)
        assert mine["oblast"]["_revision"] == 1
        sibling.unlink()


def test_single_csv_file_gets_a_paradata_file_beside_it(script, make_form, tmp_path):
    form = make_form(
        """
        id: tiny
        version: "1"
        title: Tiny
        questions:
          - {name: who, type: text, label: Who}
          - {name: age, type: integer, label: Age}
        """
    )
    script([("who", "Aida"), ("age", "7"), ("review", "finalise")])
    result = collect(form, "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    out = tmp_path / "tiny.csv"
    done = runner.invoke(app(), ["export", "tiny", "--paradata", "-o", str(out)])
    assert done.exit_code == 0, done.output
    rows = csv_rows((tmp_path / "tiny.paradata.csv").read_text("utf-8"))
    assert [r["question"] for r in rows] == ["who", "age"]
    assert len(list(csv.reader(out.open(encoding="utf-8-sig")))) == 2  # header + 1


def test_text_from_the_device_never_becomes_a_formula(script, tmp_path):
    uuid = scripted(script)
    store = Store.open()
    db = sqlite3.connect(store.path)
    [(text,)] = db.execute("SELECT paradata FROM revisions WHERE uuid = ?", [uuid]).fetchall()
    data = json.loads(text)
    data["answers"][FORMULA] = data["answers"]["oblast"]
    data["back_steps"].append({"at": data["answers"]["oblast"]["first"], "from": "@SUM(1)"})
    with db:
        db.execute("UPDATE revisions SET paradata = ? WHERE uuid = ?", [json.dumps(data), uuid])
    db.close()
    store.close()

    export("--paradata", "-o", tmp_path / "out.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "out.xlsx")
    cells = [row[3] for row in wb["paradata"].iter_rows(min_row=2)]
    formula = next(c for c in cells if c.value == FORMULA)
    assert formula.data_type == "s"
    assert "@SUM(1)" in [c.value for c in cells]

    export("--paradata", "-o", f"{tmp_path / 'csv'}/")
    rows = csv_rows((tmp_path / "csv" / "paradata.csv").read_text("utf-8"))
    assert "'" + FORMULA in [r["question"] for r in rows]
    assert "'@SUM(1)" in [r["question"] for r in rows]


def test_a_form_question_named_paradata_does_not_clash(tmp_path, make_form, script):
    form = make_form(
        """
        id: clash
        version: "1"
        title: Clash
        questions:
          - {name: who, type: text, label: Who}
          - type: repeat
            name: paradata
            label: Rows
            questions:
              - {name: x, type: text, label: X}
        """
    )
    script(
        [("who", "A"), ("add:paradata[1]", True), ("paradata[1]/x", "1"),
         ("add:paradata[2]", False), ("review", "finalise")]
    )  # fmt: skip
    result = collect(form, "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    out = tmp_path / "clash.xlsx"
    done = runner.invoke(app(), ["export", "clash", "--paradata", "-o", str(out)])
    assert done.exit_code == 0, done.output
    names = openpyxl.load_workbook(out, read_only=True).sheetnames
    assert names[0] == "Clash" and names[-1] == "paradata" and len(names) == 3  # its title
    repeat = names[1]  # the repeat's sheet, renamed: "paradata" is taken
    assert repeat.lower() != "paradata"
    assert [r["question"] for r in xlsx_rows(out)] == ["who", "paradata[1]/x"]
    folder = tmp_path / "clash"
    done = runner.invoke(app(), ["export", "clash", "--paradata", "-o", f"{folder}/"])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["clash.csv", f"{repeat}.csv", "paradata.csv"]
    )
    assert csv_rows((folder / "paradata.csv").read_text("utf-8"))[0]["question"] == "who"


# -- HQ ------------------------------------------------------------------------------------


def test_hq_export_paradata_and_quality_rows(field: Field, script):
    timed = scripted(script, field.a)
    untimed = collect_in(field.a, field.tmp, "Ош")
    other = collect_in(field.b, field.tmp, "Нарын")
    assert "2 new" in field.import_(field.bundle(field.a))
    assert "1 new" in field.import_(field.bundle(field.b))

    out = field.tmp / "hq.xlsx"
    export("--paradata", "-o", out, hq=field.hq)
    rows = xlsx_rows(out)
    assert {r["_uuid"] for r in rows} == {timed}
    check_rows(rows, timed)
    export("--paradata", "-o", field.tmp / "hq.jsonl", hq=field.hq)
    check_rows(jsonl_rows(field.tmp / "hq.paradata.jsonl"), timed)

    # A void submission is not a quality row.
    yn(field.b, "submissions", "void", other, "--reason", "duplicate")
    field.import_(field.bundle(field.b))
    with hq_db(field.hq) as db:
        found = list(db.iter_quality_rows("village_safety"))
        assert list(db.iter_quality_rows("village_safety", since="2999-01-01")) == []
        assert list(db.iter_quality_rows("no_such_form")) == []
    assert [r["uuid"] for r in found] == sorted(
        (timed, untimed), key=lambda u: next(r["submission_time"] for r in found if r["uuid"] == u)
    )
    assert {r["uuid"] for r in found} == {timed, untimed}
    assert set(found[0]) == {
        "uuid",
        "revision",
        "form_version",
        "form_hash",
        "enumerator",
        "device_id",
        "enrolled_district",
        "submission_time",
        "created_at",
        "answers",
        "timing_revision",
        "started",
        "ended",
        "active_seconds",
        "sessions",
        "seconds",
        "paradata",
    }
    by = {r["uuid"]: r for r in found}
    assert by[timed]["enrolled_district"] == "kara_suu"
    assert isinstance(by[timed]["answers"], str) and json.loads(by[timed]["answers"])["age"] == 34
    # HQ timed each interview when it imported it: the paradata is not read again.
    assert by[timed]["timing_revision"] == 1 and by[timed]["sessions"] == 1
    assert by[timed]["started"] <= by[timed]["ended"] and by[timed]["active_seconds"] > 0
    assert len(json.loads(by[timed]["seconds"])) >= 3
    assert by[untimed]["timing_revision"] == 1 and by[untimed]["started"] is None
    assert by[timed]["paradata"] is None and by[untimed]["paradata"] is None
    # A submission imported before HQ kept timings has no row: its paradata comes instead.
    with hq_db(field.hq) as db, db.write() as conn:
        conn.execute(sa.delete(hq_schema.hq_timings))
    with hq_db(field.hq) as db:
        by = {r["uuid"]: r for r in db.iter_quality_rows("village_safety")}
    assert by[timed]["timing_revision"] is None
    assert json.loads(by[timed]["paradata"])["sessions"][0]["finalised"]
    assert json.loads(by[untimed]["paradata"])["source"] == "answers-file"
    times = [r["submission_time"] for r in found]
    assert times == sorted(times)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")
def test_a_survey_in_a_real_terminal_reaches_hq_with_its_paradata(field: Field):
    pytest.importorskip("pexpect")
    from .helpers import CTRL_B, DOWN, ENTER, SPACE, UP, Term

    t = Term(field.a, "collect", str(CONTRACT), "--lang", "en", "--enumerator", "Aida")
    try:
        uuid = t.expect(rf"({UUID})")[1]
        t.answer("Region (required)", DOWN + ENTER)  # Naryn
        t.answer("District (required)", ENTER)
        t.answer("Village (required)", "Ат-Башы" + ENTER)
        t.answer("Age", "34" + ENTER)
        t.answer("Phone", CTRL_B)  # back to Age
        t.answer("Age", ENTER)
        t.answer("Phone", ENTER)
        t.answer("Did you feel tension", DOWN + ENTER)  # No
        t.answer("Location", CTRL_B)
        t.answer("Did you feel tension", UP + ENTER)  # Yes: a change
        t.answer("Sources", SPACE + DOWN + DOWN + SPACE + ENTER)
        t.answer("How many incidents?", "1" + ENTER)
        t.answer("Incident 1 › Date", "2026-10-01" + ENTER)
        t.answer("Incident 1 › Resolved?", ENTER)
        t.answer("Location", "41.23 75.80" + ENTER)
        t.answer("Read it, then press Enter", ENTER)
        t.answer("What next?", ENTER)  # Finalise
        t.expect(rf"Finalised: submission {uuid}, revision 1\.")
        assert t.finish() == 0
    finally:
        if t.child.isalive():
            t.child.kill(9)
    untimed = collect_in(field.a, field.tmp, "Ош")
    assert "2 new" in field.import_(field.bundle(field.a))

    out = field.tmp / "hq.xlsx"
    export("--paradata", "-o", out, hq=field.hq)
    rows = xlsx_rows(out)
    assert untimed not in {r["_uuid"] for r in rows}
    mine = {r["question"]: r for r in rows if r["_uuid"] == uuid}
    answered = {
        "oblast",
        "district",
        "village",
        "age",
        "phone",
        "felt_tension",
        "sources",
        "n_incidents",
        "incidents[1]/incident_date",
        "incidents[1]/resolved",
        "location",
    }
    assert answered <= set(mine)
    for question in answered:
        row = mine[question]
        assert parse(row["first"]) <= parse(row["last"]), row
        assert row["seconds"] is not None and 0 <= row["seconds"] <= IDLE_CAP, row
    assert mine["felt_tension"]["changes"] == 1
    assert mine["phone"]["back_steps"] == 1 and mine["location"]["back_steps"] == 1
    r, tm = hq_schema.revisions, hq_schema.hq_timings
    with hq_db(field.hq) as db:
        paradata = db.conn.execute(sa.select(r.c.paradata).where(r.c.uuid == uuid)).scalar()
        ended = db.conn.execute(sa.select(tm.c.ended).where(tm.c.uuid == uuid)).scalar()
    sessions = json.loads(paradata)["sessions"]
    assert sessions[-1]["last"] <= sessions[-1]["finalised"]  # the session's end is kept
    assert ended == parse(sessions[-1]["finalised"]).timestamp()  # HQ's timing: the end
