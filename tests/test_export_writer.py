"""Issue 15: the xlsx writer (XlsxWriter, constant_memory) keeps every guarantee of the
openpyxl one it replaced, checked through `yntymak export` and read back with openpyxl."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from yntymak_cli.cli import app
from yntymak_cli.forms.loader import form_from_dict
from yntymak_cli.store.db import Store

from .helpers import runner

FORM = {
    "id": "notes",
    "version": "1",
    "summary_by": "kind",
    "choices": {"kind": [{"name": "a", "label": "A"}, {"name": "b", "label": "B"}]},
    "questions": [
        {"name": "remark", "type": "text", "label": "Remark"},
        {"name": "count", "type": "integer", "label": "Count"},
        {"name": "day", "type": "date", "label": "Day"},
        {"name": "seen", "type": "datetime", "label": "Seen"},
        {"name": "kind", "type": "select_one kind", "label": "Kind"},
        {
            "name": "items",
            "type": "repeat",
            "label": "Items",
            "questions": [{"name": "item", "type": "text", "label": "Item"}],
        },
    ],
}
# Text a spreadsheet would turn into a formula, an error, a link or a number.
TEXTS = [
    "=1+1",
    '=HYPERLINK("http://example.org","click")',
    "#N/A",
    "#DIV/0!",
    "http://example.org/a?b=1",
    "mailto:someone@example.org",
    "12",
    "1e5",
    "007",
    "Кара-Суу айылы",
]


def stored(answers: list[dict[str, Any]], form: dict[str, Any] = FORM) -> list[str]:
    """Register `form` and store one final submission per answers; their uuids."""
    definition = form_from_dict(form)
    store = Store.open()
    uuids = []
    for item in answers:
        uuid = store.create_draft(definition, {}, "aida", "dev-1", {})
        draft = store.get_draft(uuid)
        assert draft is not None
        store.finalise(draft, item, None)
        uuids.append(uuid)
    store.close()
    return uuids


def export(form_id: str, out: Path, *more: str) -> None:
    result = runner.invoke(app, ["export", form_id, "-o", str(out), *more])
    assert result.exit_code == 0, result.output


def test_text_stays_text(tmp_path):
    stored([{"remark": text, "items": [{"item": text}]} for text in [*TEXTS, "_x0041_"]])
    out = tmp_path / "n.xlsx"
    export("notes", out)
    wb = openpyxl.load_workbook(out)
    for title in ("notes", "items"):
        cells = list(wb[title]["A"])[1:]
        got = [(c.value, c.data_type) for c in cells[: len(TEXTS)]]
        assert got == [(t, "s") for t in TEXTS], title
        assert not wb[title]._hyperlinks
    with zipfile.ZipFile(out) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/sheet")]
        assert sheets and all(b"<f>" not in zf.read(n) for n in sheets)
        assert not [n for n in zf.namelist() if "hyperlink" in n.lower()]
        # Excel's escape syntax in an answer is itself escaped, so Excel shows "_x0041_",
        # not "A" (openpyxl reads inline strings without unescaping: "_x005F_x0041_").
        assert b"<t>_x005F_x0041_</t>" in zf.read("xl/worksheets/sheet1.xml")


def test_typed_cells_and_the_header(tmp_path):
    stored([{"remark": "x", "count": -5, "day": "2026-11-02", "seen": "2026-11-02T09:30:00+06:00"}])
    out = tmp_path / "n.xlsx"
    export("notes", out)
    ws = openpyxl.load_workbook(out)["notes"]
    header = [c.value for c in ws[1]]
    row = dict(zip(header, ws[2], strict=True))
    assert (row["count"].value, row["count"].data_type) == (-5, "n")
    day, seen = row["day"], row["seen"]
    assert day.is_date and day.value == dt.datetime(2026, 11, 2)
    assert "h" not in day.number_format and "yy" in day.number_format  # a date format
    assert seen.is_date and seen.value == dt.datetime(2026, 11, 2, 9, 30)
    assert "h" in seen.number_format  # a date and time format
    assert row["_submission_time"].is_date
    assert row["kind"].value is None  # unanswered: an empty cell
    assert all(c.font.b for c in ws[1]) and not row["remark"].font.b
    assert ws.freeze_panes == "A2"
    assert 9 <= ws.column_dimensions["A"].width <= 10  # "remark": at least 9 wide


def test_split_sheets_stay_in_table_order(tmp_path, monkeypatch):
    from yntymak_cli.export import xlsx

    monkeypatch.setattr(xlsx, "MAX_SHEET_ROWS", 3)  # header + 2 rows per sheet
    monkeypatch.setattr(xlsx, "MAX_SHEET_COLUMNS", 9)
    uuids = stored(
        [
            {"remark": f"r{i}", "count": i, "kind": "a", "items": [{"item": f"i{i}"}]}
            for i in range(5)
        ]
    )
    out = tmp_path / "n.xlsx"
    export("notes", out, "--summary")
    wb = openpyxl.load_workbook(out)
    # A continuation sheet comes right after its predecessor, though it was created
    # after the sheets of later tables.
    assert wb.sheetnames == [
        *("summary", "notes", "notes (c2)", "notes (2)", "notes (2, c2)"),
        *("notes (3)", "notes (3, c2)", "items", "items (2)", "items (3)"),
    ]
    # The workbook opens on its first sheet.
    assert wb.active is not None and wb.active.title == "summary"
    mains = [ws for ws in wb if ws.title.startswith("notes") and "c2" not in ws.title]
    got = [r[0].value for ws in mains for r in ws.iter_rows(min_row=2)]
    assert got == [f"r{i}" for i in range(5)]
    uuid_column = [c.value for c in wb["notes (c2)"][1]].index("_uuid")
    parts = [ws for ws in wb if "c2" in ws.title]
    assert [r[uuid_column].value for ws in parts for r in ws.iter_rows(min_row=2)] == uuids


def test_summary_chart_is_written(tmp_path):
    stored([{"kind": "a"}, {"kind": "b"}, {"kind": "a"}])
    out = tmp_path / "n.xlsx"
    export("notes", out, "--summary")
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert "xl/charts/chart1.xml" in names and "xl/charts/chart2.xml" in names
        chart = zf.read("xl/charts/chart2.xml").decode("utf-8")
    assert "<c:barChart>" in chart and '<c:barDir val="bar"/>' in chart
    # The kinds' counts (B8:B9) named by their labels (A8:A9), under the header in row 7
    # (rows 4 and 5: the count by enumerator, charted first).
    assert "<c:f>'summary'!$B$8:$B$9</c:f>" in chart
    assert "<c:f>'summary'!$A$8:$A$9</c:f>" in chart
    sheet = openpyxl.load_workbook(out)["summary"]
    assert [type(c).__name__ for c in sheet._charts] == ["BarChart", "BarChart"]
    assert [(r[0].value, r[1].value) for r in sheet.iter_rows(min_row=7, max_row=9)] == [
        ("Kind", "submissions"),
        ("A", 2),
        ("B", 1),
    ]


def test_paradata_sheet_comes_last(tmp_path):
    stored([{"remark": "x"}])
    out = tmp_path / "n.xlsx"
    export("notes", out, "--paradata")
    assert openpyxl.load_workbook(out).sheetnames == ["notes", "items", "paradata"]


def test_a_failed_export_leaves_no_staged_files(tmp_path, monkeypatch):
    from yntymak_cli.export import ExportOptions
    from yntymak_cli.export import export as run_export

    staging = tmp_path / "tmp"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))

    def broken():
        yield {"uuid": "u1", "revision": 1, "status": "final", "answers": {"remark": "x"}}
        raise RuntimeError("database went away")

    out = tmp_path / "out" / "n.xlsx"
    with pytest.raises(RuntimeError):
        run_export([form_from_dict(FORM)], broken(), out, ExportOptions("xlsx", summary=True))
    assert list(staging.iterdir()) == []  # XlsxWriter's row files went with their folder
    assert not (tmp_path / "out").exists()

    run_export([form_from_dict(FORM)], iter([]), out, ExportOptions("xlsx"))
    assert out.exists() and list(staging.iterdir()) == []  # and after a good one too


def test_order_sheets():
    import xlsxwriter

    from yntymak_cli.export.xlsx import order_sheets

    wb = xlsxwriter.Workbook(None, {"in_memory": True})
    a, b, c = (wb.add_worksheet(name) for name in "abc")
    order_sheets(wb, [a, c, b])
    assert [ws.name for ws in wb.worksheets()] == ["a", "c", "b"]
    assert [ws.index for ws in wb.worksheets()] == [0, 1, 2]
    with pytest.raises(ValueError):
        order_sheets(wb, [a, b])
    with pytest.raises(ValueError):
        order_sheets(wb, [a, b, b])


def test_excel_text_counts_utf16_units():
    from yntymak_cli.export.cells import EXCEL_TEXT_MAX
    from yntymak_cli.export.xlsx import excel_text

    assert excel_text("a\x00b") == ("a\ufffdb", False)
    assert excel_text("ж" * EXCEL_TEXT_MAX) == ("ж" * EXCEL_TEXT_MAX, False)
    assert excel_text("ж" * 40000) == ("ж" * EXCEL_TEXT_MAX, True)
    # Outside the BMP a character takes two units of Excel's 32,767: cut whole.
    cut, was_cut = excel_text("😀" * 20000)
    assert was_cut and cut == "😀" * (EXCEL_TEXT_MAX // 2)
    assert re.fullmatch("😀+", cut)
