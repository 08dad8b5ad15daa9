"""Issue 9 "Hardening", exporter side: forms wider than Excel allows, a full disk, and
answers of shapes no form produces, all through `yntymak export` as a user runs it."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from yntymak_cli.cli import app
from yntymak_cli.forms.loader import form_from_dict
from yntymak_cli.store.db import Store

from .helpers import runner, tmpfs

EXCEL_COLUMNS = 16_384


def stored(form_data: dict[str, Any], answers: list[dict[str, Any] | str]) -> list[str]:
    """Register a form and store one final submission per answers (a dict, or raw JSON
    text written straight into the database, as a hand-edited or foreign record would
    be). Returns the submission uuids."""
    form = form_from_dict(form_data)
    store = Store.open()
    uuids = []
    for item in answers:
        uuid = store.create_draft(form, {}, "aida", "dev-1", {})
        draft = store.get_draft(uuid)
        assert draft is not None
        store.finalise(draft, item if isinstance(item, dict) else {}, None)
        if isinstance(item, str):
            with store.write() as conn:
                conn.execute("UPDATE submissions SET answers = ? WHERE uuid = ?", [item, uuid])
        uuids.append(uuid)
    store.close()
    return uuids


def export(form_id: str, fmt: str, out: Path, *more: str):
    return runner.invoke(app, ["export", form_id, "--format", fmt, "-o", str(out), *more])


def sheets(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in wb}
    finally:
        wb.close()


# -- 1. forms wider than an Excel sheet ------------------------------------------------

WIDE_ID = "household_wellbeing_survey_2026"  # 31 characters: a sheet name's limit
CHOICES = 16_500  # select_multiple: one column per choice, past Excel's 16,384


def wide_form() -> dict[str, Any]:
    return {
        "id": WIDE_ID,
        "version": "1",
        "choices": {"many": [{"name": f"c{i:05d}", "label": f"Crop {i}"} for i in range(CHOICES)]},
        "questions": [
            {"name": "who", "type": "text", "label": "Who"},
            {"name": "crops", "type": "select_multiple many", "label": "Crops"},
            {
                "name": "plots",
                "type": "repeat",
                "label": "Plots",
                "questions": [{"name": "area", "type": "decimal", "label": "Area"}],
            },
            {"name": "note", "type": "text", "label": "Note"},
        ],
    }


@pytest.mark.slow
def test_a_form_wider_than_excel_continues_on_linked_sheets(tmp_path):
    picks = {"Айгүл": ["c00000", "c16499"], "Бакыт": ["c16383"], "Chyngyz": []}
    records = [
        {"who": who, "crops": crops, "note": "=1+1", "plots": [{"area": 0.5}]}
        for who, crops in picks.items()
    ]
    uuids = stored(wide_form(), records)
    out = tmp_path / "wide.xlsx"
    result = export(WIDE_ID, "xlsx", out)
    assert result.exit_code == 0, result.output
    book = sheets(out)

    names = list(book)
    assert all(len(n) <= 31 for n in names)
    assert len({n.lower() for n in names}) == len(names)
    main = [n for n in names if n != "plots"]
    assert main == [WIDE_ID, WIDE_ID[:26] + " (c2)"]
    assert all(len(row) <= EXCEL_COLUMNS for rows in book.values() for row in rows)
    # The user is told, naming the sheet as made (cut to fit 31 characters).
    assert repr(WIDE_ID[:26] + " (c2)") in result.stderr and "16,384" in result.stderr

    # Every column once, in the form's order, each part closed by the join keys.
    csv_dir = tmp_path / "csv"
    assert export(WIDE_ID, "csv", csv_dir).exit_code == 0
    with open(csv_dir / f"{WIDE_ID}.csv", encoding="utf-8-sig", newline="") as fh:
        all_headers = next(csv.reader(fh))
    keys = ["_uuid", "_index"]
    parts = [book[n][0] for n in main]
    assert all(list(h[-2:]) == keys for h in parts)
    others = [h for part in parts for h in part[:-2]]
    assert others == [h for h in all_headers if h not in keys]

    # Joined on _uuid, the parts give back each submission's whole row.
    joined: dict[str, dict[str, Any]] = {}
    for n in main:
        header, *rows = book[n]
        for row in rows:
            values = dict(zip(header, row, strict=True))
            whole = joined.setdefault(values["_uuid"], {})
            assert not (set(whole) - set(keys)) & set(values)  # no value twice
            whole.update(values)
    assert list(joined) == uuids
    for uuid, (who, crops) in zip(uuids, picks.items(), strict=True):
        row = joined[uuid]
        assert row["who"] == who and row["note"] == "=1+1"  # text, never a formula
        chosen = {h.split("/")[1] for h, v in row.items() if h.startswith("crops/") and v == 1}
        assert chosen == set(crops)
        flags = [v for h, v in row.items() if h.startswith("crops/")]
        assert len(flags) == CHOICES and set(flags) <= {0, 1, None}
    plots = book["plots"]
    assert [r[plots[0].index("_submission__uuid")] for r in plots[1:]] == uuids


def test_rows_and_columns_both_split(tmp_path, monkeypatch):
    from yntymak_cli.export import xlsx

    monkeypatch.setattr(xlsx, "MAX_SHEET_ROWS", 3)  # header + 2 rows per sheet
    monkeypatch.setattr(xlsx, "MAX_SHEET_COLUMNS", 5)
    form = {
        "id": "w",
        "version": "1",
        "questions": [{"name": f"q{i}", "type": "integer", "label": "Q"} for i in range(9)],
    }
    uuids = stored(form, [{f"q{i}": n * 10 + i for i in range(9)} for n in range(3)])
    out = tmp_path / "w.xlsx"
    assert export("w", "xlsx", out).exit_code == 0
    book = sheets(out)
    assert list(book) == [
        *("w", "w (c2)", "w (c3)", "w (c4)", "w (c5)", "w (c6)"),
        *("w (2)", "w (2, c2)", "w (2, c3)", "w (2, c4)", "w (2, c5)", "w (2, c6)"),
    ]
    joined: dict[int, dict[str, Any]] = {}
    for rows in book.values():
        assert len(rows[0]) <= 5 and rows[0][-2:] == ("_uuid", "_index")
        for row in rows[1:]:
            joined.setdefault(row[-1], {}).update(zip(rows[0], row, strict=True))
    assert [joined[i]["_uuid"] for i in (1, 2, 3)] == uuids
    assert [[joined[i][f"q{q}"] for q in range(9)] for i in (1, 2, 3)] == [
        [n * 10 + q for q in range(9)] for n in range(3)
    ]


# -- 2. a full disk --------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB file system (tmpfs; needs root), unmounted afterwards."""
    with tmpfs(tmp_path / "disk", "256k") as disk:
        yield disk


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under `folder`, hidden ones too, with file contents."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
    }


BIG_FORM = {
    "id": "big",
    "version": "1",
    "questions": [
        {"name": "note", "type": "text", "label": "Note"},
        {
            "name": "visits",
            "type": "repeat",
            "label": "Visits",
            "questions": [{"name": "place", "type": "text", "label": "Place"}],
        },
    ],
}


def grow() -> None:
    """Copy each stored submission 600 times with 2,000 random hex digits as its note."""
    store = Store.open()
    with store.write() as conn:
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600) "
            "INSERT INTO submissions (uuid, form_id, form_version, form_hash, status, revision,"
            " enumerator, device_id, created_at, updated_at, submission_time, answers) "
            "SELECT uuid || '-' || i, form_id, form_version, form_hash, status, revision,"
            " enumerator, device_id, created_at, updated_at, submission_time,"
            " json_set(answers, '$.note', hex(randomblob(1000))) FROM submissions, n"
        )
    store.close()


def run_export(*args: Any, **env: str) -> subprocess.CompletedProcess[str]:
    """`yntymak export` in a real process, so anything printed at exit or by a
    finaliser ("Exception ignored ...") shows in its stderr."""
    import os
    import sys

    return subprocess.run(
        [sys.executable, "-m", "yntymak_cli", "export", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )


@pytest.mark.slow
def test_a_full_disk_is_named_and_leaves_no_litter(small_disk):
    stored(BIG_FORM, [{"note": "first", "visits": [{"place": "Ош"}]}])
    outputs = [
        ("xlsx", small_disk / "big.xlsx"),
        ("csv", small_disk / "csv"),
        ("csv", small_disk / "big.zip"),
        ("jsonl", small_disk / "big.jsonl"),
    ]
    for fmt, out in outputs:  # earlier exports, which a failed one must not harm
        assert export("big", fmt, out).exit_code == 0
    before = snapshot(small_disk)

    grow()  # now far more data than the disk holds

    for fmt, out in outputs:
        result = run_export("big", "--format", fmt, "-o", out)
        assert result.returncode == 1, (fmt, out, result.stderr)
        assert result.stderr.splitlines() == [
            f"Error: disk full: {out} was not written (any earlier export there is kept)."
            " Free some space on that disk, or choose another -o"
        ]
        assert snapshot(small_disk) == before, out  # no *.part, no staging folder


@pytest.mark.slow
def test_a_full_temporary_folder_is_named_too(small_disk, tmp_path):
    # xlsx sheets are staged in the temporary folder (openpyxl) until they are packed.
    stored(BIG_FORM, [{"note": "first"}])
    grow()
    out = tmp_path / "big.xlsx"
    result = run_export("big", "-o", out, TMPDIR=str(small_disk))
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"Error: disk full: {small_disk} (the temporary folder, where xlsx sheets are staged);"
        f" {out} was not written. Free some space there, or set TMPDIR to a folder on a disk"
        " with room"
    ]
    assert not out.exists() and list(small_disk.iterdir()) == []


# -- 3. answers of shapes no question stores -------------------------------------------

ODD_FORM = {
    "id": "odd",
    "version": "1",
    "languages": ["en"],
    "summary_by": "one",
    "choices": {"ab": [{"name": "a", "label": {"en": "A"}}, {"name": "b", "label": {"en": "B"}}]},
    "questions": [
        {"name": "txt", "type": "text", "label": {"en": "Text"}},
        {"name": "num", "type": "integer", "label": {"en": "Number"}},
        {"name": "dec", "type": "decimal", "label": {"en": "Decimal"}},
        {"name": "multi", "type": "select_multiple ab", "label": {"en": "Multi"}},
        {"name": "one", "type": "select_one ab", "label": {"en": "One"}},
        {"name": "day", "type": "date", "label": {"en": "Day"}},
        {"name": "loc", "type": "geopoint", "label": {"en": "Location"}},
    ],
}
HUGE = "9" * 5000  # more digits than int() accepts (4,300)
DEEP = "[" * 500 + "]" * 500
# Raw JSON, as a hand-edited database or a foreign tool could leave it.
ODD_ANSWERS = [
    '{"txt": {"a": 1, "b": "=HYPERLINK(\\"x\\")"}, "one": {"k": "v"}, "day": {"d": 1},'
    ' "loc": {"lat": 1}, "num": [1, [2]]}',
    '{"multi": [{"name": "a"}, {"=cmd": "+1"}], "one": ["a", "b"]}',
    '{"num": ' + HUGE + ', "dec": NaN, "txt": -Infinity}',
    '{"multi": ' + DEEP + ', "txt": ' + '{"a": ' * 300 + "1" + "}" * 300 + "}",
    '{"multi": "=cmd|\' /C calc\'!A0", "txt": "@SUM(1)"}',
    "[1, 2, 3]",  # not even an object
]
FORMULA_START = ("=", "+", "-", "@")


def test_odd_answers_never_break_an_export(tmp_path):
    uuids = stored(ODD_FORM, ODD_ANSWERS)
    for args in (["--summary", "--lang", "en"], []):
        out = tmp_path / f"odd{len(args)}.xlsx"
        result = export("odd", "xlsx", out, *args)
        assert result.exit_code == 0, result.output
    assert export("odd", "csv", tmp_path / "csv").exit_code == 0
    assert export("odd", "csv", tmp_path / "csv-en", "--lang", "en").exit_code == 0
    assert export("odd", "json", tmp_path / "odd.json").exit_code == 0
    assert export("odd", "json", tmp_path / "odd-en.json", "--lang", "en").exit_code == 0

    wb = openpyxl.load_workbook(tmp_path / "odd0.xlsx")
    ws = wb["odd"]
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)  # no formula
    header = [c.value for c in ws[1]]
    rows = {
        r["_uuid"]: r
        for r in (dict(zip(header, v, strict=True)) for v in ws.iter_rows(2, values_only=True))
    }
    assert list(rows) == uuids
    first, objects, numbers, deep, formulas, not_object = (rows[u] for u in uuids)
    # Something of an unexpected shape shows as its JSON text.
    assert json.loads(first["txt"]) == {"a": 1, "b": '=HYPERLINK("x")'}
    assert json.loads(first["one"]) == {"k": "v"} and json.loads(first["num"]) == [1, [2]]
    assert json.loads(objects["multi"]) == [{"name": "a"}, {"=cmd": "+1"}]
    assert (objects["multi/a"], objects["multi/b"]) == (0, 0)
    assert numbers["num"] == HUGE and numbers["dec"] == "nan" and numbers["txt"] == "-inf"
    # Deep nesting: cut, never a crash, never a huge cell.
    for text in (deep["multi"], deep["txt"]):
        assert text.startswith(("[[[[", '{"a": {"a":')) and "…" in text and len(text) <= 1000
    assert formulas["multi"] == "=cmd|' /C calc'!A0" and formulas["txt"] == "@SUM(1)"
    assert not_object["_index"] == 6 and not_object["txt"] is None

    with open(tmp_path / "csv" / "odd.csv", encoding="utf-8-sig", newline="") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert not [c for c in cells if c.startswith(FORMULA_START) and c[1:2] not in "0123456789"]
    assert HUGE in cells and '{"a": 1, "b": "=HYPERLINK(\\"x\\")"}' in cells

    def strict(text: str) -> Any:
        def refuse(name: str) -> Any:
            raise ValueError(f"not JSON: {name}")

        return json.loads(text, parse_constant=refuse)

    for name in ("odd.json", "odd-en.json"):
        doc = strict((tmp_path / name).read_text(encoding="utf-8"))  # NaN would be invalid
        answers = [s["answers"] for s in doc["submissions"]]
        assert [s["uuid"] for s in doc["submissions"]] == uuids
        assert answers[0]["txt"] == {"a": 1, "b": '=HYPERLINK("x")'}
        assert answers[2] == {"num": HUGE, "dec": "nan", "txt": "-inf"}
        assert answers[5] == [1, 2, 3]
