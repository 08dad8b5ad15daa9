"""XLSForm interop through the CLI: every programme form exports to an XLSForm pyxform
compiles, imports back to the same form, and a collected submission of an imported form
exports with the columns a Kobo user expects."""

from __future__ import annotations

import openpyxl
import pytest

from yntymak_cli.cli import app
from yntymak_cli.forms.loader import load_form

from .conftest import FORMS
from .helpers import runner


def _comparable(form) -> dict:
    data = form.definition_dict()
    data.pop("title", None)  # pyxform takes the title in one language only
    return data


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.stem for p in FORMS.glob("*.yaml")))
def test_programme_forms_round_trip_through_xlsform(tmp_path, name):
    from pyxform.xls2xform import convert

    xlsx = tmp_path / f"{name}.xlsx"
    result = runner.invoke(
        app, ["forms", "export-xlsform", str(FORMS / f"{name}.yaml"), "-o", str(xlsx)]
    )
    assert result.exit_code == 0, result.output
    compiled = convert(xlsform=str(xlsx), validate=False)
    assert "<h:html" in compiled.xform
    back = tmp_path / "back.yaml"
    result = runner.invoke(app, ["forms", "import-xlsform", str(xlsx), "-o", str(back)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["forms", "validate", str(back)]).exit_code == 0
    original = load_form(FORMS / f"{name}.yaml").require()
    imported = load_form(back).require()
    assert _comparable(imported) == _comparable(original)


def test_rejected_xlsform_is_a_clean_exit_2(tmp_path):
    bad = tmp_path / "bad.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "survey"
    ws.append(["type", "name", "label"])
    ws.append(["select_one nowhere", "q", "Q"])
    wb.save(bad)
    result = runner.invoke(app, ["forms", "import-xlsform", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bad.xlsx" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_imported_form_collects_and_exports_kobo_columns(tmp_path):
    xlsx = tmp_path / "hh.xlsx"
    wb = openpyxl.Workbook()
    survey = wb.active
    survey.title = "survey"
    rows = [
        ["type", "name", "label::English (en)", "label::Russian (ru)", "relevant"],
        ["begin_group", "hh", "Household", "Домохозяйство", ""],
        ["integer", "size", "Size", "Размер", ""],
        ["select_multiple src", "src", "Sources", "Источники", ""],
        ["end_group", "", "", "", ""],
        ["begin_repeat", "member", "Member", "Член", ""],
        ["text", "mname", "Name", "Имя", ""],
        ["end_repeat", "", "", "", ""],
        ["geopoint", "gps", "Location", "Место", ""],
    ]
    for row in rows:
        survey.append(row)
    choices = wb.create_sheet("choices")
    choices.append(["list_name", "name", "label::English (en)", "label::Russian (ru)"])
    choices.append(["src", "land", "Land", "Земля"])
    choices.append(["src", "water", "Water", "Вода"])
    settings = wb.create_sheet("settings")
    settings.append(["form_id", "version"])
    settings.append(["household", "2026-11-01"])
    wb.save(xlsx)
    yaml_path = tmp_path / "household.yaml"
    assert (
        runner.invoke(app, ["forms", "import-xlsform", str(xlsx), "-o", str(yaml_path)]).exit_code
        == 0
    )
    answers = tmp_path / "a.yaml"
    answers.write_text(
        "size: 4\nsrc: [water]\nmember:\n  - {mname: Айгүл}\n  - {mname: Бакыт}\n"
        "gps: '42.87 74.59 800 5'\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["collect", str(yaml_path), "--answers", str(answers)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "hh_export.xlsx"
    assert runner.invoke(app, ["export", "household", "-o", str(out)]).exit_code == 0
    book = openpyxl.load_workbook(out)
    header = [c.value for c in book["household"][1]]
    for column in (
        "hh/size",
        "hh/src",
        "hh/src/land",
        "hh/src/water",
        "gps",
        "_gps_latitude",
        "_gps_longitude",
        "_gps_altitude",
        "_gps_precision",
        "_uuid",
        "_submission_time",
        "_index",
    ):
        assert column in header
    member = book["member"]
    member_header = [c.value for c in member[1]]
    assert {"member/mname", "_index", "_parent_index", "_parent_table_name"} <= set(member_header)
    assert member.max_row == 3
