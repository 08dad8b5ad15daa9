"""XLSForm import (through pyxform) and export, on small workbooks built in each test."""

from __future__ import annotations

from pathlib import Path

import pytest

from yntymak_cli.errors import InvalidInput
from yntymak_cli.forms.loader import form_from_dict, load_form, load_form_text
from yntymak_cli.forms.model import Form
from yntymak_cli.xlsform import XlsformResult, export_xlsform, import_xlsform
from yntymak_cli.xlsform import importer as imp

DATA = Path(__file__).parent / "data"


Table = str  # a sheet as text: '|'-separated cells, first line the header


def rows_of(table: Table) -> list[list[str | None]]:
    rows = []
    for line in table.strip().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append([c or None for c in cells])
    return rows


def write_xlsform(
    path: Path, survey: Table, choices: Table | None = None, settings: Table | None = None
) -> Path:
    """An .xlsx written with openpyxl, one sheet per table (as partners' Excel files are)."""
    from openpyxl import Workbook

    workbook = Workbook()
    for title, table in (("survey", survey), ("choices", choices), ("settings", settings)):
        if table is None:
            continue
        ws = workbook.active if title == "survey" else workbook.create_sheet(title)
        ws.title = title
        for row in rows_of(table):
            ws.append(row)
    workbook.save(path)
    return path


def imported(
    tmp_path: Path, survey: Table, choices: Table | None = None, settings: Table | None = None
) -> XlsformResult:
    result = import_xlsform(write_xlsform(tmp_path / "form.xlsx", survey, choices, settings))
    loaded = load_form_text(result.yaml_text, "form.yaml")
    assert loaded.errors == []
    # The YAML text reads back to exactly the data we built.
    assert loaded.form.definition_dict() == form_from_dict(result.form_data).definition_dict()
    return result


def questions(result: XlsformResult) -> dict[str, dict]:
    out: dict[str, dict] = {}

    def walk(items: list[dict]) -> None:
        for q in items:
            out[q["name"]] = q
            walk(q.get("questions", []))

    walk(result.form_data["questions"])
    return out


def kinds(result: XlsformResult) -> list[str]:
    return sorted(w.kind for w in result.warnings)


def xform(path: Path) -> str:
    from pyxform.xls2xform import convert

    return convert(xlsform=str(path), validate=False).xform


def read_sheet(path: Path, title: str) -> list[dict[str, str]]:
    from openpyxl import load_workbook

    rows = list(load_workbook(path)[title].iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


# --------------------------------------------------------------------------- import


def test_question_types(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type                   | name    | label   | calculation  | parameters
        start                  | start   |         |              |
        today                  | today   |         |              |
        deviceid               | device  |         |              |
        username               | user    |         |              |
        text                   | village | Village |              |
        integer                | age     | Age     |              |
        decimal                | weight  | Weight  |              |
        date                   | visit   | Visit   |              |
        time                   | at      | At      |              |
        datetime               | when    | When    |              |
        geopoint               | where   | Where   |              |
        select_one region      | region  | Region  |              |
        select_multiple region | regions | Regions |              |
        calculate              | twice   |         | ${age} * 2   |
        acknowledge            | ok      | Agree?  |              |
        range                  | score   | Score   |              | start=1 end=5 step=1
        note                   | bye     | Bye!    |              |
        """,
        """
        list_name | name  | label
        region    | osh   | Osh
        region    | naryn | Naryn
        """,
    )
    assert result.warnings == []
    qs = questions(result)
    assert {name: q["type"] for name, q in qs.items()} == {
        "start": "start",
        "today": "today",
        "device": "deviceid",
        "user": "username",
        "village": "text",
        "age": "integer",
        "weight": "decimal",
        "visit": "date",
        "at": "time",
        "when": "datetime",
        "where": "geopoint",
        "region": "select_one region",
        "regions": "select_multiple region",
        "twice": "calculate",
        "ok": "acknowledge",
        "score": "range",
        "bye": "note",
    }
    assert qs["twice"]["calculation"] == "${age} * 2"
    assert qs["score"]["parameters"] == {"start": "1", "end": "5", "step": "1"}
    assert result.form_data["choices"]["region"] == [
        {"name": "osh", "label": "Osh"},
        {"name": "naryn", "label": "Naryn"},
    ]


def test_question_fields_and_settings(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type    | name | label | hint    | required   | relevant   | read_only | default
        text    | who  | Name  | In full | yes        |            |           |
        integer | age  | Age   |         |            |            |           | 30
        decimal | kg   | Kg    |         | ${age} > 1 | ${age} > 0 | yes       |
        date    | day  | Day   |         |            |            |           | 2026-01-05
        note    | bye  | Bye   |         |            |            | yes       |
        """,
        settings="""
        form_title    | form_id | version | instance_name
        Village visit | visit   | 2026-01 | concat(${who}, ' ', ${age})
        """,
    )
    assert result.warnings == []
    data = result.form_data
    assert (data["id"], data["version"], data["title"]) == ("visit", "2026-01", "Village visit")
    assert data["instance_name"] == "concat(${who}, ' ', ${age})"
    assert "languages" not in data
    qs = questions(result)
    assert qs["who"] == {
        "name": "who",
        "type": "text",
        "label": "Name",
        "hint": "In full",
        "required": True,
    }
    assert qs["age"]["default"] == "30"
    assert qs["day"]["default"] == "2026-01-05"
    assert (qs["kg"]["required"], qs["kg"]["relevant"]) == ("${age} > 1", "${age} > 0")
    assert qs["kg"]["read_only"] is True
    assert "read_only" not in qs["bye"]  # a note is read-only anyway


def test_constraints_choice_filters_and_appearance(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type          | name | label | constraint | constraint_message | choice_filter | appearance
        integer       | age  | Age   | . >= 14    | 14 or more         |               |
        text          | zone | Zone  |            |                    |               |
        select_one pl | home | Home  |            |                    | area = ${zone}| minimal
        """,
        """
        list_name | name  | label | area
        pl        | osh   | Osh   | south
        pl        | naryn | Naryn | north
        """,
    )
    assert result.warnings == []
    qs = questions(result)
    assert (qs["age"]["constraint"], qs["age"]["constraint_message"]) == (". >= 14", "14 or more")
    assert qs["home"]["choice_filter"] == "area = ${zone}"
    assert qs["home"]["appearance"] == "minimal"
    assert result.form_data["choices"]["pl"][1] == {
        "name": "naryn",
        "label": "Naryn",
        "area": "north",
    }


def test_type_aliases_are_normalised(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type                     | name | label
        int                      | a    | A
        select one yn            | b    | B
        select all that apply yn | c    | C
        gps                      | d    | D
        begin group              | g    | G
        string                   | e    | E
        end group                |      |
        begin_repeat             | r    | R
        date time                | f    | F
        end_repeat               |      |
        """,
        """
        list name | name | label
        yn        | y    | Yes
        yn        | n    | No
        """,
    )
    qs = questions(result)
    assert {n: qs[n]["type"] for n in "abcdefgr"} == {
        "a": "integer",
        "b": "select_one yn",
        "c": "select_multiple yn",
        "d": "geopoint",
        "e": "text",
        "f": "datetime",
        "g": "group",
        "r": "repeat",
    }
    assert result.warnings == []


def test_languages_from_column_names(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type    | name | label::Kyrgyz (ky) | label::Russian (ru) | label::Tajik Latin
        integer | age  | Жашы               | Возраст             | Sinnu sol
        text    | town | Шаар               |                     |
        """,
        settings="""
        form_id | default_language
        f       | Kyrgyz (ky)
        """,
    )
    data = result.form_data
    assert data["languages"] == ["ky", "ru", "tajik_latin"]
    assert data["default_language"] == "ky"
    qs = questions(result)
    assert qs["age"]["label"] == {"ky": "Жашы", "ru": "Возраст", "tajik_latin": "Sinnu sol"}
    assert qs["town"]["label"] == {"ky": "Шаар"}


def test_translated_hints_messages_and_choices(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type          | name | label::en | hint::en | constraint | constraint_message::en
        select_one yn | ok   | OK?       | Please   | . = 'y'    | Say yes
        """,
        """
        list_name | name | label::en | label::ru
        yn        | y    | Yes       | Да
        yn        | n    | No        | Нет
        """,
    )
    ok = questions(result)["ok"]
    assert (ok["hint"], ok["constraint_message"]) == ({"en": "Please"}, {"en": "Say yes"})
    assert result.form_data["choices"]["yn"][1] == {"name": "n", "label": {"en": "No", "ru": "Нет"}}
    assert result.form_data["languages"] == ["en", "ru"]


def test_plain_label_in_translated_form_is_the_default_language(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type | name | label      | label::English (en)
        text | a    | Plain      | English
        text | b    | Only plain |
        """,
    )
    qs = questions(result)
    assert qs["a"]["label"] == {"default": "Plain", "en": "English"}
    assert qs["b"]["label"] == {"default": "Only plain"}
    assert result.form_data["languages"] == ["default", "en"]


def test_groups_repeats_and_repeat_count_expression(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type         | name        | label     | relevant | repeat_count | appearance
        integer      | n           | How many? |          |              |
        begin_group  | household   | Household | ${n} > 0 |              | field-list
        text         | head        | Head      |          |              |
        begin_repeat | member      | Member    |          | ${n} + 1     |
        text         | member_name | Name      |          |              |
        begin_repeat | child       | Child     |          | ${n}         |
        integer      | child_age   | Age       |          |              |
        end_repeat   |             |           |          |              |
        end_repeat   |             |           |          |              |
        end_group    |             |           |          |              |
        """,
    )
    top = result.form_data["questions"]
    assert [q["name"] for q in top] == ["n", "household"]  # no pyxform meta / _count rows
    household = top[1]
    assert household["type"] == "group"
    assert household["relevant"] == "${n} > 0"
    assert household["appearance"] == "field-list"
    member = household["questions"][1]
    assert member["type"] == "repeat"
    # pyxform moves `${n} + 1` into a generated calculate; we keep the author's text.
    assert member["repeat_count"] == "${n} + 1"
    assert [q["name"] for q in member["questions"]] == ["member_name", "child"]
    assert member["questions"][1]["repeat_count"] == "${n}"
    assert result.warnings == []


def test_pulldata_and_lookups_are_kept_aside_with_a_warning(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type      | name    | label    | calculation                  | relevant
        text      | c       | Code     |                              |
        calculate | fruit   |          | pulldata('f', 'n', 'c', ${c})|
        text      | village | Village  |                              | instance('v')/root/x[n=${c}]
        note      | shown   | ${fruit} |                              |
        calculate | double  |          | ${fruit} * 2                 |
        text      | sure    | Sure?    |                              | ${c} != ''
        """,
    )
    qs = questions(result)
    fruit = qs["fruit"]
    assert fruit["type"] == "unsupported"
    assert fruit["xlsform"] == {
        "type": "calculate",
        "calculation": "pulldata('f', 'n', 'c', ${c})",
    }
    assert "calculation" not in fruit
    village = qs["village"]
    assert village["type"] == "text" and "relevant" not in village
    assert village["xlsform"] == {"relevant": "instance('v')/root/x[n=${c}]"}
    # A calculation that uses one we cannot compute cannot run either.
    assert qs["double"]["type"] == "unsupported"
    assert qs["sure"]["relevant"] == "${c} != ''"
    messages = [str(w) for w in result.warnings]
    assert any(
        m.startswith(f"{tmp_path / 'form.xlsx'}: row 3, question 'fruit': calculation not run")
        and "pulldata()" in m
        for m in messages
    )
    assert any("row 4, question 'village': relevant not run" in m for m in messages)
    assert any("row 6, question 'double'" in m and "not asked here" in m for m in messages)
    assert set(kinds(result)) == {imp.EXPRESSION}


def test_unknown_function_and_paths(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type         | name    | label | constraint            | relevant
        text         | a       | A     | sha(., 'MD5') != ''   |
        text         | b       | B     |                       | /data/a != ''
        begin_repeat | r       | R     |                       |
        integer      | x       | X     |                       |
        end_repeat   |         |       |                       |
        integer      | first_x | First |                       | indexed-repeat(${x}, ${r}, 1) > 0
        """,
    )
    qs = questions(result)
    assert qs["a"]["xlsform"] == {"constraint": "sha(., 'MD5') != ''"}
    assert qs["b"]["relevant"] == "${a} != ''"  # an absolute path is a plain reference
    # ODK functions this engine has run here (issue 11), repeat look-ups included.
    assert qs["first_x"]["relevant"] == "indexed-repeat(${x}, ${r}, 1) > 0"
    assert kinds(result) == [imp.EXPRESSION]


def test_media_types_are_imported_and_others_become_unsupported(tmp_path: Path) -> None:
    # Issue 16: image, audio, video and file are answered here (with a path); body::accept
    # and an image's max-pixels parameter become accept and max_pixels.
    result = imported(
        tmp_path,
        """
        type     | name  | label | parameters      | relevant       | body::accept
        image    | photo | Photo | max-pixels=1024 |                |
        audio    | voice | Voice | quality=low     |                |
        file     | scan  | Scan  |                 |                | .pdf,image/*
        barcode  | code  | Code  |                 |                |
        text     | after | After |                 | ${photo} != '' |
        """,
    )
    qs = questions(result)
    assert (qs["photo"]["type"], qs["photo"]["max_pixels"]) == ("image", 1024)
    assert "xlsform" not in qs["photo"]
    assert qs["voice"]["type"] == "audio"
    assert qs["voice"]["xlsform"] == {"parameters": "quality=low"}  # goes back on export
    assert (qs["scan"]["type"], qs["scan"]["accept"]) == ("file", ".pdf,image/*")
    assert qs["code"]["type"] == "unsupported"
    assert qs["code"]["xlsform"]["type"] == "barcode"
    assert qs["after"]["relevant"] == "${photo} != ''"
    assert kinds(result).count(imp.UNSUPPORTED_TYPE) == 1


def test_media_questions_round_trip(tmp_path: Path) -> None:
    source = write_xlsform(
        tmp_path / "media.xlsx",
        """
        type  | name  | label | parameters      | body::accept
        image | photo | Photo | max-pixels=800  |
        video | clip  | Clip  |                 | video/mp4
        file  | scan  | Scan  |                 | .pdf
        """,
    )
    first, second = round_trip(source, tmp_path)
    assert same(first, second)
    rows = {r["name"]: r for r in read_sheet(tmp_path / "published.xlsx", "survey")}
    assert rows["photo"]["parameters"] == "max-pixels=800"
    assert rows["scan"]["body::accept"] == ".pdf"
    xml = xform(tmp_path / "published.xlsx")
    assert 'orx:max-pixels="800"' in xml and 'accept=".pdf"' in xml


def test_name_clash_across_groups_is_renamed(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type        | name   | label
        begin_group | mother | Mother
        text        | name   | Name
        end_group   |        |
        begin_group | father | Father
        text        | name   | Name
        end_group   |        |
        """,
    )
    # (pyxform itself rejects ${name} once the name is used twice, so no reference moves.)
    qs = questions(result)
    assert {"name", "name_2"} <= set(qs)
    assert result.form_data["questions"][1]["questions"][0]["name"] == "name_2"
    [warning] = result.warnings
    assert warning.kind == imp.RENAMED
    assert "row 6, question 'name'" in warning and "name_2" in warning
    assert "mother" in warning


def test_or_other_adds_a_choice_and_a_text_question(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type                       | name   | label
        select_one colour or_other | colour | Colour
        """,
        """
        list_name | name | label
        colour    | red  | Red
        """,
    )
    assert [c["name"] for c in result.form_data["choices"]["colour"]] == ["red", "other"]
    other = questions(result)["colour_other"]
    assert other["type"] == "text"
    assert other["relevant"] == "selected(${colour}, 'other')"
    assert kinds(result) == [imp.OR_OTHER]


def test_select_from_csv_file_next_to_the_form(tmp_path: Path) -> None:
    (tmp_path / "villages.csv").write_text(
        "name,label,district\nv1,Village 1,d1\nv2,Village 2,d2\n", encoding="utf-8"
    )
    result = imported(
        tmp_path,
        """
        type                                | name     | label    | choice_filter
        text                                | district | District |
        select_one_from_file villages.csv   | village  | Village  | district = ${district}
        select_one_from_file missing.csv    | other    | Other    |
        select_multiple_from_file places.xml| places   | Places   |
        """,
    )
    qs = questions(result)
    assert qs["village"]["type"] == "select_one villages"
    assert qs["village"]["choice_filter"] == "district = ${district}"
    assert result.form_data["choices"]["villages"] == [
        {"name": "v1", "label": "Village 1", "district": "d1"},
        {"name": "v2", "label": "Village 2", "district": "d2"},
    ]
    assert qs["other"]["type"] == "unsupported"
    assert qs["other"]["xlsform"] == {"type": "select_one_from_file missing.csv"}
    assert qs["places"]["xlsform"] == {"type": "select_multiple_from_file places.xml"}
    messages = [str(w) for w in result.warnings]
    assert any("2 choices read from 'villages.csv'" in m for m in messages)
    assert any("'missing.csv' not found next to the form" in m for m in messages)


def test_table_list_group_comes_back_as_written(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type          | name | label | hint             | appearance
        begin_group   | grid | Grid  | Tick one per row | table-list
        select_one yn | q1   | Q1    |                  |
        select_one yn | q2   | Q2    |                  |
        end_group     |      |       |                  |
        """,
        """
        list_name | name | label
        yn        | y    | Yes
        yn        | n    | No
        """,
    )
    grid = result.form_data["questions"][0]
    assert grid["appearance"] == "table-list"
    assert (grid["label"], grid["hint"]) == ("Grid", "Tick one per row")
    assert [q["name"] for q in grid["questions"]] == ["q1", "q2"]
    assert all("appearance" not in q for q in grid["questions"])


def test_settings_without_meaning_here_are_reported(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        """
        type | name | label
        text | a    | A
        """,
        settings="""
        form_id | public_key | submission_url
        my form | abc        | https://example.org
        """,
    )
    assert result.form_data["id"] == "my_form"
    assert result.form_data["version"] == "1"
    assert sorted(kinds(result)) == [imp.RENAMED, imp.SETTINGS]
    assert any("public_key, submission_url" in w for w in result.warnings)


def test_markdown_forms_are_read_too(tmp_path: Path) -> None:
    md = tmp_path / "small.md"
    md.write_text(
        "| survey |\n| | type | name | label |\n| | integer | n | N |\n", encoding="utf-8"
    )
    result = import_xlsform(md)
    assert result.form_data["id"] == "small"
    assert questions(result)["n"]["type"] == "integer"


def test_file_pyxform_rejects_is_invalid_input(tmp_path: Path) -> None:
    path = write_xlsform(
        tmp_path / "broken.xlsx",
        """
        type        | name | label
        begin_group | g    | G
        text        | a    | A
        """,
    )
    with pytest.raises(InvalidInput) as info:
        import_xlsform(path)
    message = info.value.message
    assert message.startswith(f"{path}: pyxform cannot convert this XLSForm: ")
    assert "\n" not in message and "Traceback" not in message
    assert "group" in message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("name", "content"),
    [("garbage.xlsx", b"not a zip file"), ("empty.csv", b""), ("form.txt", b"type,name")],
)
def test_unreadable_files_are_invalid_input(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=name):
        import_xlsform(path)


def test_missing_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        import_xlsform(tmp_path / "nope.xlsx")


# --------------------------------------------------------------------------- export


def test_export_village_safety_compiles_with_pyxform(tmp_path: Path) -> None:
    form = load_form(DATA / "village_safety.yaml").require()
    out = tmp_path / "village_safety.xlsx"
    warnings = export_xlsform(form, out)
    assert warnings == ["form title exported in 'ky' only: XLSForm titles are not translated"]

    survey = read_sheet(out, "survey")
    assert [r["type"] for r in survey if r["type"].startswith(("begin", "end"))] == [
        "begin_group",
        "end_group",
        "begin_repeat",
        "end_repeat",
    ]
    district = next(r for r in survey if r["name"] == "district")
    assert district["label::Kyrgyz (ky)"] == "Район"
    assert district["label::English (en)"] == "District"
    assert district["choice_filter"] == "oblast = ${oblast}"
    incidents = next(r for r in survey if r["name"] == "incidents")
    assert incidents["repeat_count"] == "${n_incidents}"
    choices = {(r["list_name"], r["name"]): r for r in read_sheet(out, "choices")}
    assert choices["district", "at_bashy"]["oblast"] == "naryn"
    assert choices["yes_no", "no"]["label::Russian (ru)"] == "Нет"
    [settings] = read_sheet(out, "settings")
    assert settings["form_id"] == "village_safety"
    assert settings["form_title"] == "Айылдагы коопсуздук"
    assert settings["default_language"] == "Kyrgyz (ky)"

    xml = xform(out)
    assert 'lang="Kyrgyz (ky)"' in xml and 'lang="Russian (ru)"' in xml
    assert "relevant=\" /data/felt_tension  = 'yes'\"" in xml
    assert 'yntymak:sensitive="true()"' in xml and 'xmlns:yntymak="urn:yntymak-cli:xforms"' in xml


def test_export_round_trips_our_own_form(tmp_path: Path) -> None:
    form = load_form(DATA / "village_safety.yaml").require()
    out = tmp_path / "vs.xlsx"
    export_xlsform(form, out)
    back = form_from_dict(import_xlsform(out).form_data).definition_dict()
    expected = form.definition_dict()
    # XLSForm titles are not translated; everything else comes back, sensitive included.
    expected["title"] = "Айылдагы коопсуздук"
    assert back == expected


def test_export_range_unsupported_and_kept_columns(tmp_path: Path) -> None:
    text = """
id: f
version: "1"
summary_by: score
questions:
  - {name: score, type: range, label: Score, parameters: {end: "5"}}
  - name: photo
    type: unsupported
    label: Photo
    xlsform: {type: image, parameters: max-pixels=800, "media::image": hint.png}
  - name: fruit
    type: text
    label: Fruit
    xlsform: {relevant: "pulldata('f', 'a', 'b', 'c') != ''"}
"""
    form = load_form_text(text).require()
    out = tmp_path / "f.xlsx"
    assert export_xlsform(form, out) == []
    rows = {r["name"]: r for r in read_sheet(out, "survey")}
    assert rows["score"]["parameters"] == "start=0 end=5 step=1"
    assert rows["photo"]["type"] == "image"
    assert rows["photo"]["parameters"] == "max-pixels=800"
    assert rows["photo"]["media::image"] == "hint.png"
    assert rows["fruit"]["relevant"] == "pulldata('f', 'a', 'b', 'c') != ''"
    xml = xform(out)
    assert 'orx:max-pixels="800"' in xml and "pulldata(" in xml
    again = import_xlsform(out)
    assert again.form_data["summary_by"] == "score"
    # An image kept as unsupported by an older import is a real image question now.
    photo = questions(again)["photo"]
    assert (photo["type"], photo["max_pixels"]) == ("image", 800)


# --------------------------------------------------------------------------- round trip


def round_trip(source: Path, tmp_path: Path) -> tuple[XlsformResult, XlsformResult]:
    """import(X), then import(export(import(X))); pyxform must compile the export."""
    first = import_xlsform(source)
    out = tmp_path / "published.xlsx"
    export_xlsform(form_from_dict(first.form_data), out)
    xform(out)
    return first, import_xlsform(out)


def same(a: XlsformResult, b: XlsformResult) -> bool:
    return form_from_dict(a.form_data).definition_dict() == (
        form_from_dict(b.form_data).definition_dict()
    )


def test_round_trip_of_structure_and_languages(tmp_path: Path) -> None:
    source = write_xlsform(
        tmp_path / "partner.xlsx",
        """
        type                   | name | label::en | label::ru | relevant  | repeat_count
        today                  | td   |           |           |           |
        select_one yn or_other | ok   | OK?       | Да?       |           |
        begin_group            | hh   | Home      | Дом       | ${ok}='y' |
        integer                | n    | Size      | Число     |           |
        begin_repeat           | m    | Member    | Член      |           | ${n} + 1
        text                   | nm   | Name      | Имя       |           |
        barcode                | face | Face      | Лицо      |           |
        end_repeat             |      |           |           |           |
        end_group              |      |           |           |           |
        begin_group            | g2   | Again     | Снова     |           |
        text                   | nm   | Name      | Имя       |           |
        end_group              |      |           |           |           |
        begin_group            | grid | Grid      | Сетка     |           |
        select_one yn          | g1   | G1        | G1        |           |
        end_group              |      |           |           |           |
        """,
        """
        list_name | name | label::en | label::ru
        yn        | y    | Yes       | Да
        yn        | n    | No        | Нет
        """,
        """
        form_id | version | default_language
        partner | 7       | en
        """,
    )
    first, second = round_trip(source, tmp_path)
    assert set(kinds(first)) == {imp.OR_OTHER, imp.RENAMED, imp.UNSUPPORTED_TYPE}
    assert first.form_data["default_language"] == "en"
    assert questions(first)["m"]["repeat_count"] == "${n} + 1"
    assert same(first, second)
    assert kinds(second) == [imp.UNSUPPORTED_TYPE]  # renames and or_other are settled


def test_round_trip_keeps_what_cannot_run_here(tmp_path: Path) -> None:
    (tmp_path / "v.csv").write_text("name,label\nv1,V1\nv2,V2\n", encoding="utf-8")
    source = write_xlsform(
        tmp_path / "partner.xlsx",
        """
        type                       | name | label | calculation      | media::image | parameters
        select_one_from_file v.csv | v    | Where |                  |              |
        calculate                  | lk   |       | pulldata('a','b')|              |
        note                       | pic  | Look  |                  | a.png        |
        image                      | face | Face  |                  |              | max-pixels=9
        range                      | r    | Rate  |                  |              | start=0 end=4
        """,
    )
    first, second = round_trip(source, tmp_path)
    qs = questions(first)
    assert qs["v"]["type"] == "select_one v"
    assert qs["lk"]["xlsform"] == {"type": "calculate", "calculation": "pulldata('a','b')"}
    assert qs["pic"]["xlsform"] == {"media::image": "a.png"}
    assert (qs["face"]["type"], qs["face"]["max_pixels"]) == ("image", 9)
    assert qs["r"]["parameters"] == {"start": "0", "end": "4", "step": "1"}
    assert same(first, second)
    assert questions(second)["v"]["type"] == "select_one v"  # an ordinary list now


def test_warning_is_a_string_with_a_kind() -> None:
    warning = imp.XlsformWarning("f.xlsx: row 2, question 'a': x", imp.EXPRESSION)
    assert isinstance(warning, str) and warning.kind == imp.EXPRESSION
    assert warning == "f.xlsx: row 2, question 'a': x"


def test_export_of_minimal_form(tmp_path: Path) -> None:
    form = Form(id="tiny", version="1", questions=[{"name": "a", "type": "text"}])
    out = tmp_path / "sub" / "tiny.xlsx"
    assert export_xlsform(form, out) == ["question 'a' has no label; its name is used"]
    assert "<a/>" in xform(out)


def test_geotrace_and_geoshape_round_trip(tmp_path: Path) -> None:
    # Issue 16: answered here now, no longer "unsupported"; a default typed with decimal
    # commas is stored as the answer would be (points joined by ";", ODK's way).
    source = write_xlsform(
        tmp_path / "plots.xlsx",
        """
        type     | name  | label | default                  | calculation
        geotrace | road  | Road  | 42,87 74,59; 42,88 74,60 |
        geoshape | plot  | Plot  |                          |
        gps      | well  | Well  |                          |
        calculate| size  |       |                          | area(${plot})
        """,
    )
    first, second = round_trip(source, tmp_path)
    qs = questions(first)
    assert (qs["road"]["type"], qs["plot"]["type"], qs["well"]["type"]) == (
        "geotrace",
        "geoshape",
        "geopoint",
    )
    assert "xlsform" not in qs["road"] and "xlsform" not in qs["plot"]
    assert qs["road"]["default"] == "42.87 74.59;42.88 74.6"
    assert imp.UNSUPPORTED_TYPE not in kinds(first)
    assert same(first, second)
    rows = {r["name"]: r for r in read_sheet(tmp_path / "published.xlsx", "survey")}
    assert (rows["road"]["type"], rows["plot"]["type"]) == ("geotrace", "geoshape")
    xml = xform(tmp_path / "published.xlsx")
    assert 'type="geotrace"' in xml and 'type="geoshape"' in xml
