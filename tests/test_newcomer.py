"""Small things a newcomer tripped over (issue 18, section 4), each through the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from yntymak_cli.cli import app

from .conftest import FORMS
from .helpers import CONTRACT, runner
from .helpers import CONTRACT_ANSWERS as ANSWERS


def run(*args):
    # English messages unless a test says otherwise (forms default to Kyrgyz).
    return runner.invoke(app, ["--lang", "en", *map(str, args)])


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A working folder of its own, with no forms folder and no language chosen."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ("YNTYMAK_FORMS", "YNTYMAK_LANG"):
        monkeypatch.delenv(name, raising=False)
    return work


def copy_forms(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONTRACT, target / "village_safety.yaml")
    shutil.copy(FORMS / "mediation_case.yaml", target / "mediation_case.yaml")
    shutil.copytree(FORMS / "shared", target / "shared")
    return target


# -- bare form ids on a new home ---------------------------------------------------------------


def test_bare_form_id_resolves_from_dot_forms_on_a_new_home(elsewhere):
    copy_forms(elsewhere / "forms")
    result = run("collect", "village_safety", "--answers", ANSWERS, "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    uuid = result.stdout.strip().splitlines()[-1]
    shown = json.loads(run("submissions", "show", uuid, "--json").stdout)
    assert shown["form_id"] == "village_safety"


def test_bare_form_id_resolves_from_yntymak_forms(elsewhere, tmp_path, monkeypatch):
    folder = copy_forms(tmp_path / "programme forms")
    monkeypatch.setenv("YNTYMAK_FORMS", str(folder))
    result = run("forms", "show", "mediation_case", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "Mediation case log" in result.stdout


def test_bare_form_id_resolves_from_the_configured_forms_dir(elsewhere, tmp_path, monkeypatch):
    folder = copy_forms(tmp_path / "programme")
    copy_forms(elsewhere / "forms")  # the configured folder wins over ./forms ...
    (elsewhere / "forms" / "village_safety.yaml").write_text("id: broken\n", "utf-8")
    assert run("config", "set", "forms_dir", folder).exit_code == 0
    result = run("collect", "village_safety", "--answers", ANSWERS, "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("YNTYMAK_FORMS", str(elsewhere / "forms"))  # ... and YNTYMAK_FORMS over it
    refused = run("forms", "show", "village_safety")
    assert refused.exit_code == 2 and "village_safety.yaml" in refused.stderr


def test_unknown_bare_id_says_where_it_looked_and_the_near_miss(elsewhere):
    copy_forms(elsewhere / "forms")
    result = run("forms", "show", "mediaton_case")
    assert result.exit_code == 2
    assert "mediaton_case" in result.stderr
    assert "forms list" in result.stderr
    assert "did you mean 'mediation_case'" in result.stderr


def test_forms_list_shows_title_in_the_chosen_language_and_version(elsewhere):
    copy_forms(elsewhere / "forms")
    result = run("forms", "list", "--lang", "ru")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["форма", "версия"]
    row = next(line for line in lines if line.startswith("mediation_case"))
    version = re.search(
        r"^version: \"(.+)\"$", (FORMS / "mediation_case.yaml").read_text("utf-8"), re.M
    )
    assert version and version.group(1) in row
    assert "Журнал дел медиации" in row
    # Shared choice lists are not forms; nothing in a new home is created only to look.
    assert not any(line.startswith(("locations", "common")) for line in lines)


def test_forms_list_adds_forms_used_on_this_laptop(elsewhere):
    result = run("collect", CONTRACT, "--answers", ANSWERS, "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    listed = run("forms", "list", "--lang", "en")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if line.startswith("village_safety"))
    assert "used on this laptop" in row


# -- output folders and counts in sync ---------------------------------------------------------


def yn(home: Path, *args, code: int = 0) -> str:
    result = runner.invoke(app, ["--home", str(home), "--lang", "en", *map(str, args)])
    assert result.exit_code == code, (args, result.output)
    return result.output


@pytest.fixture
def laptop_and_hq(tmp_path) -> tuple[Path, Path]:
    """A laptop enrolled at an HQ it trusts."""
    laptop, hq = tmp_path / "laptop", tmp_path / "hq"
    yn(hq, "hq", "init", "-o", tmp_path / "hq.pub")
    yn(laptop, "keys", "export", "-o", tmp_path / "laptop.pub")
    yn(hq, "hq", "enroll", tmp_path / "laptop.pub", "--name", "Aida", "--district", "kara_suu")
    yn(laptop, "keys", "trust-hq", tmp_path / "hq.pub")
    return laptop, hq


def collect_on(home: Path) -> str:
    out = yn(home, "collect", CONTRACT, "--answers", ANSWERS, "--enumerator", "Aida")
    return out.strip().splitlines()[-1]


@pytest.mark.slow
def test_bundle_create_and_hq_import_create_their_output_folders(laptop_and_hq, tmp_path):
    laptop, hq = laptop_and_hq
    collect_on(laptop)
    out = tmp_path / "to hq" / "today"  # neither exists yet
    yn(laptop, "bundle", "create", "-o", out)
    (bundle,) = out.glob("*.ykb")
    receipts = tmp_path / "receipts" / "today"
    yn(hq, "hq", "import", bundle, "--receipts", receipts)
    assert [p.suffix for p in receipts.iterdir()] == [".ykr"]


def test_an_output_folder_that_is_a_file_is_refused_with_exit_2(laptop_and_hq, tmp_path):
    laptop, hq = laptop_and_hq
    collect_on(laptop)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    refused = runner.invoke(app, ["--home", str(laptop), "bundle", "create", "-o", str(a_file)])
    assert refused.exit_code == 2
    assert f"{a_file} is a file, not a folder" in refused.stderr
    assert a_file.read_text(encoding="utf-8") == "x"


COUNTS = r"(\d+) submission\(s\), (\d+) revision\(s\)"


@pytest.mark.slow
def test_bundle_create_verify_and_hq_import_count_alike(laptop_and_hq, tmp_path):
    import re

    laptop, hq = laptop_and_hq
    first = collect_on(laptop)
    collect_on(laptop)
    yn(laptop, "submissions", "void", first, "--reason", "a training interview")
    created = yn(laptop, "bundle", "create", "-o", tmp_path)
    (bundle,) = tmp_path.glob("*.ykb")
    verified = yn(hq, "bundle", "verify", bundle)
    imported = yn(hq, "hq", "import", bundle, "--receipts", tmp_path)
    totals = [re.findall(COUNTS, text) for text in (created, verified, imported)]
    assert totals == [[("2", "2")]] * 3, (created, verified, imported)
    assert "1 void(s)" in created and "1 void(s)" in verified and "1 void(s)" in imported
    # Per form, `bundle verify` counts submissions too (as `hq status` does), not revisions.
    assert "village_safety: 2 submission(s)" in verified
    # The same words in Russian for `bundle verify` and `hq import` (a replay here).
    ru = ["--lang", "ru"]
    verified = runner.invoke(app, ["--home", str(hq), *ru, "bundle", "verify", str(bundle)])
    imported = runner.invoke(
        app, ["--home", str(hq), *ru, "hq", "import", str(bundle), "--receipts", str(tmp_path)]
    )
    words = "анкет: 2, редакций: 2, аннулирований: 1"
    assert words in verified.stdout and words in imported.stdout, (verified, imported)


@pytest.mark.slow
def test_purged_submissions_are_marked_in_list_show_and_export(laptop_and_hq, tmp_path):
    laptop, hq = laptop_and_hq
    sent = collect_on(laptop)
    yn(laptop, "bundle", "create", "-o", tmp_path)
    (bundle,) = tmp_path.glob("*.ykb")
    (tmp_path / "receipts").mkdir()
    yn(hq, "hq", "import", bundle, "--receipts", tmp_path / "receipts")
    (receipt,) = (tmp_path / "receipts").glob("*.ykr")
    yn(laptop, "bundle", "ack", receipt)
    yn(laptop, "submissions", "purge", "--synced", "--yes")
    kept = collect_on(laptop)  # not sent: keeps its answers

    listed = runner.invoke(
        app, ["--home", str(laptop), "--lang", "en", "submissions", "list"], env={"COLUMNS": "200"}
    )
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    status_of = {uuid: next(x for x in lines if uuid[:8] in x) for uuid in (sent, kept)}
    assert "purged" in status_of[sent]
    assert "purged" not in status_of[kept] and "final" in status_of[kept]

    shown = yn(laptop, "submissions", "show", sent)
    assert "erased from this laptop" in shown and "after HQ acknowledged them" in shown
    assert "erased" not in yn(laptop, "submissions", "show", kept)

    exported = yn(laptop, "export", "village_safety", "-o", tmp_path / "out.xlsx")
    assert "1 purged submission(s) not exported" in exported


# -- exports -----------------------------------------------------------------------------------


@pytest.fixture
def collected(elsewhere) -> str:
    result = run("collect", CONTRACT, "--answers", ANSWERS, "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def test_csv_export_to_a_csv_name_of_a_form_with_repeats_is_refused(collected, elsewhere, tmp_path):
    out = tmp_path / "out.csv"
    result = run("export", "village_safety", "--format", "csv", "-o", out)
    assert result.exit_code == 2
    assert "has repeats" in result.stderr
    assert str(tmp_path / "out") in result.stderr and str(tmp_path / "out.zip") in result.stderr
    assert not out.exists()  # no folder named out.csv
    assert list(tmp_path.iterdir()) == [elsewhere]  # nothing written
    # What the message says to give works.
    assert (
        run("export", "village_safety", "--format", "csv", "-o", tmp_path / "out.zip").exit_code
        == 0
    )
    assert run("export", "village_safety", "--format", "csv", "-o", tmp_path / "out").exit_code == 0
    assert (tmp_path / "out" / "incidents.csv").is_file()


def test_csv_export_to_a_csv_name_of_a_flat_form_writes_that_file(elsewhere, make_form, tmp_path):
    import csv

    form = make_form(
        """
        id: flat
        version: "1"
        questions:
          - {name: village, type: text, label: Village}
        """
    )
    answers = tmp_path / "a.yaml"
    answers.write_text("village: Ак-Суу\n", encoding="utf-8")
    assert run("collect", form, "--answers", answers, "--enumerator", "Aida").exit_code == 0
    out = tmp_path / "exports" / "flat.csv"
    result = run("export", "flat", "--format", "csv", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.is_file()
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig", newline="")))
    assert [r["village"] for r in rows] == ["Ак-Суу"]
    # A name of another kind of file is not made into a folder either.
    wrong = run("export", "flat", "--format", "csv", "-o", tmp_path / "flat.xlsx")
    assert wrong.exit_code == 2 and not (tmp_path / "flat.xlsx").exists()


def translated_export(tmp_path, lang: str | None, summary: bool = True):
    import openpyxl

    out = tmp_path / f"{lang}.xlsx"
    args = ["export", "village_safety", "-o", out] + (["--lang", lang] if lang else [])
    result = run(*args, *(["--summary"] if summary else []))
    assert result.exit_code == 0, result.output
    wb = openpyxl.load_workbook(out)
    title = {"ru": "Безопасность в селе", "en": "Village safety"}.get(
        lang or "ky", "Айылдагы коопсуздук"
    )
    rows = list(wb[title].iter_rows(values_only=True))  # the main sheet: the form's title
    main = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    summary_rows = (
        [r for r in wb["summary"].iter_rows(values_only=True) if any(r)] if summary else []
    )
    return main, summary_rows


def test_translated_export_joins_labels_with_semicolons(collected, tmp_path):
    main, _ = translated_export(tmp_path, "ru")
    (row,) = main
    assert row["Причины"] == "Земля; Вода"  # labels hold spaces: "; " keeps them apart
    multi = [v for v in row.values() if isinstance(v, str) and "; " in v]
    assert multi == ["Земля; Вода"]


def test_translated_export_metadata_headers_and_status(collected, tmp_path):
    main, _ = translated_export(tmp_path, "ky", summary=False)
    (row,) = main
    for english in ("_submission_time", "_enumerator", "_device_id", "_form_version", "_status"):
        assert english not in row
    assert row["Сурамжылоочу"] == "Aida"
    assert row["Абалы"] == "аякталган"
    assert "_uuid" in row and "_index" in row  # ids scripts join on keep their names
    assert "_id" in row and "__version__" in row  # as KoboToolbox names them
    (names,), _ = translated_export(tmp_path, None, summary=False)  # without --lang: as ever
    assert names["_enumerator"] == "Aida" and names["_status"] == "final"


def test_translated_export_translates_calculated_yes_no(elsewhere, make_form, tmp_path):
    import openpyxl

    form = make_form(
        """
        id: calc
        version: "1"
        languages: [ky, ru, en]
        questions:
          - {name: n, type: integer, label: {ky: Саны, ru: Число, en: Number}}
          - name: many
            type: calculate
            calculation: "if(${n} > 2, 'yes', 'no')"
            label: {ky: Көппү, ru: Много, en: Many}
        """
    )
    answers = tmp_path / "a.yaml"
    for n in (1, 5):
        answers.write_text(f"n: {n}\n", encoding="utf-8")
        assert run("collect", form, "--answers", answers, "--enumerator", "Aida").exit_code == 0
    out = tmp_path / "calc.xlsx"
    assert run("export", "calc", "-o", out, "--lang", "ru").exit_code == 0
    rows = list(openpyxl.load_workbook(out)["calc"].iter_rows(values_only=True))
    col = rows[0].index("Много")
    assert sorted(r[col] for r in rows[1:]) == ["Да", "Нет"]


def test_summary_sheet_is_in_the_forms_default_language_without_lang(collected, tmp_path):
    # village_safety's default language is Kyrgyz.
    _, summary = translated_export(tmp_path, None)
    assert ("анкеталар", 1) in summary
    assert ("сурамжылоочу", "анкеталар") in summary
    _, english = translated_export(tmp_path, "en")
    assert ("submissions", 1) in english


# -- --answers and filtered choices -------------------------------------------------------------


def test_answers_error_for_a_filtered_choice_lists_only_the_allowed_ones(elsewhere, tmp_path):
    text = ANSWERS.read_text(encoding="utf-8")
    assert "district: kara_suu" in text
    for wrong in ("kara_su", "at_bashy"):  # a typo; a district of another oblast
        answers = tmp_path / "answers.yaml"
        answers.write_text(text.replace("district: kara_suu", f"district: {wrong}"), "utf-8")
        result = run("--lang", "en", "collect", CONTRACT, "--answers", answers)
        assert result.exit_code == 2
        (line,) = [x for x in result.stderr.splitlines() if f"'{wrong}'" in x]
        assert line.endswith(": kara_suu"), line  # Osh oblast's districts only
        assert "at_bashy" not in line.replace(f"'{wrong}'", "")


# -- exit codes --------------------------------------------------------------------------------


def test_home_that_is_a_file_is_named_with_exit_2(elsewhere, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    result = run("--home", a_file, "--lang", "en", "drafts")
    assert result.exit_code == 2
    assert f"--home {a_file} is a file, not a folder" in result.stderr
    assert "Traceback" not in result.output and a_file.read_text(encoding="utf-8") == "x"


def test_refusals_exit_2_not_1(tmp_path):
    hq = tmp_path / "hq"
    yn(hq, "hq", "init", "-o", tmp_path / "hq.pub")
    laptop = tmp_path / "laptop"
    verify = ["bundle", "verify", str(tmp_path / "hq.pub")]
    no_key = runner.invoke(app, ["--home", str(laptop), *verify])
    assert no_key.exit_code == 2, no_key.output  # not an HQ home
    yn(laptop, "keys", "trust-hq", tmp_path / "hq.pub")
    other = tmp_path / "other"
    yn(other, "hq", "init", "-o", tmp_path / "other.pub")
    switch = runner.invoke(
        app, ["--home", str(laptop), "keys", "trust-hq", str(tmp_path / "other.pub")]
    )
    assert switch.exit_code == 2, switch.output
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    xlsform = runner.invoke(
        app, ["forms", "export-xlsform", str(CONTRACT), "-o", str(a_file / "x.xlsx")]
    )
    assert xlsform.exit_code == 2 and ".part" not in xlsform.output
