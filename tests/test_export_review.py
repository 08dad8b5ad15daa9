"""Review findings on `export` and `submissions show`: the format follows the -o name, the
messages follow the form's language, a purged submission shows no empty answers table."""

from __future__ import annotations

import csv
import json
import zipfile

import openpyxl
import pytest

from yntymak_cli.cli import app

from .helpers import collected, runner

FLAT = """\
id: flat
version: "1"
questions:
  - {name: name, type: text, label: Name}
  - {name: age, type: integer, label: Age}
"""


def run(*args, **kwargs):
    return runner.invoke(app, [*map(str, args)], **kwargs)


@pytest.fixture
def flat(make_form) -> str:
    collected(make_form(FLAT, "flat.yaml"), make_form("name: Айгүл\nage: 34\n", "a.yaml"))
    return "flat"


def is_xlsx(path) -> bool:
    return zipfile.is_zipfile(path) and "xl/workbook.xml" in zipfile.ZipFile(path).namelist()


# -- 1. the format follows the -o name -------------------------------------------------------


@pytest.mark.parametrize("command", [["export"], ["hq", "export"]])
def test_a_csv_name_without_format_writes_csv(flat, tmp_path, command):
    out = tmp_path / "out.csv"
    result = run(*command, flat, "-o", out)
    assert result.exit_code == 0, result.output
    assert not is_xlsx(out)
    with open(out, encoding="utf-8-sig", newline="") as fh:
        [row] = list(csv.DictReader(fh))
    assert row["name"] == "Айгүл" and row["age"] == "34"


@pytest.mark.parametrize("command", [["export"], ["hq", "export"]])
def test_a_zip_name_without_format_writes_a_zip_of_csv_files(tmp_path, command):
    collected()
    out = tmp_path / "out.zip"
    result = run(*command, "village_safety", "-o", out)
    assert result.exit_code == 0, result.output
    names = zipfile.ZipFile(out).namelist()
    assert "village_safety.csv" in names and "incidents.csv" in names
    assert not is_xlsx(out)


@pytest.mark.parametrize("command", [["export"], ["hq", "export"]])
def test_a_trailing_slash_writes_a_csv_folder_an_existing_folder_is_refused(tmp_path, command):
    collected()
    result = run(*command, "village_safety", "-o", f"{tmp_path / 'outdir'}/")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "outdir").is_dir()
    assert {p.name for p in (tmp_path / "outdir").iterdir()} == {
        "village_safety.csv",
        "incidents.csv",
    }
    # Named without the slash, an existing folder is refused: `-o ~/Desktop` must not
    # scatter CSV files over it (a slash, or --format csv, says a folder is meant).
    existing = tmp_path / "existing"
    existing.mkdir()
    result = run(*command, "village_safety", "-o", existing)
    assert result.exit_code == 2, result.output
    assert list(existing.iterdir()) == []


def test_json_jsonl_xlsx_and_no_suffix_names(tmp_path):
    collected()
    for name in ("out.json", "out.jsonl", "out.xlsx", "report", "OUT.JSON"):
        result = run("export", "village_safety", "-o", tmp_path / name)
        assert result.exit_code == 0, (name, result.output)
    assert json.loads((tmp_path / "out.json").read_text("utf-8"))["submissions"]
    assert json.loads((tmp_path / "OUT.JSON").read_text("utf-8"))["submissions"]
    [line] = (tmp_path / "out.jsonl").read_text("utf-8").splitlines()
    assert json.loads(line)["uuid"]
    assert is_xlsx(tmp_path / "report")
    assert openpyxl.load_workbook(tmp_path / "out.xlsx").sheetnames[0] == "Айылдагы коопсуздук"


@pytest.mark.parametrize("command", [["export"], ["hq", "export"]])
def test_an_unknown_suffix_without_format_is_refused_in_one_line(tmp_path, command):
    collected()
    result = run(*command, "village_safety", "-o", tmp_path / "out.dat", "--lang", "en")
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert "out.dat" in line and "--format" in line
    assert "xlsx, csv, json, jsonl" in line
    assert list(tmp_path.iterdir()) == []
    # With --format, any name that asks for no other format is taken.
    result = run(*command, "village_safety", "--format", "xlsx", "-o", tmp_path / "out.dat")
    assert result.exit_code == 0, result.output
    assert is_xlsx(tmp_path / "out.dat")


@pytest.mark.slow
@pytest.mark.parametrize("command", [["export"], ["hq", "export"]])
@pytest.mark.parametrize(
    ("fmt", "name", "named", "example"),
    [
        ("xlsx", "a.csv", "csv", "a.xlsx"),
        ("xlsx", "a.zip", "csv", "a.xlsx"),
        ("xlsx", "a.json", "json", "a.xlsx"),
        ("json", "a.xlsx", "xlsx", "a.json"),
        ("json", "a.jsonl", "jsonl", "a.json"),
        ("jsonl", "a.json", "json", "a.jsonl"),
    ],
)
def test_a_format_the_name_contradicts_is_refused(tmp_path, command, fmt, name, named, example):
    collected()
    out = tmp_path / name
    result = run(*command, "village_safety", "--format", fmt, "-o", out, "--lang", "en")
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line == (
        f"Error: -o {out} names a {named} export, but --format is {fmt}: "
        f"give a name such as {tmp_path / example}, or --format {named}"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_csv_format_the_name_contradicts_is_refused(tmp_path):
    collected()
    out = tmp_path / "a.xlsx"
    result = run("export", "village_safety", "--format", "csv", "-o", out, "--lang", "en")
    assert result.exit_code == 2 and "does not name a CSV output" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_folder_name_is_no_xlsx_file(tmp_path):
    collected()
    given = f"{tmp_path / 'outdir'}/"
    result = run("export", "village_safety", "--format", "xlsx", "-o", given, "--lang", "en")
    assert result.exit_code == 2, result.output
    assert f"-o {given} is a folder" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no file named outdir
    result = run("export", "village_safety", "-o", f"{tmp_path / 'out.zip'}/", "--lang", "en")
    assert result.exit_code == 2 and "does not name a CSV output" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_explicit_format_agreeing_with_the_name_still_works(tmp_path):
    collected()
    for fmt, name in (("xlsx", "a.xlsx"), ("csv", "c.zip"), ("csv", "dir"), ("json", "j.json")):
        result = run("export", "village_safety", "--format", fmt, "-o", tmp_path / name)
        assert result.exit_code == 0, (fmt, name, result.output)


def test_the_help_says_how_the_format_is_chosen():
    result = run("export", "--help", env={"COLUMNS": "200"})
    assert "else the -o name's" in result.stdout
    assert "default: as the -o name says" in result.stdout


# -- 2. messages in the form's default language --------------------------------------------


def test_export_speaks_the_forms_default_language(tmp_path):
    collected()
    result = run("export", "village_safety", "-o", tmp_path / "x.xlsx")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"1 анкета -> {tmp_path / 'x.xlsx'}"


def test_export_refusals_once_the_form_is_known_are_in_its_language(tmp_path):
    collected()
    result = run("export", "village_safety", "--format", "xlsx", "-o", tmp_path / "a.csv")
    assert result.exit_code == 2
    assert result.stderr.startswith("Ката: -o ") and "--format csv" in result.stderr
    result = run("export", "village_safety", "--format", "pdf", "-o", tmp_path / "a")
    assert result.exit_code == 2 and "белгисиз экспорт форматы" in result.stderr


def test_lang_env_and_config_still_come_before_the_forms_default(tmp_path, monkeypatch):
    collected()
    out = tmp_path / "x.xlsx"
    result = run("--lang", "en", "export", "village_safety", "-o", out)
    assert result.stdout.strip() == f"1 submission(s) -> {out}"
    result = run("export", "village_safety", "-o", out, "--lang", "ru")  # also the labels'
    assert result.stdout.strip() == f"анкет: 1 -> {out}"
    assert run("config", "set", "lang", "ru").exit_code == 0
    result = run("export", "village_safety", "-o", out)
    assert result.stdout.strip() == f"анкет: 1 -> {out}"
    monkeypatch.setenv("YNTYMAK_LANG", "en")
    result = run("export", "village_safety", "-o", out)
    assert result.stdout.strip() == f"1 submission(s) -> {out}"


def test_a_form_without_languages_exports_in_english(flat, tmp_path):
    result = run("export", flat, "-o", tmp_path / "f.xlsx")
    assert result.stdout.strip() == f"1 submission(s) -> {tmp_path / 'f.xlsx'}"


# -- 3. submissions show of a purged submission ----------------------------------------------


def test_show_of_a_purged_submission_prints_the_note_only():
    from yntymak_cli.store.db import Store

    uuid = collected()
    with Store.open().write() as conn:  # what `submissions purge --synced` leaves behind
        conn.execute(
            "UPDATE submissions SET answers = NULL, purged_at = '2026-11-20T10:00:00' "
            "WHERE uuid = ?",
            [uuid],
        )
    result = run("--lang", "en", "submissions", "show", uuid, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "erased from this laptop on 2026-11-20 10:00:00" in result.stdout
    assert "Question" not in result.stdout and "Answer" not in result.stdout
    assert "Revisions" in result.stdout  # the history is still shown
    kept = collected()
    shown = run("--lang", "en", "submissions", "show", kept, env={"COLUMNS": "200"})
    assert "Question" in shown.stdout and "erased" not in shown.stdout
