"""No English leaks into a Kyrgyz or Russian screen: every command's success path and its
error paths, run with `--lang ky` and `--lang ru`, print no English word outside an allowlist
(command and option names, file paths, UUIDs, form ids, key names).

`english_words(text, allow=...)` lives in tests/helpers.py (tests/test_lang_sync.py uses it too).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable

import pytest

from .helpers import CONTRACT as FORM
from .helpers import CONTRACT_ANSWERS as ANSWERS
from .helpers import REVISION_KEYS, english_words, runner


def run_words(args: list[str], *, allow: Iterable[str] = (), input: str | None = None):
    """Run `yntymak ARGS` in-process; return the result and the English words it printed
    (stdout and stderr)."""
    from yntymak_cli.cli import app

    # A wide screen: a word cut by a table column ("villag…") would hide what it is.
    result = runner.invoke(app, args, input=input, env={"COLUMNS": "250"})
    shown = result.stdout + result.stderr
    return result, english_words(shown, allow)


def test_english_words_sees_prose_and_spares_names():
    text = (
        "Error: no such submission 'a1b2c3d4'; try yntymak submissions list --form "
        "village_safety (YNTYMAK_LANG=ky, file /tmp/x/out.csv, 0123abcd-0000-0000-0000-"
        "0123456789ab)"
    )
    assert english_words(text) == {"Error", "no", "such", "submission", "try", "file"}
    assert english_words("Сунуштама табылган жок: abc", allow={"abc"}) == set()
    # The helper on a real screen: click's own "No such command" in Kyrgyz.
    result, words = run_words(["--lang", "ky", "colect"], allow={"colect"})
    assert result.exit_code == 2 and not words, result.stderr


# -- setting the language once ---------------------------------------------------------------


def yn(*args: str, input: str | None = None):
    from yntymak_cli.cli import app

    return runner.invoke(app, [str(a) for a in args], input=input)


def test_config_set_lang_is_remembered_and_precedence_holds(monkeypatch):
    monkeypatch.delenv("YNTYMAK_LANG", raising=False)
    assert yn("drafts").stdout.strip() == "no drafts"
    done = yn("config", "set", "lang", "ky")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "lang = ky: сакталды"
    assert yn("drafts").stdout.strip() == "каралама жок"  # config
    monkeypatch.setenv("YNTYMAK_LANG", "ru")
    assert yn("drafts").stdout.strip() == "черновиков нет"  # YNTYMAK_LANG > config
    assert yn("--lang", "en", "drafts").stdout.strip() == "no drafts"  # --lang > env
    monkeypatch.delenv("YNTYMAK_LANG")
    assert yn("config", "unset", "lang").exit_code == 0
    assert yn("drafts").stdout.strip() == "no drafts"


def test_config_lang_comes_before_the_form_default(tmp_path):
    # village_safety's default language is ky: without any setting its tree is in Kyrgyz.
    assert "Айылдагы коопсуздук" in yn("forms", "show", FORM).stdout
    yn("config", "set", "lang", "ru")
    shown = yn("forms", "show", FORM).stdout
    assert "Безопасность в селе" in shown and "(обязательно)" in shown
    # A command's own --lang wins over the global one, for its words and its messages.
    missing = yn("--lang", "ru", "collect", tmp_path / "nowhere.yaml", "--lang", "ky")
    assert missing.exit_code == 2 and missing.stderr.startswith("Ката: ")


def test_collect_uses_the_configured_language_when_the_form_has_it():
    yn("config", "set", "lang", "ru")
    uuid = yn("collect", FORM, "--enumerator", "Aigul", "--answers", ANSWERS).stdout.strip()
    from yntymak_cli.collect.session import draft_language
    from yntymak_cli.store.db import Store

    store = Store.open()
    assert draft_language(store.revision_paradata(uuid, 1)) == "ru"


def test_config_show_lists_every_setting_and_where_it_comes_from(yntymak_home, tmp_path):
    empty = yn("config", "show")
    assert empty.exit_code == 0
    assert [line.split()[0] for line in empty.stdout.splitlines()[:3]] == [
        "lang",
        "enumerator",
        "forms_dir",
    ]
    assert not (yntymak_home / "yntymak.db").exists()  # nothing created only to show it
    forms = tmp_path / "forms"
    forms.mkdir()
    assert yn("config", "set", "forms_dir", forms).exit_code == 0
    assert yn("config", "set", "enumerator", "Aigul Toktosunova").exit_code == 0
    assert yn("config", "set", "lang", "ky").exit_code == 0
    lines = yn("config", "show").stdout.splitlines()
    assert lines[0].split()[:2] == ["lang", "ky"]
    assert "Aigul Toktosunova" in lines[1]
    assert str(forms.resolve()) in lines[2]
    assert lines[3] == f"Жөндөөлөр файлы: {yntymak_home / 'config.json'}"
    # The enumerator is the one `collect` remembers: used without --enumerator.
    yn("collect", FORM, "--answers", ANSWERS)
    record = json.loads(yn("submissions", "list", "--json").stdout)[0]
    assert record["enumerator"] == "Aigul Toktosunova"
    assert json.loads((yntymak_home / "config.json").read_text()) == {
        "forms_dir": str(forms.resolve()),
        "lang": "ky",
    }
    assert yn("config", "unset", "enumerator").exit_code == 0
    assert "Aigul" not in yn("config", "show").stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["config", "set", "lang", "kz"], "'kz' is not a language of this tool"),
        (["config", "set", "lng", "ky"], "unknown setting 'lng'"),
        (["config", "set", "forms_dir", "/no/such/folder"], "is not a folder"),
        (["config", "set", "enumerator", "  "], "give a value"),
        (["--lang", "kz", "drafts"], "'kz' is not a language of this tool"),
    ],
)
def test_config_refuses_what_it_cannot_use(args, expected, tmp_path):
    result = yn(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and expected in result.stderr


def test_a_forms_dir_that_is_a_file_is_refused(tmp_path):
    a_file = tmp_path / "forms"
    a_file.write_text("")
    result = yn("--lang", "ru", "config", "set", "forms_dir", a_file)
    assert (
        result.exit_code == 2 and result.stderr.strip() == f"Ошибка: forms_dir: {a_file} – не папка"
    )


def test_a_damaged_config_never_stops_a_command(yntymak_home):
    (yntymak_home / "config.json").write_text("{not json")
    assert yn("drafts").stdout.strip() == "no drafts"
    shown = yn("config", "show")
    assert shown.exit_code == 2 and "is not a settings file" in shown.stderr
    assert yn("config", "set", "lang", "ky").exit_code == 0  # replaced by a good one
    assert yn("drafts").stdout.strip() == "каралама жок"


@pytest.mark.slow
def test_help_reads_no_config_and_creates_no_home(tmp_path):
    import subprocess
    import sys

    home = tmp_path / "new-home"
    env = {**os.environ, "YNTYMAK_HOME": str(home)}
    runs = {}
    for args in (["--help"], ["config", "--help"], ["config", "show"], ["--lang", "ky", "bogus"]):
        runs[args[-1]] = subprocess.run(
            [sys.executable, "-m", "yntymak_cli", *args], env=env, capture_output=True, text=True
        )
    assert runs["show"].returncode == 0 and runs["show"].stdout.startswith("lang ")
    assert runs["bogus"].stderr.startswith("Ката: 'bogus' деген буйрук жок.")
    assert not home.exists()  # neither a database nor a home only to read a setting


# -- every command, every path, in ky and ru ---------------------------------------------------


@pytest.fixture
def field(tmp_path):
    """A home with a submission in two revisions, a void one, a new draft and an edit in
    progress; files for the error paths."""
    from types import SimpleNamespace

    from yntymak_cli.collect.session import Session
    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store

    first = yn("collect", FORM, "--enumerator", "Aigul", "--answers", ANSWERS).stdout.strip()
    voided = yn("collect", FORM, "--answers", ANSWERS).stdout.strip()
    yn("submissions", "void", voided, "--reason", "dup")
    store = Store.open()
    edit = Session.edit(store, first, lang="ky", enumerator="Bakyt", device_id="dev1")
    edit.engine.answer(edit.state, ("age",), 35)
    edit.engine.answer(edit.state, ("felt_tension",), "no")
    edit.save()
    edit.finalise()
    form = load_form(FORM).require()
    draft = Session.start(store, form, lang="ky", enumerator="Aigul", device_id="dev1").uuid
    editing = Session.edit(store, first, lang="ky", enumerator="A", device_id="d")
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- 1\n- 2\n")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    bad_answer = tmp_path / "bad_answer.yaml"
    bad_answer.write_text(ANSWERS.read_text().replace("age: 34", "age: many"))
    folder = tmp_path / "a-folder"
    folder.mkdir()
    return SimpleNamespace(
        device=store.get_record(voided)["device_id"],
        first=first,
        voided=voided,
        draft=draft,
        editing=editing.uuid,
        tmp=tmp_path,
        not_mapping=not_mapping,
        bad_json=bad_json,
        bad_answer=bad_answer,
        folder=folder,
    )


# `forms show` prints the author's YAML: keys, types, names and expressions stay as written.
FORM_WORDS = {
    *("relevant", "constraint", "choice_filter", "calculation", "repeat_count"),
    *("text", "integer", "select_one", "select_multiple", "date", "geopoint", "calculate"),
    *("group", "repeat", "note", "today", "username", "count-selected", "and"),
    *("enumerator", "oblast", "district", "village", "age", "sources", "source", "phone"),
    *("osh", "naryn", "land", "water", "pasture", "yes", "no", "location", "incidents"),
    *("resolved", "respondent", "thanks"),
}

# (name, arguments given the field, exit code, words to allow besides the usual ones)
CASES = [
    # collect, drafts, resume, submissions edit
    ("collect", lambda f: ["collect", FORM, "--answers", ANSWERS], 0, {"Aigul"}),
    ("collect-no-terminal", lambda f: ["collect", FORM], 2, set()),
    ("collect-missing", lambda f: ["collect", f.tmp / "nowhere.yaml"], 2, set()),
    (
        "collect-answers-missing",
        lambda f: ["collect", FORM, "--answers", f.tmp / "no.yaml"],
        2,
        set(),
    ),
    ("collect-answers-folder", lambda f: ["collect", FORM, "--answers", f.folder], 2, set()),
    ("collect-answers-list", lambda f: ["collect", FORM, "--answers", f.not_mapping], 2, set()),
    (
        "collect-answers-json",
        lambda f: ["collect", FORM, "--answers", f.bad_json],
        2,
        {"Expecting", "property", "name", "enclosed", "in", "double", "quotes"},
    ),
    (
        "collect-bad-answer",
        lambda f: ["collect", FORM, "--answers", f.bad_answer],
        2,
        {"many", "age"},
    ),
    ("drafts", lambda f: ["drafts"], 0, {"Aigul", "A"}),
    ("resume-final", lambda f: ["resume", f.voided], 2, set()),
    ("resume-none", lambda f: ["resume", "ffffffff"], 2, set()),
    ("resume-no-terminal", lambda f: ["resume", f.draft], 2, set()),
    ("edit-no-terminal", lambda f: ["submissions", "edit", f.first], 2, set()),
    ("edit-void", lambda f: ["submissions", "edit", f.voided], 2, set()),
    # submissions list / show / void
    ("list", lambda f: ["submissions", "list"], 0, {"Aigul", "Bakyt"}),
    (
        "list-status",
        lambda f: ["submissions", "list", "--status", "gone"],
        2,
        {"gone", "draft", "final"},
    ),
    ("show", lambda f: ["submissions", "show", f.first], 0, {"Aigul", "Bakyt", "dev1", "A"}),
    ("show-void", lambda f: ["submissions", "show", f.voided], 0, {"dup", "Aigul", "<device>"}),
    ("show-draft", lambda f: ["submissions", "show", f.draft], 0, {"Aigul", "dev1"}),
    ("show-none", lambda f: ["submissions", "show", "0000abcd"], 2, set()),
    ("void", lambda f: ["submissions", "void", f.first[:8], "--reason", "x"], 0, set()),
    ("void-again", lambda f: ["submissions", "void", f.voided, "--reason", "x"], 2, set()),
    ("void-blank", lambda f: ["submissions", "void", f.first, "--reason", " "], 2, set()),
    # export
    ("export", lambda f: ["export", "village_safety", "-o", f.tmp / "out.xlsx"], 0, set()),
    (
        "export-csv",
        lambda f: ["export", "village_safety", "--format", "csv", "-o", f.tmp / "csv"],
        0,
        set(),
    ),
    ("export-none", lambda f: ["export", "nothing", "-o", f.tmp / "o.xlsx"], 2, {"nothing"}),
    (
        "export-status",
        lambda f: ["export", "village_safety", "-o", f.tmp / "o.xlsx", "--status", "x"],
        2,
        {"final", "all", "pending", "approved", "rejected"},  # the values to type (on_hold too)
    ),
    (
        "export-since",
        lambda f: ["export", "village_safety", "-o", f.tmp / "o.xlsx", "--since", "May"],
        2,
        {"May"},
    ),
    (
        "export-format",
        lambda f: ["export", "village_safety", "-o", f.tmp / "o.x", "--format", "pdf"],
        2,
        {"pdf", "jsonl"},
    ),
    (
        "export-summary",
        lambda f: [
            "export",
            "village_safety",
            "-o",
            f.tmp / "o.json",
            "--format",
            "json",
            "--summary",
        ],
        2,
        set(),
    ),
    ("export-folder", lambda f: ["export", "village_safety", "-o", f.folder], 2, set()),
    # forms
    ("forms-validate", lambda f: ["forms", "validate", FORM], 0, set()),
    ("forms-show", lambda f: ["forms", "show", FORM], 0, FORM_WORDS),
    # config
    ("config-show", lambda f: ["config", "show"], 0, {"Aigul"}),
    ("config-set", lambda f: ["config", "set", "enumerator", "Nurlan"], 0, {"Nurlan"}),
    ("config-unset", lambda f: ["config", "unset", "forms_dir"], 0, set()),
    ("config-bad-key", lambda f: ["config", "set", "colour", "red"], 2, {"colour"}),
    ("config-bad-lang", lambda f: ["config", "set", "lang", "de"], 2, {"de"}),
    # usage errors (click's own words)
    ("usage-command", lambda f: ["colect"], 2, {"colect"}),
    ("usage-subcommand", lambda f: ["forms", "validat"], 2, {"validat"}),
    ("usage-argument", lambda f: ["collect"], 2, {"form"}),
    ("usage-option", lambda f: ["export", "village_safety"], 2, {"output"}),
    ("usage-no-option", lambda f: ["drafts", "--bogus"], 2, {"bogus"}),
    ("usage-extra", lambda f: ["drafts", "more"], 2, {"more"}),
    ("usage-value", lambda f: ["export", "village_safety", "--format"], 2, {"format"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["ky", "ru"])
@pytest.mark.parametrize(("name", "args", "code", "allow"), CASES, ids=[c[0] for c in CASES])
def test_no_english_on_a_kyrgyz_or_russian_screen(field, lang, name, args, code, allow):
    allow = {field.device if word == "<device>" else word for word in allow}
    result, words = run_words(["--lang", lang, *map(str, args(field))], allow=allow)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout or result.stderr  # every path says something
    assert not words, (
        f"{name} ({lang}): English {sorted(words)} in:\n{result.stdout}{result.stderr}"
    )


# -- submissions show: a table a volunteer can read ---------------------------------------------


def _show(lang: str, *args: str) -> str:
    result = runner.invoke(
        __import__("yntymak_cli.cli", fromlist=["app"]).app,
        ["--lang", lang, "submissions", "show", *args],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def _rows(out: str) -> dict[str, str]:
    """Question label -> answer from the first table (│ label │ answer │)."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 2:
            rows.setdefault(cells[0], cells[1])
    return rows


def test_show_prints_labels_in_the_chosen_language_then_the_history(field):
    ky = _show("ky", field.first)
    rows = _rows(ky)
    # Question labels and choice labels in Kyrgyz, never the codes (osh, kara_suu, no).
    assert rows["Облус"] == "Ош облусу"
    assert rows["Район"] == "Кара-Суу району"
    assert rows["Жашыңыз"] == "35"
    assert rows["Акыркы жылы чыңалуу сездиңизби?"] == "Жок"
    assert "osh" not in ky and "kara_suu" not in ky
    ru = _rows(_show("ru", field.first))
    assert ru["Область"] == "Ошская область" and ru["Возраст"] == "35"
    # Then the revisions: number, time, enumerator, what changed.
    history = [
        [c.strip() for c in line.split("│")[1:-1]]
        for line in ky.split("Редакциялар", 1)[1].splitlines()
        if line.startswith("│")
    ]
    assert [(r[0], r[2]) for r in history] == [("1", "Aigul"), ("2", "Bakyt")]
    assert history[0][3] == "алгачкы редакция"
    changed = history[1][3].split("; ")
    assert "Жашыңыз" in changed and "Акыркы жылы чыңалуу сездиңизби?" in changed
    assert "Облус" not in changed
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", history[1][1])


def test_show_of_a_repeat_numbers_its_instances(field):
    rows = _rows(_show("ru", field.voided))
    assert rows["Инцидент 1 › Дата"] == "2026-10-01"
    assert rows["Инцидент 2 › Разрешён?"] == "Да"
    assert rows["Причины"] == "Земля, Вода"  # select_multiple: labels


def test_show_json_keeps_its_shape(field):
    data = json.loads(_show("ky", field.first, "--json"))
    assert data["answers"]["oblast"] == "osh" and data["answers"]["age"] == 35
    assert data["status"] == "final" and len(data["revisions"]) == 2
    assert set(data["revisions"][0]) == set(REVISION_KEYS)


def test_export_refusals_of_the_output_name_are_translated(field):
    a_file = field.tmp / "plain-file"
    a_file.write_text("x")
    # -o names a file where CSV writes a folder; -o names a folder for an xlsx.
    for args, allow in (
        (["--format", "csv", "-o", a_file], set()),
        (["-o", field.folder], set()),
    ):
        for lang in ("ky", "ru"):
            result, words = run_words(
                ["--lang", lang, "export", "village_safety", *map(str, args)], allow=allow
            )
            assert result.exit_code == 2 and not words, result.stderr


# -- forms validate: every problem in the author's language ------------------------------------

# One form with several kinds of problems (the alias and the duplicate key stop a file's
# reading, so they have files of their own). Locations, keys, names and quoted expressions
# stay as written; everything around them is translated.
BAD_FORM = """\
id: demo
version: "1"
languages: [ky, ru]
title: {ky: Сынак, ru: Тест}
questions:
  - name: age
    type: integer
    label: {ky: Жашы}
    relevant: ${agee} > 3
    lable: x
    constraint: . > 3 and
    default: many
  - name: age
    type: text
    label: {ky: Аты, ru: Имя}
    constraint: regex(., '^(a+)+$')
"""
ALIAS_FORM = "id: demo\nversion: '1'\nquestions:\n  - &q {name: a, type: text}\n  - *q\n"
DUPLICATE_KEY_FORM = "id: demo\nversion: '1'\nid: again\nquestions: []\n"

# What the problems quote from the author's file, and the tools a warning names.
PROBLEM_WORDS = {"age", "agee", "label", "lable", "relevant", "constraint", "default", "and", "id"}
PROBLEM_WORDS |= {"ODK", "Collect", "Enketo"}

ENGLISH_PROBLEMS = [
    "bad.yaml:8:12: warning: question 'age' label: missing 'ru' translation",
    "bad.yaml:9:15: question 'age': relevant refers to unknown question '${agee}'"
    " (did you mean 'age'?)",
    "bad.yaml:10:5: question 'age': unknown key 'lable' (did you mean 'label'?)",
    "bad.yaml:11:23: question 'age': constraint: expected a value after 'and'",
    "bad.yaml:12:14: question 'age': default must be a whole number",
    "bad.yaml:13:11: question 'age': duplicate name (first used on line 6)",
    "bad.yaml:16:26: warning: question 'age': constraint: regular expression '^(a+)+$' repeats"
    " a group that holds a repeat: ODK Collect and Enketo may freeze on an answer that almost"
    " matches (yntymak is not affected); write it without the nested repeat",
    "alias.yaml:5:5: YAML aliases (*name) are not allowed here: write the value out in full",
    "dup.yaml:3:1: duplicate key 'id'",
]


def _problem_files(tmp_path):
    files = []
    for name, text in (("bad", BAD_FORM), ("alias", ALIAS_FORM), ("dup", DUPLICATE_KEY_FORM)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    return files


def test_forms_validate_problems_keep_their_english_wording(tmp_path):
    result = yn("--lang", "en", "forms", "validate", *_problem_files(tmp_path))
    assert result.exit_code == 2
    shown = [line.replace(f"{tmp_path}/", "") for line in result.stderr.splitlines()]
    assert shown == ENGLISH_PROBLEMS


@pytest.mark.parametrize("lang", ["ky", "ru"])
def test_forms_validate_problems_are_in_the_chosen_language(tmp_path, lang):
    from yntymak_cli.i18n import t

    result, words = run_words(
        ["--lang", lang, "forms", "validate", *_problem_files(tmp_path)], allow=PROBLEM_WORDS
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    # The same problems at the same places, FILE:LINE:COL first.
    where = [line.replace(f"{tmp_path}/", "").split(": ", 1)[0] for line in lines]
    assert where == [line.split(": ", 1)[0] for line in ENGLISH_PROBLEMS]
    assert not words, f"English {sorted(words)} in:\n{result.stderr}"
    # The near-miss suggestions and the warning mark, in the reader's words.
    assert t("did_you_mean", lang, name="label") in lines[2]
    assert t("did_you_mean", lang, name="age") in lines[1]
    assert sum(": " + t("warning", lang, message="") in line for line in lines) == 2


@pytest.mark.parametrize("lang", ["ky", "ru"])
def test_a_yaml_syntax_error_keeps_the_parser_detail_in_a_translated_frame(tmp_path, lang):
    from yntymak_cli.i18n import t

    broken = tmp_path / "broken.yaml"
    broken.write_text("id: demo\nquestions: [\n", encoding="utf-8")
    result = yn("--lang", lang, "forms", "validate", broken)
    assert result.exit_code == 2
    assert t("yaml_syntax", lang, detail="") in result.stderr, result.stderr
    assert "YAML syntax error" not in result.stderr


# -- -o refusals: what a command will not write over, in the reader's language -----------------


def _db_inside(path):
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)  # a database by its content


def _symlink_nowhere(path):
    path.symlink_to(path.with_name("nowhere.xlsx"))


def _symlink_to_db(path):
    target = path.with_name("survey.db")
    _db_inside(target)
    path.symlink_to(target)


def _fifo(path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    os.mkfifo(path)


REFUSALS = {
    "database": (_db_inside, "refusing to write over {path}: it is a database."),
    "database-name": (
        lambda p: p.write_text("notes, not a database"),
        "refusing to write over {path}: it is a database (by its name, .db).",
    ),
    "symlink": (_symlink_nowhere, "{path} is a symbolic link (to "),
    "symlink-to-db": (_symlink_to_db, "refusing to write over {path} (a link to "),
    "fifo": (_fifo, "{path} is not a regular file (a pipe or a device)"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(REFUSALS))
@pytest.mark.parametrize("lang", ["en", "ky", "ru"])
def test_output_refusals_are_in_the_chosen_language(tmp_path, lang, kind):
    assert yn("collect", FORM, "--enumerator", "Aigul", "--answers", ANSWERS).exit_code == 0
    make, english = REFUSALS[kind]
    out = tmp_path / ("old.db" if kind == "database-name" else "report.xlsx")
    make(out)
    result, words = run_words(
        ["--lang", lang, "export", "village_safety", "-o", str(out)],
        allow={"db"},  # .db
    )
    assert result.exit_code == 2, result.output
    if lang == "en":  # the English wording stays as it was
        assert english.format(path=out) in result.stderr, result.stderr
    else:
        assert not words, f"{kind} ({lang}): English {sorted(words)} in:\n{result.stderr}"
        assert str(out) in result.stderr
    if kind == "database-name":  # nothing was written over it
        assert out.read_text() == "notes, not a database"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
@pytest.mark.parametrize("lang", ["ky", "ru"])
def test_a_sync_file_that_is_a_pipe_is_refused_in_the_chosen_language(tmp_path, lang):
    # files.read_limited names the file it refuses: "a bundle" in the reader's words too.
    from yntymak_cli.i18n import t as t_

    assert yn("hq", "init", "-o", tmp_path / "hq.pub").exit_code == 0
    fifo = tmp_path / "b.ykb"
    os.mkfifo(fifo)
    result, words = run_words(["--lang", lang, "hq", "import", str(fifo)])
    assert result.exit_code == 2, result.output
    assert not words, f"English {sorted(words)} in:\n{result.output}"
    # ("bundle" is a command name, so the helper alone would let "a bundle" through.)
    assert "a bundle" not in result.output and t_("file_kind_bundle", lang) in result.output
