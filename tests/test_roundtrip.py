"""Property: answers -> engine -> SQLite -> export -> read back gives the same answers,
including text that looks like a formula and Kyrgyz/Russian letters."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yntymak_cli.collect.session import submit_answers
from yntymak_cli.export import ExportOptions, export
from yntymak_cli.forms.loader import load_form_text
from yntymak_cli.store.db import Store

FORM = load_form_text(
    """
id: rt
version: "1"
questions:
  - {name: note_text, type: text, label: T}
  - {name: n, type: integer, label: N}
  - {name: x, type: decimal, label: X}
  - {name: day, type: date, label: D}
  - {name: pick, type: select_multiple l, label: P}
  - type: repeat
    name: items
    label: I
    questions:
      - {name: item, type: text, label: Item}
choices:
  l:
    - {name: a, label: A}
    - {name: b, label: B}
    - {name: c, label: C}
""",
    "rt.yaml",
).require()

# Printable text (Excel cannot hold control characters); formula-like starts included.
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40
).filter(lambda s: s.strip() == s and s.strip())
formula_like = st.sampled_from(["=1+1", '=HYPERLINK("http://x","y")', "+7 700", "-5", "@x"])
answers = st.fixed_dictionaries(
    {
        "note_text": st.one_of(text, formula_like, st.sampled_from(["Кара-Суу", "Ысык-Көл ңөү"])),
        "n": st.integers(-(10**12), 10**12),
        "x": st.floats(-1e9, 1e9, allow_nan=False).map(lambda f: round(f, 6)),
        "day": st.dates(dt.date(1900, 3, 1), dt.date(2100, 1, 1)).map(dt.date.isoformat),
        "pick": st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True),
        "items": st.lists(st.fixed_dictionaries({"item": text}), max_size=3),
    }
)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(data=answers)
def test_answers_survive_store_and_export(data):
    with tempfile.TemporaryDirectory() as tmp:
        check_round_trip(Path(tmp), data)


def check_round_trip(tmp_path: Path, data: dict) -> None:
    store = Store(tmp_path / "rt.db")
    uuid = submit_answers(store, FORM, data, lang="en", enumerator="e", device_id="d")
    stored = store.get_record(uuid)["answers"]
    assert {k: stored[k] for k in data if data[k] != []} == {
        k: v for k, v in data.items() if v != []
    }

    out = tmp_path / "rt.json"
    export([FORM], store.iter_records("rt"), out, ExportOptions(fmt="json"))
    [sub] = json.loads(out.read_text(encoding="utf-8"))["submissions"]
    assert sub["answers"] == stored

    xlsx = tmp_path / "rt.xlsx"
    export([FORM], store.iter_records("rt"), xlsx, ExportOptions(fmt="xlsx"))
    book = openpyxl.load_workbook(xlsx)
    sheet = book["rt"]
    row = dict(zip([c.value for c in sheet[1]], [c.value for c in sheet[2]], strict=True))
    assert row["note_text"] == data["note_text"]
    assert row["n"] == data["n"] or str(row["n"]) == str(data["n"])  # 16+ digits stay text
    assert abs(row["x"] - data["x"]) <= 1e-9 * max(1.0, abs(data["x"]))
    assert row["day"].date().isoformat() == data["day"]
    assert row["pick"] == " ".join(data["pick"])
    items = (
        [r[0] for r in book["items"].iter_rows(min_row=2, values_only=True)]
        if data["items"]
        else []
    )
    assert items == [i["item"] for i in data["items"]]
    store.close()
