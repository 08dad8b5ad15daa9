"""Exporter: Kobo-style xlsx layout, cell types, CSV/JSON/zip, streaming and safety."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from yntymak_cli.errors import InvalidInput
from yntymak_cli.export import ExportOptions, export
from yntymak_cli.export import xlsx as xlsx_mod
from yntymak_cli.export.layout import SheetNames
from yntymak_cli.forms.loader import load_form_text

DATA = Path(__file__).parent / "data"


def form_of(text: str):
    return load_form_text(textwrap.dedent(text), "inline.yaml").require()


@pytest.fixture(scope="module")
def village():
    return load_form_text((DATA / "village_safety.yaml").read_text("utf-8"), "vs.yaml").require()


VS = "Айылдагы коопсуздук"  # the main sheet: the form's title in its default language


def record(answers: dict[str, Any], n: int = 1, **meta: Any) -> dict[str, Any]:
    base = {
        "uuid": f"uuid-{n}",
        "revision": 1,
        "form_id": "village_safety",
        "form_version": "2026-11-01",
        "form_hash": "0" * 64,
        "status": "final",
        "created_at": "2026-11-02T09:00:00Z",
        "updated_at": "2026-11-02T09:30:00Z",
        "submission_time": "2026-11-02T09:30:00Z",
        "enumerator": "aida",
        "device_id": "dev-1",
        "instance_name": None,
        "void_reason": None,
        "answers": answers,
        "id": n,
    }
    base.update(meta)
    return base


FULL = {
    "today": "2026-11-02",
    "enumerator": "aida",
    "oblast": "osh",
    "district": "kara_suu",
    "village": "Кара-Суу",
    "age": 34,
    "phone": "+996 700 123 456",
    "felt_tension": "yes",
    "sources": ["land", "water"],
    "n_incidents": 2,
    "incidents": [
        {"incident_date": "2026-10-01", "resolved": "no"},
        {"incident_date": "2026-10-15", "resolved": "yes"},
    ],
    "n_sources": "2",
    "location": "40.53 72.80 812.5 4.0",
}
CALM = {
    "today": "2026-11-03",
    "oblast": "naryn",
    "district": "at_bashy",
    "village": "Ат-Башы",
    "age": 61,
    "felt_tension": "no",
    "location": "41.17 75.80",
}


def sheet_rows(path: Path, title: str) -> list[tuple[Any, ...]]:
    wb = openpyxl.load_workbook(path)
    return [tuple(r) for r in wb[title].iter_rows(values_only=True)]


def as_dicts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    header = rows[0]
    return [dict(zip(header, r, strict=True)) for r in rows[1:]]


def run(forms, records, out: Path, **opts: Any):
    fmt = opts.pop("fmt", "xlsx")
    return export(forms, iter(records), out, ExportOptions(fmt, **opts))


# -- layout ----------------------------------------------------------------------------


def test_sheets_headers_and_metadata(village, tmp_path):
    out = tmp_path / "vs.xlsx"
    result = run([village], [record(FULL), record(CALM, 2)], out)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == [VS, "incidents"]
    main = sheet_rows(out, VS)
    assert list(main[0]) == [
        "today",
        "enumerator",
        "oblast",
        "district",
        "village",
        "respondent/age",
        "respondent/phone",
        "felt_tension",
        "sources",
        "sources/land",
        "sources/water",
        "sources/pasture",
        "n_incidents",
        "n_sources",  # calculate gets a column; the note `thanks` and groups do not
        "location",
        "_location_latitude",
        "_location_longitude",
        "_location_altitude",
        "_location_precision",
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
    assert sheet_rows(out, "incidents")[0] == (
        "incidents/incident_date",
        "incidents/resolved",
        "_index",
        "_parent_table_name",
        "_parent_index",
        "_submission__id",
        "_submission__uuid",
    )
    first = as_dicts(main)[0]
    assert (first["_id"], first["_uuid"], first["__version__"]) == (1, "uuid-1", "2026-11-01")
    assert [r["_id"] for r in as_dicts(main)] == [1, 2]
    incident = as_dicts(sheet_rows(out, "incidents"))[0]
    assert (incident["_parent_table_name"], incident["_submission__id"]) == (VS, 1)
    assert first["_submission_time"] == dt.datetime(2026, 11, 2, 9, 30)
    assert (first["_enumerator"], first["_device_id"]) == ("aida", "dev-1")
    assert (first["_form_version"], first["_status"], first["_index"]) == ("2026-11-01", "final", 1)
    assert result.submissions == 2
    assert result.rows == {VS: 2, "incidents": 2}
    assert result.paths == [out]


def test_cell_types_numbers_dates_text(village, tmp_path):
    out = tmp_path / "vs.xlsx"
    run([village], [record(FULL)], out)
    ws = openpyxl.load_workbook(out)[VS]
    header = [c.value for c in ws[1]]
    row = {h: c for h, c in zip(header, ws[2], strict=True)}
    assert row["respondent/age"].data_type == "n" and row["respondent/age"].value == 34
    assert isinstance(row["respondent/age"].value, int)
    assert row["today"].is_date and row["today"].value == dt.datetime(2026, 11, 2)
    assert "h" not in row["today"].number_format  # a date format, not a datetime one
    assert row["_submission_time"].is_date
    assert row["_submission_time"].value == dt.datetime(2026, 11, 2, 9, 30)
    assert row["village"].data_type == "s" and row["village"].value == "Кара-Суу"
    assert row["respondent/phone"].data_type == "s"
    assert row["_location_latitude"].value == pytest.approx(40.53)
    assert row["_location_altitude"].value == pytest.approx(812.5)
    assert row["n_sources"].value == "2"  # calculate results keep their stored type
    incident = openpyxl.load_workbook(out)["incidents"]["A2"]
    assert incident.is_date and incident.value == dt.datetime(2026, 10, 1)


def test_repeat_rows_link_to_their_parent(village, tmp_path):
    one = {**CALM, "incidents": [{"incident_date": "2026-09-09", "resolved": "yes"}]}
    three = {
        **FULL,
        "incidents": [{"incident_date": f"2026-10-0{i}", "resolved": "no"} for i in (1, 2, 3)],
    }
    records = [record(one, 1), record(CALM, 2), record(three, 3)]
    out = tmp_path / "vs.xlsx"
    run([village], records, out)
    main = as_dicts(sheet_rows(out, VS))
    incidents = as_dicts(sheet_rows(out, "incidents"))
    assert [r["_index"] for r in incidents] == [1, 2, 3, 4]
    by_index = {r["_index"]: r for r in main}
    parents = [by_index[r["_parent_index"]]["_uuid"] for r in incidents]
    assert parents == ["uuid-1", "uuid-3", "uuid-3", "uuid-3"]
    assert [r["_submission__uuid"] for r in incidents] == parents
    assert {r["_parent_table_name"] for r in incidents} == {VS}
    assert [r["incidents/incident_date"].day for r in incidents] == [9, 1, 2, 3]


def test_nested_repeats_and_select_multiple_in_a_group(tmp_path):
    form = form_of(
        """
        id: household
        version: "1"
        choices:
          crop: [{name: wheat}, {name: potato}, {name: apricot}]
        questions:
          - name: village
            type: text
          - name: members
            type: repeat
            questions:
              - name: member_name
                type: text
              - name: work
                type: group
                questions:
                  - name: crops
                    type: select_multiple crop
              - name: plots
                type: repeat
                questions:
                  - name: area
                    type: decimal
        """
    )
    answers = {
        "village": "Ак-Суу",
        "members": [
            {"member_name": "Айгүл", "crops": ["potato"], "plots": [{"area": 0.5}]},
            {"member_name": "Бакыт", "plots": [{"area": 1.25}, {"area": 2.0}]},
        ],
    }
    out = tmp_path / "h.xlsx"
    result = run([form], [record(answers, form_id="household")], out)
    assert openpyxl.load_workbook(out).sheetnames == ["household", "members", "plots"]
    members = as_dicts(sheet_rows(out, "members"))
    assert list(members[0]) == [
        "members/member_name",
        "members/work/crops",
        "members/work/crops/wheat",
        "members/work/crops/potato",
        "members/work/crops/apricot",
        "_index",
        "_parent_table_name",
        "_parent_index",
        "_submission__id",
        "_submission__uuid",
    ]
    assert [members[0][f"members/work/crops/{c}"] for c in ("wheat", "potato", "apricot")] == [
        0,
        1,
        0,
    ]
    # Unanswered select_multiple: blank, not zeros.
    assert members[1]["members/work/crops"] is None
    assert members[1]["members/work/crops/potato"] is None
    plots = as_dicts(sheet_rows(out, "plots"))
    assert [(p["_parent_table_name"], p["_parent_index"]) for p in plots] == [
        ("members", 1),
        ("members", 2),
        ("members", 2),
    ]
    assert [p["members/plots/area"] for p in plots] == [0.5, 1.25, 2.0]
    assert result.rows == {"household": 1, "members": 2, "plots": 3}


def test_select_multiple_and_geopoint_columns(village, tmp_path):
    out = tmp_path / "vs.xlsx"
    run([village], [record(FULL), record(CALM, 2)], out)
    full, calm = as_dicts(sheet_rows(out, VS))
    assert full["sources"] == "land water"
    assert [full[f"sources/{c}"] for c in ("land", "water", "pasture")] == [1, 1, 0]
    assert [calm[f"sources/{c}"] for c in ("land", "water", "pasture")] == [None] * 3
    assert calm["sources"] is None
    assert calm["location"] == "41.17 75.80"
    assert (calm["_location_latitude"], calm["_location_longitude"]) == (41.17, 75.8)
    assert (calm["_location_altitude"], calm["_location_precision"]) == (None, None)
    assert full["_location_precision"] == 4.0


@pytest.mark.parametrize(
    ("lang", "headers", "values"),
    [
        (
            "ky",
            (
                "Облус",
                "Жооп берүүчү/Жашыңыз",
                "Себептери",
                "Себептери/Жер",
                "_Жайгашкан жери_latitude",
            ),
            ("Ош облусу", 34, "Жер; Суу", 1, 40.53),
        ),
        (
            "ru",
            (
                "Область",
                "Респондент/Возраст",
                "Причины",
                "Причины/Земля",
                "_Местоположение_latitude",
            ),
            ("Ошская область", 34, "Земля; Вода", 1, 40.53),
        ),
    ],
)
def test_labels_in_a_language(village, tmp_path, lang, headers, values):
    out = tmp_path / f"{lang}.xlsx"
    run([village], [record(FULL)], out, lang=lang)
    # The main sheet is named after the form's title in the export language.
    title = {"ky": VS, "ru": "Безопасность в селе"}[lang]
    assert openpyxl.load_workbook(out).sheetnames == [title, "incidents"]
    rows = sheet_rows(out, title)
    header = list(rows[0])
    got = tuple(rows[1][header.index(h)] for h in headers)
    assert got == values
    # Questions without a label keep their path; metadata columns keep their names.
    assert header[:2] == ["today", "enumerator"] and header[-1] == "_index"
    incidents = sheet_rows(out, "incidents")
    # Headers carry the enclosing groups' (here the repeat's) labels, as formpack's
    # "groups in headers" does.
    resolved = {"ky": ("Окуя/Чечилдиби?", "Жок"), "ru": ("Инцидент/Разрешён?", "Нет")}[lang]
    assert (incidents[0][1], incidents[1][1]) == resolved


INJECTIONS = [
    '=HYPERLINK("http://x","y")',
    "=1+1",
    "+7 700",
    "-5",
    "@x",
    "#N/A",
    "=",
    "tab\there",
    "Кыргызча: өңү, Русский: ёжик",
]


def _injection_form():
    return form_of(
        """
        id: notes
        version: "1"
        questions:
          - {name: remark, type: text}
          - {name: count, type: integer}
          - name: items
            type: repeat
            questions:
              - {name: item, type: text}
        """
    )


def test_text_never_becomes_a_formula(tmp_path):
    form = _injection_form()
    records = [
        record({"remark": text, "count": -5, "items": [{"item": text}]}, i, form_id="notes")
        for i, text in enumerate(INJECTIONS, 1)
    ]
    out = tmp_path / "n.xlsx"
    run([form], records, out)
    wb = openpyxl.load_workbook(out)
    for title in ("notes", "items"):
        ws = wb[title]
        got = [(c.value, c.data_type) for c in ws["A"][1:]]
        assert got == [(text, "s") for text in INJECTIONS]
    count = wb["notes"]["B2"]
    assert (count.value, count.data_type) == (-5, "n")  # negative numbers stay numbers
    with zipfile.ZipFile(out) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/sheet")]
        assert all(b"<f>" not in zf.read(n) and b"<f " not in zf.read(n) for n in sheets)


def test_control_characters_and_very_long_text(tmp_path):
    form = _injection_form()
    long = "ж" * 40000
    records = [record({"remark": "a\x00b\x1fc"}, 1), record({"remark": long}, 2)]
    out = tmp_path / "n.xlsx"
    result = run([form], records, out)
    ws = openpyxl.load_workbook(out)["notes"]
    assert ws["A2"].value == "a\ufffdb\ufffdc"
    assert ws["A3"].value == long[:32767]
    assert any("32,767" in w for w in result.warnings)
    # CSV keeps the full text.
    run([form], records, tmp_path / "csv", fmt="csv")
    text = (tmp_path / "csv" / "notes.csv").read_text("utf-8-sig")
    assert long in text


def test_huge_integers_are_kept_as_text(tmp_path):
    form = _injection_form()
    out = tmp_path / "n.xlsx"
    run([form], [record({"count": 996700123456789012})], out)
    cell = openpyxl.load_workbook(out)["notes"]["B2"]
    assert (cell.value, cell.data_type) == ("996700123456789012", "s")


# -- versions, sensitivity -------------------------------------------------------------

V1 = """
id: survey
version: "1"
choices:
  mood: [{name: good}, {name: bad}, {name: meh, label: {en: So-so, ru: Так себе}}]
languages: [en, ru]
questions:
  - {name: name, type: text}
  - {name: old_score, type: integer}
  - {name: mood, type: select_multiple mood}
  - {name: visited, type: date}
"""
V2 = """
id: survey
version: "2"
choices:
  mood: [{name: good, label: {en: Good, ru: Хорошо}}, {name: bad}, {name: great}]
languages: [en, ru]
questions:
  - {name: visited, type: date}
  - {name: name, type: text, label: {en: Name, ru: Имя}}
  - {name: mood, type: select_multiple mood}
  - {name: phone, type: text, sensitive: true}
"""


def test_two_versions_column_order_and_form_version(tmp_path):
    v1, v2 = form_of(V1), form_of(V2)
    old = {"name": "Old", "old_score": 7, "mood": ["meh"], "visited": "2026-01-05"}
    new = {"visited": "2026-02-01", "name": "New", "mood": ["great", "good"], "phone": "1"}
    records = [
        record(old, 1, form_id="survey", form_version="1"),
        record(new, 2, form_id="survey", form_version="2"),
    ]
    out = tmp_path / "s.xlsx"
    run([v2, v1], records, out)
    rows = as_dicts(sheet_rows(out, "survey"))
    assert list(rows[0])[:10] == [
        "visited",
        "name",
        "mood",
        "mood/good",
        "mood/bad",
        "mood/great",
        "mood/meh",  # a choice only the old version had, after the new ones
        "phone",
        "old_score",  # a question only the old version had, after the newest's
        "_id",
    ]
    old, new = rows
    assert (old["_form_version"], new["_form_version"]) == ("1", "2")
    assert (old["old_score"], new["old_score"]) == (7, None)
    assert (old["mood/meh"], old["mood/good"], new["mood/great"]) == (1, 0, 1)
    assert old["visited"] == dt.datetime(2026, 1, 5)

    # Labels merge over versions: newest label first, older labels for old-only choices.
    run([v2, v1], records, tmp_path / "ru.xlsx", lang="ru")
    ru = as_dicts(sheet_rows(tmp_path / "ru.xlsx", "survey"))
    assert [ru[0]["mood"], ru[1]["mood"]] == ["Так себе", "great; Хорошо"]
    assert "Имя" in ru[0] and "mood/Так себе" in ru[0]


def test_no_sensitive_drops_columns_in_every_format(village, tmp_path):
    v1, v2 = form_of(V1), form_of(V2)
    run([village], [record(FULL)], tmp_path / "vs.xlsx", no_sensitive=True)
    header = sheet_rows(tmp_path / "vs.xlsx", VS)[0]
    assert "respondent/phone" not in header and "respondent/age" in header

    # `phone` is sensitive in version 2 only: its data from version 1 goes too.
    old = record({"name": "x", "phone": "555"}, form_id="survey", form_version="1")
    run([v2, v1], [old], tmp_path / "s.json", fmt="json", no_sensitive=True)
    doc = json.loads((tmp_path / "s.json").read_text("utf-8"))
    assert doc["submissions"][0]["answers"] == {"name": "x"}
    run([v2, v1], [old], tmp_path / "s.xlsx", no_sensitive=True)
    assert "phone" not in sheet_rows(tmp_path / "s.xlsx", "survey")[0]


def test_sensitive_repeat_drops_its_sheet(tmp_path):
    form = form_of(
        """
        id: f
        version: "1"
        questions:
          - {name: a, type: text}
          - name: victims
            type: repeat
            sensitive: true
            questions:
              - {name: victim_name, type: text}
        """
    )
    rec = record({"a": "x", "victims": [{"victim_name": "secret"}]}, form_id="f")
    run([form], [rec], tmp_path / "f.xlsx", no_sensitive=True)
    assert openpyxl.load_workbook(tmp_path / "f.xlsx").sheetnames == ["f"]
    run([form], [rec], tmp_path / "f.jsonl", fmt="jsonl", no_sensitive=True)
    line = json.loads((tmp_path / "f.jsonl").read_text("utf-8"))
    assert line["answers"] == {"a": "x"}


# -- overflow, summary, sheet names -----------------------------------------------------


def test_rows_beyond_the_sheet_limit_continue_on_further_sheets(village, tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx_mod, "MAX_SHEET_ROWS", 4)  # header + 3 rows per sheet
    one = {**CALM, "incidents": [{"incident_date": "2026-09-09", "resolved": "yes"}]}
    records = [record(one, i) for i in range(1, 8)]
    out = tmp_path / "vs.xlsx"
    result = run([village], records, out)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == [
        VS,
        f"{VS} (2)",
        f"{VS} (3)",
        "incidents",
        "incidents (2)",
        "incidents (3)",
    ]
    assert result.rows == {
        VS: 3,
        f"{VS} (2)": 3,
        f"{VS} (3)": 1,
        "incidents": 3,
        "incidents (2)": 3,
        "incidents (3)": 1,
    }
    main = [r for t in wb.sheetnames[:3] for r in as_dicts(sheet_rows(out, t))]
    assert [r["_uuid"] for r in main] == [f"uuid-{i}" for i in range(1, 8)]
    assert [r["_index"] for r in main] == list(range(1, 8))  # one numbering across parts
    assert sheet_rows(out, f"{VS} (2)")[0] == sheet_rows(out, VS)[0]
    links = [r for t in wb.sheetnames[3:] for r in as_dicts(sheet_rows(out, t))]
    assert [r["_parent_index"] for r in links] == list(range(1, 8))


def test_summary_sheet_counts_and_chart(tmp_path):
    form = form_of(
        """
        id: visits
        version: "1"
        summary_by: district
        languages: [ky, ru]
        choices:
          district:
            - {name: kara_suu, label: {ky: Кара-Суу району, ru: Кара-Суйский район}}
            - {name: at_bashy, label: {ky: Ат-Башы району, ru: Ат-Башинский район}}
        questions:
          - name: district
            type: select_one district
            label: {ky: Район, ru: Район}
        """
    )
    plan = [("aida", "at_bashy"), ("aida", "kara_suu"), ("bakyt", "at_bashy"), ("aida", None)]
    records = [
        record({"district": d} if d else {}, i, enumerator=e, form_id="visits")
        for i, (e, d) in enumerate(plan, 1)
    ]
    out = tmp_path / "v.xlsx"
    result = run([form], records, out, summary=True, lang="ru")
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["summary", "visits"]
    rows = [r for r in sheet_rows(out, "summary") if any(v is not None for v in r)]
    # The sheet's own words follow --lang too.
    assert rows[1] == ("анкеты", 4)
    assert ("интервьюер", "анкеты") in rows
    assert ("aida", 3) in rows and ("bakyt", 1) in rows
    # By district in choice order, with labels in the chosen language, blanks last.
    start = rows.index(("Район", "анкеты"))
    assert rows[start + 1 : start + 4] == [
        ("Кара-Суйский район", 1),
        ("Ат-Башинский район", 2),
        ("(пусто)", 1),
    ]
    charts = wb["summary"]._charts
    assert len(charts) == 2 and all(type(c).__name__ == "BarChart" for c in charts)
    assert result.rows == {"visits": 4}

    # Without --lang the sheet (read by people, not scripts) is in the form's default language.
    run([form], records, tmp_path / "default.xlsx", summary=True)
    default = sheet_rows(tmp_path / "default.xlsx", "summary")
    assert ("Кара-Суу району", 1) in default and ("анкеталар", 4) in default


def test_sheet_names_are_excel_safe_and_unique():
    names = SheetNames(reserved=["summary"])
    assert names.take("Summary") == "Summary (2)"
    assert names.take("a/b:c*d?e[f]g\\h") == "a_b_c_d_e_f_g_h"
    long = "x" * 40
    first, second = names.take(long), names.take(long.upper())
    assert first == "x" * 31 and second == "X" * 27 + " (2)"
    assert names.take("History") == "History_"
    cont = names.continuation("y" * 31, 2)
    assert cont == "y" * 27 + " (2)" and len(cont) <= 31


# -- CSV, JSON, zip --------------------------------------------------------------------


def _same(xlsx_value: Any, text: str) -> bool:
    """A CSV cell shows what the xlsx cell holds (modulo the injection apostrophe)."""
    if xlsx_value is None:
        return text == ""
    if isinstance(xlsx_value, bool) or not isinstance(xlsx_value, int | float | dt.datetime):
        return text == xlsx_value or (text[:1] == "'" and text[1:] == xlsx_value)
    if isinstance(xlsx_value, dt.datetime):  # xlsx gives dates back as midnight datetimes
        return text in (xlsx_value.isoformat(), xlsx_value.date().isoformat())
    return float(text) == xlsx_value and text[:1] != "'"


def test_csv_matches_xlsx_modulo_injection_prefix(village, tmp_path):
    nasty = {**FULL, "village": '=HYPERLINK("http://x","y")', "phone": "+7 700"}
    records = [record(nasty), record(CALM, 2), record({**CALM, "village": "-5"}, 3)]
    run([village], records, tmp_path / "vs.xlsx")
    result = run([village], records, tmp_path / "csv", fmt="csv")
    assert sorted(p.name for p in result.paths) == ["incidents.csv", "village_safety.csv"]
    assert not list((tmp_path / "csv").glob("*.part"))
    # The same tables, but for names: CSV files are named after the form id, the xlsx
    # main sheet after its title, and _parent_table_name names each one's own.
    for table, sheet in (("village_safety", VS), ("incidents", "incidents")):
        raw = (tmp_path / "csv" / f"{table}.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        got = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        want = [tuple("village_safety" if v == VS else v for v in row)
                for row in sheet_rows(tmp_path / "vs.xlsx", sheet)]  # fmt: skip
        assert [len(r) for r in got] == [len(r) for r in want]
        pairs = [
            (w, g) for gr, wr in zip(got, want, strict=True) for g, w in zip(gr, wr, strict=True)
        ]
        bad = [(w, g) for w, g in pairs if not _same(w, g)]
        assert bad == []
    main_text = (tmp_path / "csv" / "village_safety.csv").read_text("utf-8-sig")
    main = list(csv.DictReader(io.StringIO(main_text, newline="")))
    assert main[0]["village"] == '\'=HYPERLINK("http://x","y")'
    assert main[0]["respondent/phone"] == "'+7 700"
    assert main[2]["village"] == "'-5"
    assert main[0]["respondent/age"] == "34" and main[0]["today"] == "2026-11-02"
    assert main[0]["_submission_time"] == "2026-11-02T09:30:00"
    assert main[1]["village"] == "Ат-Башы"


def test_csv_negative_numbers_are_not_prefixed(tmp_path):
    form = _injection_form()
    run([form], [record({"count": -5, "remark": "-5"})], tmp_path / "c", fmt="csv")
    rows = list(csv.DictReader((tmp_path / "c" / "notes.csv").open(encoding="utf-8-sig")))
    assert (rows[0]["count"], rows[0]["remark"]) == ("-5", "'-5")


def test_zip_output(village, tmp_path):
    out = tmp_path / "vs.zip"
    result = run([village], [record(FULL), record(CALM, 2)], out, fmt="csv")
    assert result.paths == [out]
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["incidents.csv", "village_safety.csv"]
        text = zf.read("incidents.csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ["2026-10-01", "no", "1", "village_safety", "1", "1", "uuid-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vs.zip"]  # no staging left


def test_json_round_trips_answers(village, tmp_path):
    records = [record(FULL), record(CALM, 2)]
    result = run([village], records, tmp_path / "vs.json", fmt="json")
    doc = json.loads((tmp_path / "vs.json").read_text("utf-8"))
    assert doc["form_id"] == "village_safety" and doc["versions"] == ["2026-11-01"]
    assert doc["format_version"] == 1
    assert [s["answers"] for s in doc["submissions"]] == [FULL, CALM]
    first = doc["submissions"][0]
    assert {k: first[k] for k in ("uuid", "revision", "form_version", "status")} == {
        "uuid": "uuid-1",
        "revision": 1,
        "form_version": "2026-11-01",
        "status": "final",
    }
    assert (first["enumerator"], first["device_id"]) == ("aida", "dev-1")
    assert first["submission_time"] == "2026-11-02T09:30:00Z"
    assert result.submissions == 2

    run([village], records, tmp_path / "vs.jsonl", fmt="jsonl")
    lines = (tmp_path / "vs.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line)["answers"] for line in lines] == [FULL, CALM]
    assert "Кара-Суу" in lines[0]  # not \u-escaped

    run([village], [], tmp_path / "empty.json", fmt="json")
    assert json.loads((tmp_path / "empty.json").read_text("utf-8"))["submissions"] == []


def test_json_with_labels(village, tmp_path):
    run([village], [record(FULL)], tmp_path / "ky.json", fmt="json", lang="ky")
    answers = json.loads((tmp_path / "ky.json").read_text("utf-8"))["submissions"][0]["answers"]
    assert answers["oblast"] == "Ош облусу"
    assert answers["sources"] == ["Жер", "Суу"]
    assert answers["incidents"][0]["resolved"] == "Жок"
    assert answers["age"] == 34 and answers["village"] == "Кара-Суу"


# -- streaming, errors -----------------------------------------------------------------


def test_records_are_streamed_not_collected(village, tmp_path, monkeypatch):
    import yntymak_cli.export as export_mod

    monkeypatch.setattr(export_mod, "PROGRESS_EVERY", 10)
    state = {"pulled": 0}

    def records():
        for i in range(35):
            state["pulled"] += 1
            yield record(CALM, i)

    for fmt, name in (("xlsx", "s.xlsx"), ("csv", "s"), ("jsonl", "s.jsonl")):
        state["pulled"] = 0
        seen: list[tuple[int, int]] = []

        def progress(n: int, seen: list[tuple[int, int]] = seen) -> None:
            seen.append((n, state["pulled"]))

        export([village], records(), tmp_path / name, ExportOptions(fmt), progress=progress)
        # Each report comes while later records are still unread.
        assert seen == [(10, 10), (20, 20), (30, 30), (35, 35)], fmt


def test_failure_leaves_no_partial_output(village, tmp_path):
    def broken():
        yield record(FULL)
        raise RuntimeError("database went away")

    for fmt, name in (("xlsx", "x.xlsx"), ("csv", "x.zip"), ("json", "x.json")):
        with pytest.raises(RuntimeError):
            export([village], broken(), tmp_path / name, ExportOptions(fmt))
    assert list(tmp_path.iterdir()) == []


def test_bad_options_are_refused(village, tmp_path):
    with pytest.raises(InvalidInput, match="unknown export format"):
        run([village], [], tmp_path / "x", fmt="ods")
    with pytest.raises(InvalidInput, match="xlsx"):
        run([village], [], tmp_path / "x", fmt="csv", summary=True)
    with pytest.raises(InvalidInput, match="ky, ru, en"):
        run([village], [], tmp_path / "x.xlsx", lang="kk")
    with pytest.raises(InvalidInput):
        run([], [], tmp_path / "x.xlsx")


def test_output_path_that_cannot_work_is_refused_before_reading(village, tmp_path):
    pulled = []

    def records():
        pulled.append(1)
        yield record(FULL)

    folder = tmp_path / "exports"
    folder.mkdir()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    cases = [
        (folder, "xlsx", "is a folder"),  # was: the whole export, then "Is a directory: .x.part"
        (folder, "json", "is a folder"),
        (Path("/"), "jsonl", "is a folder"),  # was: an internal ValueError
        (a_file, "csv", "is a file"),  # was: "File exists"
        (a_file / "out.xlsx", "xlsx", "is a file, not a folder"),
        (folder / "x.zip", "csv", None),  # fine: for contrast
    ]
    for out, fmt, refused in cases:
        if refused is None:
            export([village], records(), out, ExportOptions(fmt))
            continue
        with pytest.raises(InvalidInput, match=refused) as err:
            export([village], records(), out, ExportOptions(fmt))
        assert str(out) in err.value.message and ".part" not in err.value.message
    assert len(pulled) == 1  # only the valid case read any record
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["exports", "notes.txt", "x.zip"]


def test_unwritable_output_fails_before_reading(village, tmp_path, monkeypatch):
    import yntymak_cli.export as export_mod

    def denied(out: Path) -> Path:
        raise PermissionError(13, "Permission denied", str(out))

    monkeypatch.setattr(export_mod, "temp_file", denied)
    pulled = []

    def records():
        pulled.append(1)
        yield record(FULL)

    for fmt, name in (("xlsx", "x.xlsx"), ("csv", "x.zip"), ("csv", "x"), ("json", "x.json")):
        out = tmp_path / "new" / name
        with pytest.raises(InvalidInput, match="cannot write .*: Permission denied"):
            export([village], records(), out, ExportOptions(fmt))
    assert pulled == []
    assert list(tmp_path.iterdir()) == []  # the folder it made for the output is gone


def test_failure_leaves_no_folder_it_created(village, tmp_path):
    def broken():
        yield record(FULL)
        raise RuntimeError("database went away")

    for fmt, name in (("xlsx", "a/b/x.xlsx"), ("csv", "a/csv"), ("json", "a/x.json")):
        with pytest.raises(RuntimeError):
            export([village], broken(), tmp_path / name, ExportOptions(fmt))
        assert list(tmp_path.iterdir()) == [], fmt
    kept = tmp_path / "kept"
    kept.mkdir()
    with pytest.raises(RuntimeError):
        export([village], broken(), kept, ExportOptions("csv"))
    assert list(tmp_path.iterdir()) == [kept] and list(kept.iterdir()) == []


def test_write_errors_name_the_output_not_a_temporary_file(village, tmp_path, monkeypatch):
    from yntymak_cli.errors import YntymakError

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(5, "Input/output error", str(tmp_path / ".x.xlsx.1234.part"))

    from openpyxl.writer.excel import ExcelWriter

    monkeypatch.setattr(ExcelWriter, "save", full)
    out = tmp_path / "x.xlsx"
    with pytest.raises(YntymakError, match=r"writing .*x\.xlsx failed: Input/output") as err:
        run([village], [record(FULL)], out)
    assert ".part" not in err.value.message and err.value.exit_code == 1
    assert list(tmp_path.iterdir()) == []


def test_temporary_names_are_unique_per_export(tmp_path):
    from yntymak_cli.export.output import temp_file

    out = tmp_path / "x.xlsx"
    first, second = temp_file(out), temp_file(out)
    assert first != second and first.parent == second.parent == tmp_path
    assert first.name.startswith(".x.xlsx.") and first.name.endswith(".part")


def test_json_versions_listed_once_and_void_reason_kept(tmp_path):
    # The same version stored twice (a label fixed without bumping the version).
    a = form_of('id: s\nversion: "1"\nquestions:\n  - {name: q, type: text, label: A}\n')
    b = form_of('id: s\nversion: "1"\nquestions:\n  - {name: q, type: text, label: B}\n')
    voided = record({"q": "x"}, form_id="s", status="void", void_reason="duplicate interview")
    run([b, a], [voided], tmp_path / "s.json", fmt="json")
    doc = json.loads((tmp_path / "s.json").read_text("utf-8"))
    assert doc["versions"] == ["1"]
    assert doc["submissions"][0]["void_reason"] == "duplicate interview"
