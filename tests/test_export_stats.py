"""SPSS .sav and Stata .dta export (export/stats.py): every file is read back with pyreadstat."""

from __future__ import annotations

import csv
import datetime as dt
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from yntymak_cli.cli import app
from yntymak_cli.export import ExportOptions, export
from yntymak_cli.export.stats import variable_names

from .helpers import DATA, Field, collect_in, collected, english_words, runner, yn

pyreadstat = pytest.importorskip("pyreadstat")

NAMES_FORM = DATA / "stats_names.yaml"
READ = {"sav": pyreadstat.read_sav, "dta": pyreadstat.read_dta}


def run(*args: Any, code: int = 0, form: str = "village_safety") -> str:
    # English messages: the forms' default languages would otherwise be used.
    result = runner.invoke(app, ["--lang", "en", "export", form, *map(str, args)])
    assert result.exit_code == code, (result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.output


def unzip(path: Path, into: Path) -> dict[str, Path]:
    with zipfile.ZipFile(path) as zf:
        zf.extractall(into)
        return {name: into / name for name in zf.namelist()}


def variables(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_values_types_labels_and_repeats_in_a_zip(tmp_path, fmt):
    uuid = collected()
    out = tmp_path / "vs.zip"
    run("--format", fmt, "-o", out, "--lang", "ru")
    files = unzip(out, tmp_path / "x")
    assert set(files) == {f"village_safety.{fmt}", f"incidents.{fmt}", "_variables.csv"}
    df, meta = READ[fmt](files[f"village_safety.{fmt}"])
    row = df.iloc[0]
    uuid_var = "v_uuid" if fmt == "sav" else "_uuid"
    index_var = "v_index" if fmt == "sav" else "_index"
    assert row[uuid_var] == uuid
    # numbers numeric, text text, dates real dates
    assert row["age"] == 34 and df["age"].dtype.kind == "f"
    assert row["village"] == "Кара-Суу"
    assert row["today"] == dt.date.today()
    assert meta.original_variable_types["today"] in ("DATE11", "%td")
    assert isinstance(row["v_submission_time" if fmt == "sav" else "_submission_time"], dt.datetime)
    # select_one: codes in list order, value labels in the export language (UTF-8)
    assert row["oblast"] == 1 and row["felt_tension"] == 1
    assert meta.variable_value_labels["oblast"] == {1: "Ошская область", 2: "Нарынская область"}
    assert meta.variable_value_labels["felt_tension"] == {1: "Да", 2: "Нет"}
    labels = meta.column_names_to_labels
    assert labels["oblast"] == "Область"
    # select_multiple: one 0/1 variable per choice, labelled "question: choice"
    assert (row["sources_land"], row["sources_water"], row["sources_pasture"]) == (1, 1, 0)
    assert labels["sources_water"] == "[sources/water] Причины: Вода"
    # geopoint parts numeric
    assert row["location_latitude"] == pytest.approx(40.53)
    # repeats: their own file, linked by _index / _parent_index
    inc, inc_meta = READ[fmt](files[f"incidents.{fmt}"])
    parent = "v_parent_index" if fmt == "sav" else "_parent_index"
    assert list(inc[parent]) == [row[index_var]] * 2
    assert list(inc[index_var]) == [1, 2]
    assert list(inc["incident_date"]) == [dt.date(2026, 10, 1), dt.date(2026, 10, 15)]
    assert list(inc["resolved"]) == [2, 1]
    assert inc_meta.variable_value_labels["resolved"] == {1: "Да", 2: "Нет"}
    # the mapping file: original name -> variable, label, and the codes
    mapping = {(v["table"], v["name"]): v for v in variables(files["_variables.csv"])}
    assert mapping[("village_safety", "oblast")]["codes"] == "1=osh 2=naryn"
    assert mapping[("village_safety", "sources/land")]["variable"] == "sources_land"
    assert mapping[("incidents", "_parent_index")]["variable"] == parent


@pytest.mark.parametrize("lang, yes", [("ky", "Ооба"), ("ru", "Да"), ("en", "Yes")])
def test_labels_follow_lang_and_default_to_the_forms(tmp_path, lang, yes):
    collected()
    run("--format", "dta", "-o", tmp_path / "a.zip", "--lang", lang)
    files = unzip(tmp_path / "a.zip", tmp_path / "x")
    _, meta = READ["dta"](files["village_safety.dta"])
    assert meta.variable_value_labels["felt_tension"][1] == yes
    # without --lang: the form's default language (village_safety: ky)
    run("--format", "sav", "-o", tmp_path / "b.zip")
    files = unzip(tmp_path / "b.zip", tmp_path / "y")
    _, meta = READ["sav"](files["village_safety.sav"])
    assert meta.column_names_to_labels["village"] == "Айыл"
    assert meta.variable_value_labels["felt_tension"] == {1: "Ооба", 2: "Жок"}


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_a_folder_holds_one_file_per_table(tmp_path, fmt):
    collected()
    out = tmp_path / "out"
    run("--format", fmt, "-o", f"{out}/")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"village_safety.{fmt}", f"incidents.{fmt}", "_variables.csv"]
    )
    run("--format", fmt, "-o", f"{out}/")  # an earlier export is replaced


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_renaming_of_long_dotted_and_case_clashing_names(tmp_path, fmt):
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        "household.size.: 5\nhead-of-household: Айгүл\n"
        "how_many_people_in_this_village_took_part_in_the_last_community_meeting_a: 40\n"
        "how_many_people_in_this_village_took_part_in_the_last_community_meeting_b: 'yes'\n"
        "Age: 30\nage: 30.5\nborn: '1996-03-08'\n",
        encoding="utf-8",
    )
    args = ["collect", str(NAMES_FORM), "--answers", str(answers), "--enumerator", "A"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = tmp_path / f"names.{fmt}"
    run("-o", out, "--lang", "ky", form="stats_names")  # the suffix names the format
    run("-o", out, "--lang", "ky", form="stats_names")  # an earlier export is replaced
    df, meta = READ[fmt](out)
    mapping = {v["name"]: v for v in variables(tmp_path / "names_variables.csv")}
    names = {name: v["variable"] for name, v in mapping.items()}
    for name in df.columns:
        if fmt == "dta":
            assert len(name) <= 32 and name.replace("_", "a").isalnum() and name.isascii()
        else:
            assert len(name.encode()) <= 64 and not name.endswith(".") and name[0].isalpha()
    assert len({n.lower() for n in df.columns}) == len(df.columns)
    long_a = "how_many_people_in_this_village_took_part_in_the_last_community_meeting_a"
    long_b = long_a[:-1] + "b"
    if fmt == "sav":
        assert names["household.size."] == "household.size"
        assert names["head-of-household"] == "head_of_household"
        assert names[long_a] == long_a[:64]
        assert names[long_b] == long_a[:62] + "_2"
        assert names["_uuid"] == "v_uuid"
    else:
        assert names["household.size."] == "household_size_"
        assert names[long_a] == long_a[:32]
        assert names[long_b] == long_a[:28]  # room for the label set's number
        assert names["_uuid"] == "_uuid"
    assert names["Age"] == "Age" and names["age"] == "age_2"
    # values under the new names; the original name in the label of a renamed variable
    assert df[names["household.size."]][0] == 5
    assert df[names["age"]][0] == 30.5
    assert df["born"][0] == dt.date(1996, 3, 8)
    assert df[names[long_b]][0] == 1
    labels = meta.column_names_to_labels
    assert labels[names["head-of-household"]] == "[head-of-household] Үй-бүлө башчысы"
    assert labels["born"] == "Туулган күнү"
    assert mapping["head-of-household"]["label"] == "Үй-бүлө башчысы"


def test_names_are_deterministic_and_reserved_words_avoided():
    originals = ["to", "_n", "1st", "a" * 40, "a" * 40 + "b", "x.y.", "ü"]
    assert variable_names(originals, "sav") == variable_names(originals, "sav")
    assert variable_names(originals, "sav")[:3] == ["to_", "v_n", "v1st"]
    dta = variable_names(originals, "dta")
    assert dta[:3] == ["to", "_n_", "v1st"]
    assert dta[3:5] == ["a" * 32, "a" * 30 + "_2"]
    assert dta[5:] == ["x_y_", "_"]


VERSION = """
id: stable
version: "{version}"
title: Stable codes
languages: [en, ru]
default_language: en
choices:
  crops:
{choices}
questions:
  - name: crop
    type: select_one crops
    label: {{en: Crop, ru: Культура}}
"""
CHOICE = "    - {{name: {0}, label: {{en: {1}, ru: {2}}}}}"


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_codes_stay_stable_when_a_later_version_adds_a_choice_in_the_middle(load, tmp_path, fmt):
    wheat, rice, barley = (
        ("wheat", "Wheat", "Пшеница"),
        ("rice", "Rice", "Рис"),
        (
            "barley",
            "Barley",
            "Ячмень",
        ),
    )

    def version(name: str, *choices: tuple[str, str, str]):
        text = "\n".join(CHOICE.format(*c) for c in choices)
        return load(VERSION.format(version=name, choices=text))

    v1 = version("1", wheat, barley)
    v2 = version("2", wheat, rice, barley)  # rice added between the two

    def record(n: int, form, crop: str) -> dict[str, Any]:
        return {"uuid": f"u{n}", "form_version": form.version, "status": "final",
                "answers": {"crop": crop}}  # fmt: skip

    old = tmp_path / f"old.{fmt}"
    export([v1], [record(1, v1, "barley")], old, ExportOptions(fmt))
    new = tmp_path / f"new.{fmt}"
    records = [record(1, v1, "barley"), record(2, v2, "rice"), record(3, v2, "wheat")]
    export([v2, v1], records, new, ExportOptions(fmt, lang="ru"))
    old_df, old_meta = READ[fmt](old)
    new_df, new_meta = READ[fmt](new)
    assert old_df["crop"][0] == new_df["crop"][0] == 2  # barley keeps its code
    assert list(new_df["crop"]) == [2, 3, 1]  # rice: the next free code, not 2
    assert old_meta.variable_value_labels["crop"] == {1: "Wheat", 2: "Barley"}
    assert new_meta.variable_value_labels["crop"] == {1: "Пшеница", 2: "Ячмень", 3: "Рис"}
    codes = {v["name"]: v["codes"] for v in variables(tmp_path / "new_variables.csv")}
    assert codes["crop"] == "1=wheat 2=barley 3=rice"


def test_calculated_yes_no_and_odd_values(load, tmp_path):
    form = load(
        """
        id: calc
        version: "1"
        title: Calc
        questions:
          - {name: n, type: integer, label: N}
          - {name: ok, type: calculate, calculation: "if(${n} > 1, 'yes', 'no')"}
        """
    )
    records = [
        {"uuid": "a", "answers": {"n": 2, "ok": "yes"}},
        {"uuid": "b", "answers": {"n": "lots", "ok": "no"}},  # a hand-edited value
    ]
    out = tmp_path / "calc.sav"
    export([form], records, out, ExportOptions("sav"))
    df, meta = READ["sav"](out)
    assert list(df["ok"]) == [1, 0]
    assert meta.variable_value_labels["ok"] == {1: "Yes", 0: "No"}
    assert list(df["n"]) == ["2", "lots"]  # text that does not fit a number is kept, as text


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_long_text_is_kept_whole(load, tmp_path, fmt):
    form = load(
        """
        id: notes
        version: "1"
        title: Notes
        questions:
          - {name: story, type: text, label: Story}
        """
    )
    # 5,501 characters: a long string in SPSS, a strL in Stata. (SPSS pads strings with
    # spaces, so trailing spaces do not survive a .sav file.)
    story = "Кыргызстан " * 500 + "!"
    out = tmp_path / f"notes.{fmt}"
    records = [{"uuid": "a", "answers": {"story": story}}, {"uuid": "b", "answers": {}}]
    export([form], records, out, ExportOptions(fmt))
    df, _ = READ[fmt](out)
    assert list(df["story"]) == [story, ""]  # a missing string reads back as ""


def test_missing_pyreadstat_names_the_extra(tmp_path, monkeypatch):
    collected()
    monkeypatch.setitem(sys.modules, "pyreadstat", None)
    out = run("--format", "sav", "-o", tmp_path / "vs.zip", code=2)
    assert "pip install 'yntymak-cli[stats]'" in out
    assert len(out.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("lang", ["ky", "ru"])
def test_missing_pyreadstat_is_said_in_the_language(tmp_path, monkeypatch, lang):
    collected()
    monkeypatch.setitem(sys.modules, "pyreadstat", None)
    args = ["--lang", lang, "export", "village_safety", "--format", "dta", "-o", tmp_path / "a.zip"]
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2
    # the command to run is the only thing left in English (Latin letters)
    allow = {"pyreadstat", "pip install 'yntymak-cli[stats]'"}
    assert english_words(result.output, allow) == set(), result.output


def test_bad_outputs_are_refused_in_one_line(tmp_path):
    collected()
    # a form with repeats cannot be one .sav file
    out = run("-o", tmp_path / "vs.sav", code=2)
    assert "vs.zip" in out and len(out.strip().splitlines()) == 1
    # a file that is not an earlier export is never replaced
    precious = tmp_path / "notes.dta"
    precious.write_text("my notes")
    run("--format", "dta", "-o", tmp_path / "keep.zip", code=0)
    (tmp_path / "notes.zip").write_text("not a zip")
    out = run("--format", "dta", "-o", tmp_path / "notes.zip", code=2)
    assert (tmp_path / "notes.zip").read_text() == "not a zip"
    # --format and the name disagree
    run("--format", "sav", "-o", tmp_path / "vs.dta", code=2)
    # a path that cannot be written (its "folder" is a file)
    out = run("--format", "sav", "-o", precious / "vs.zip", code=2)
    assert len(out.strip().splitlines()) == 1
    assert precious.read_text() == "my notes"
    # --paradata has no place in these files
    run("--format", "sav", "-o", tmp_path / "p.zip", "--paradata", code=2)


def test_an_earlier_export_is_replaced(tmp_path):
    collected()
    out = tmp_path / "vs.zip"
    run("--format", "sav", "-o", out)
    collected()
    run("--format", "sav", "-o", out)
    df, _ = READ["sav"](unzip(out, tmp_path / "x")["village_safety.sav"])
    assert len(df) == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_hq_export(field: Field):
    a1 = collect_in(field.a, field.tmp, "Ак-Суу")
    assert "1 new" in field.import_(field.bundle(field.a))
    out = field.tmp / "hq.zip"
    yn(field.hq, "hq", "export", "village_safety", "--format", "dta", "-o", out, "--lang", "ru")
    files = unzip(out, field.tmp / "x")
    df, meta = READ["dta"](files["village_safety.dta"])
    assert list(df["_uuid"]) == [a1]
    assert df["village"][0] == "Ак-Суу"
    assert meta.variable_value_labels["oblast"][1] == "Ошская область"


def test_spss_labels_are_cut_on_a_character_boundary(load, tmp_path):
    long_label = "Ж" * 200 + "a"  # 401 bytes: past SPSS's 256 for a variable label
    form = load(
        f"""
        id: cut
        version: "1"
        title: Cut
        choices:
          c:
            - {{name: x, label: {"я" * 100}}}
        questions:
          - {{name: q, type: select_one c, label: {long_label}}}
        """
    )
    out = tmp_path / "cut.sav"
    export([form], [{"uuid": "a", "answers": {"q": "x"}}], out, ExportOptions("sav"))
    _, meta = READ["sav"](out)
    assert meta.column_names_to_labels["q"] == "Ж" * 128
    assert meta.variable_value_labels["q"] == {1: "я" * 60}
