"""The KoboToolbox layout (issue 15): `_id`, `__version__`, `_submission__id`, the main sheet
named after the form's title, group labels in label-mode headers, start/end with their
UTC offset. Data is collected and exported through the real CLI."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from yntymak_cli.cli import app
from yntymak_cli.store import migrations
from yntymak_cli.store.db import Store

from .helpers import Field, collect_in, rows, runner, yn

# A title longer than a sheet name may be, with characters a sheet name may not hold.
FORM = """\
id: kobo
version: "3"
title: {en: "Grants: monitoring/visits [2026] of the Living in Peace programme", ru: Визиты}
languages: [en, ru]
choices:
  kind: [{name: road, label: {en: Road, ru: Дорога}}, {name: well, label: {en: Well, ru: Колодец}}]
questions:
  - {name: start, type: start}
  - {name: end, type: end}
  - name: site
    type: group
    label: {en: Site, ru: Объект}
    questions:
      - {name: kind, type: select_multiple kind, label: {en: Kind, ru: Вид}}
      - {name: where, type: geopoint, label: {en: Where, ru: Где}}
      - {name: note_text, type: text}
  - name: visits
    type: repeat
    label: {en: Visit, ru: Визит}
    questions:
      - {name: day, type: date, label: {en: Day, ru: День}}
"""
ANSWERS = """\
kind: [road, well]
where: 42.87 74.59
note_text: '=1+1'
visits:
  - day: '2026-11-02'
  - day: '2026-11-03'
"""
LONG_TITLE = "Grants_ monitoring_visits _2026_"  # cut to 31, [:]/ made safe


def cli(*args: Any, code: int = 0) -> str:
    result = runner.invoke(app, ["--lang", "en", *map(str, args)])
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


@pytest.fixture
def kobo(make_form) -> tuple[Path, list[str]]:
    form = make_form(FORM, "kobo.yaml")
    answers = make_form(ANSWERS, "answers.yaml")
    uuids = [
        cli("collect", form, "--answers", answers, "--enumerator", "aida").strip().splitlines()[-1]
        for _ in range(3)
    ]
    return form, uuids


def sheets(path: Path) -> dict[str, list[dict[str, Any]]]:
    wb = openpyxl.load_workbook(path)
    out = {}
    for ws in wb.worksheets:
        values = list(ws.iter_rows(values_only=True))
        out[ws.title] = [dict(zip(values[0], r, strict=True)) for r in values[1:]]
    return out


def test_ids_version_and_the_title_sheet(kobo, tmp_path):
    _, uuids = kobo
    out = tmp_path / "k.xlsx"
    cli("export", "kobo", "-o", out)
    got = sheets(out)
    main_name = LONG_TITLE[:31]
    assert list(got) == [main_name, "visits"]
    main = got[main_name]
    assert [(r["_id"], r["_uuid"]) for r in main] == list(enumerate(uuids, 1))
    assert {r["__version__"] for r in main} == {"3"} == {r["_form_version"] for r in main}
    header = list(main[0])
    assert header[header.index("_review_comment") :] == ["_review_comment", "__version__", "_index"]
    visits = got["visits"]
    assert len(visits) == 6
    assert {r["_parent_table_name"] for r in visits} == {main_name}
    assert [(r["_submission__id"], r["_submission__uuid"]) for r in visits[::2]] == list(
        enumerate(uuids, 1)
    )
    assert list(visits[0])[-5:] == [
        "_index",
        "_parent_table_name",
        "_parent_index",
        "_submission__id",
        "_submission__uuid",
    ]
    # CSV files keep the form id's name, and link to it.
    cli("export", "kobo", "--format", "csv", "-o", tmp_path / "csv")
    with (tmp_path / "csv" / "visits.csv").open(encoding="utf-8-sig", newline="") as f:
        linked = list(csv.DictReader(f))
    assert {r["_parent_table_name"] for r in linked} == {"kobo"}
    assert [r["_submission__id"] for r in linked[::2]] == ["1", "2", "3"]
    # JSON: `id` beside `uuid`.
    cli("export", "kobo", "--format", "jsonl", "-o", tmp_path / "k.jsonl")
    items = [json.loads(line) for line in (tmp_path / "k.jsonl").read_text("utf-8").splitlines()]
    assert [(i["id"], i["uuid"]) for i in items] == list(enumerate(uuids, 1))


def test_the_title_in_the_export_language_and_unique_among_sheets(make_form, tmp_path):
    form = make_form(FORM.replace("ru: Визиты", "ru: visits"), "kobo.yaml")
    cli("collect", form, "--answers", make_form(ANSWERS, "a.yaml"), "--enumerator", "aida")
    out = tmp_path / "ru.xlsx"
    cli("export", "kobo", "-o", out, "--lang", "ru", "--paradata")
    names = openpyxl.load_workbook(out).sheetnames
    # Excel's names are unique case-insensitively: the repeat's sheet gives way.
    assert names == ["visits", "visits (2)", "paradata"]
    visits = sheets(out)["visits (2)"]
    assert {r["_parent_table_name"] for r in visits} == {"visits"}


@pytest.mark.parametrize(
    ("title", "sheet"),
    [
        ("Monitoring of the local elders' councils", "Monitoring of the local elders"),
        ("'Quoted' title", "Quoted' title"),
        ("  ", "kobo"),
    ],
)
def test_a_title_never_makes_a_sheet_name_excel_refuses(make_form, tmp_path, title, sheet):
    form = make_form(FORM.replace(FORM.splitlines()[2], f"title: {json.dumps(title)}"), "k.yaml")
    cli("collect", form, "--answers", make_form(ANSWERS, "a.yaml"), "--enumerator", "aida")
    cli("export", "kobo", "-o", tmp_path / "k.xlsx")
    assert openpyxl.load_workbook(tmp_path / "k.xlsx").sheetnames[0] == sheet


def test_headers_carry_group_labels_in_label_mode(kobo, tmp_path):
    out = tmp_path / "ru.xlsx"
    cli("export", "kobo", "-o", out, "--lang", "ru")
    main = sheets(out)["Визиты"]
    row = main[0]
    # formpack's "groups in headers": group labels joined with "/", as names are.
    assert row["Объект/Вид"] == "Дорога; Колодец"
    assert row["Объект/Вид/Дорога"] == 1 and row["Объект/Вид/Колодец"] == 1
    assert row["Объект/Где"] == "42.87 74.59"
    assert row["Объект/_Где_latitude"] == 42.87 and row["Объект/_Где_longitude"] == 74.59
    assert row["site/note_text"] == "=1+1"  # no label: the path, as without --lang
    assert list(sheets(out)["visits"][0])[0] == "Визит/День"
    plain = tmp_path / "names.xlsx"
    cli("export", "kobo", "-o", plain)
    header = list(sheets(plain)[LONG_TITLE[:31]][0])
    assert header[2:6] == ["site/kind", "site/kind/road", "site/kind/well", "site/where"]
    assert "site/_where_latitude" in header


OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def test_start_and_end_keep_their_utc_offset(kobo, tmp_path):
    _, uuids = kobo
    out = tmp_path / "k.xlsx"
    cli("export", "kobo", "-o", out)
    main = sheets(out)[LONG_TITLE[:31]]
    for r in main:
        assert OFFSET.match(r["start"]) and OFFSET.match(r["end"]), r  # text, as recorded
        assert r["start"] <= r["end"]
    stored = json.loads(cli("submissions", "show", uuids[0], "--json"))["answers"]
    assert main[0]["start"] == stored["start"] and main[0]["end"] == stored["end"]
    cli("export", "kobo", "--format", "csv", "-o", tmp_path / "csv")
    with (tmp_path / "csv" / "kobo.csv").open(encoding="utf-8-sig", newline="") as f:
        assert next(csv.DictReader(f))["start"] == stored["start"]


def test_start_is_a_real_datetime_in_spss(kobo, tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    _, uuids = kobo
    cli("export", "kobo", "--format", "sav", "-o", tmp_path / "s")
    frame, meta = pyreadstat.read_sav(str(tmp_path / "s" / "kobo.sav"))
    stored = json.loads(cli("submissions", "show", uuids[0], "--json"))["answers"]
    assert meta.original_variable_types["start"].startswith("DATETIME")
    assert frame["start"][0].isoformat() == stored["start"][:19]  # wall clock, offset off
    assert list(frame["v_id"]) == [1, 2, 3]


def test_ids_stay_when_the_file_is_rebuilt_and_go_on_after_it(kobo, make_form, tmp_path):
    form, uuids = kobo
    with Store.open() as store:
        path = store.path
    conn = sqlite3.connect(path)
    before = dict(conn.execute("SELECT uuid, id FROM submissions"))
    conn.execute("VACUUM")  # what purge runs: rowids may change, ids may not
    after = dict(conn.execute("SELECT uuid, id FROM submissions"))
    conn.close()
    assert before == after == {u: i for i, u in enumerate(uuids, 1)}
    answers = make_form(ANSWERS, "more.yaml")
    fourth = cli("collect", form, "--answers", answers, "--enumerator", "aida").split()[-1]
    with Store.open() as store:
        assert store.get_record(fourth)["id"] == 4


def test_a_database_from_before_ids_numbers_its_submissions_in_order(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    older = [s for s in migrations.MIGRATIONS if s[0] != "010_submission_ids"]
    migrations.migrate(conn, older)
    conn.execute(
        "INSERT INTO forms (hash, form_id, version, definition, registered_at)"
        " VALUES ('h', 'f', '1', '{}', 'now')"
    )
    for k in range(3):
        conn.execute(
            "INSERT INTO submissions (uuid, form_id, form_version, form_hash, status,"
            " created_at, updated_at) VALUES (?, 'f', '1', 'h', 'final', 'now', 'now')",
            (f"u{2 - k}",),  # uuids in reverse: ids follow insertion, not the uuid
        )
    conn.close()
    Store(path).close()  # migrated as any command would
    conn = sqlite3.connect(path)
    got = list(conn.execute("SELECT uuid, id FROM submissions ORDER BY id"))
    conn.close()
    assert got == [("u2", 1), ("u1", 2), ("u0", 3)]


def test_hq_numbers_submissions_its_own_way(field: Field, tmp_path):
    f = field
    ua = [collect_in(f.a, f.tmp, "Ош"), collect_in(f.a, f.tmp, "Ноокат")]
    ub = collect_in(f.b, f.tmp, "Нарын")
    f.import_(f.bundle(f.b))
    f.import_(f.bundle(f.a))
    out = tmp_path / "hq.jsonl"
    yn(f.hq, "hq", "export", "village_safety", "--format", "jsonl", "-o", out)
    items = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    ids = {i["uuid"]: i["id"] for i in items}
    assert ids[ub] == 1 and sorted(ids[u] for u in ua) == [2, 3]  # in the order HQ got them
    # An edit (revision 2) keeps the submission's id.
    fix = tmp_path / "fix.yaml"
    fix.write_text("age: 43\n", encoding="utf-8")
    yn(f.a, "submissions", "edit", ua[0], "--answers", fix)
    f.import_(f.bundle(f.a))
    stored = rows(f.hq, "SELECT uuid, id, revision FROM submissions ORDER BY id")
    assert [(r["uuid"], r["id"]) for r in stored] == sorted(ids.items(), key=lambda kv: kv[1])
    assert {r["revision"] for r in stored if r["uuid"] == ua[0]} == {2}
