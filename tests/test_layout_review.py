"""Review of issue 18: tables on 80 columns never cut a date, time or total; usage errors
are told in the language of the home named by `--home`; a group without its subcommand
gets one translated line; `config show` says which language is in effect; a damaged
config.json or a bad YNTYMAK_LANG gets a warning instead of silence."""

from __future__ import annotations

import json
import re

import pytest

from yntymak_cli.cli import app
from yntymak_cli.store.db import Store

from .conftest import DATA
from .helpers import runner

FORM = str(DATA / "village_safety.yaml")
ANSWERS = str(DATA / "village_safety_answers.yaml")
LONG_NAME = "Айгүл Бекмуратова-Сатыбалдиева Токтосунова"
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME = re.compile(r"^\d{2}:\d{2}$")


def yn(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def assert_words_whole(output: str, name: str) -> None:
    """The name's words are wrapped at spaces or after hyphens, never cut inside a word."""
    pieces = {p for p in re.split(r"(?<=-)|\s+", name) if p}
    found = set()
    for token in output.split():
        parts = [p for p in re.split(r"(?<=-)", token) if p]
        if any(p in pieces for p in parts):
            assert all(p in pieces for p in parts), (token, output)
            found.update(parts)
    assert found == pieces, output


def assert_dates_whole(output: str, n: int) -> None:
    """Every row's date stands whole at the end of a line, its time whole on the next."""
    lines = output.splitlines()
    assert all(len(line) <= 80 for line in lines), output
    assert "…" not in output, output
    ends = [line.split()[-1] if line.split() else "" for line in lines]
    dates = [i for i, end in enumerate(ends) if STAMP.match(end)]
    assert len(dates) == n, output
    for i in dates:
        assert TIME.match(ends[i + 1]), output


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["ky", "ru"])
def test_submissions_list_never_cuts_the_date(lang, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    uuids = []
    for name in (LONG_NAME, "Бакыт"):
        done = yn("--lang", lang, "collect", FORM, "--answers", ANSWERS, "--enumerator", name)
        assert done.exit_code == 0, done.output
        uuids.append(done.stdout.split()[-1])
    # "аннулирована" is the longest status: the columns that wrap have the least room.
    assert yn("submissions", "void", uuids[1], "--reason", "кайталанган").exit_code == 0
    result = yn("--lang", lang, "submissions", "list")
    assert result.exit_code == 0, result.output
    assert_dates_whole(result.stdout, 2)
    assert_words_whole(result.stdout, LONG_NAME)  # wrapped after its hyphen, not inside


@pytest.mark.parametrize("lang", ["ky", "ru"])
def test_drafts_never_cut_the_date(lang, monkeypatch):
    from yntymak_cli.forms.loader import load_form

    monkeypatch.setenv("COLUMNS", "80")
    form = load_form(FORM).require()
    name = "Айгүл-Бекмуратова-Сатыбалдиева-Токтосунова-Жумабекова Асановна"
    Store.open().create_draft(form, {"answers": {}}, name, "d", {})
    result = yn("--lang", lang, "drafts")
    assert result.exit_code == 0, result.output
    assert_dates_whole(result.stdout, 1)
    assert_words_whole(result.stdout, name)


def _status_data() -> dict:
    device = {
        "name": "Ноутбук Айгүл Бекмуратова-Сатыбалдиева",
        "district": "Ак-Талаа району",
        "device_id": "dev-0123456789abcdef",
        "enumerators": [LONG_NAME],
        "last_seq": 3,
        "last_received_at": "2026-11-30T01:00:00Z",
        "submissions_by_form": {"village_safety": 10},
        "void": 0,
        "revoked_at": None,
        "gaps": [],
        "gaps_total": 0,
        "chain_breaks": [],
        "repeated_seqs": [],
    }
    totals = {
        "submissions": 10,
        "void": 0,
        "by_form": {"vs": 10},  # a narrow table: its title had to wrap
        "by_district": {"Ош": 10},
    }
    return {"devices": [device], "totals": totals}


@pytest.mark.parametrize("lang", ["ky", "ru"])
def test_hq_status_totals_keep_their_numbers_on_the_line(lang, monkeypatch):
    from yntymak_cli.i18n import t
    from yntymak_cli.sync import hq as hq_mod

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(hq_mod, "status", lambda store: _status_data())
    result = yn("--lang", lang, "hq", "status")
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout
    totals = t("hq_status_totals", lang, submissions=10, void=0)
    assert totals in [line.strip() for line in result.stdout.splitlines()], result.stdout


# -- usage errors in the language of the home named by --home ------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "Ката: Буйрук берилген жок."),
        (["foo"], "Ката: 'foo' деген буйрук жок."),
    ],
)
def test_top_level_usage_errors_read_the_config_of_home(args, expected, tmp_path):
    home = tmp_path / "other-home"
    from yntymak_cli import home as home_mod

    assert yn("--home", home, "config", "set", "lang", "ky").exit_code == 0
    for given in (["--home", str(home)], [f"--home={home}"]):
        home_mod.set_home(None)  # a new process: the --home is not parsed yet
        result = yn(*given, *args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(expected), result.stderr


def test_usage_error_with_an_unknown_home_creates_nothing(tmp_path):
    home = tmp_path / "no-such-home"
    result = yn("--home", home, "foo")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: No such command 'foo'.")
    assert not home.exists()


# -- a group without its subcommand ----------------------------------------------------------


def test_a_group_alone_names_its_subcommands_in_one_translated_line():
    result = yn("--lang", "ky", "keys")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Ката: буйрук жок: keys show | export | trust-hq ('yntymak keys --help' караңыз)"
    )
    assert result.stdout == ""
    english = yn("hq")
    assert english.exit_code == 2 and len(english.stderr.strip().splitlines()) == 1
    assert english.stderr.startswith("Error: no command given: hq init | enroll")


def test_yntymak_alone_still_shows_the_help():
    result = yn()
    assert "Usage: yntymak" in result.output and "Commands" in result.output


# -- config show, a damaged config, a bad YNTYMAK_LANG ----------------------------------------


def test_config_show_says_which_language_is_in_effect():
    assert yn("config", "set", "lang", "ky").exit_code == 0
    lines = yn("--lang", "ru", "config", "show").stdout.splitlines()
    assert lines[0].split()[:2] == ["lang", "ru"] and "действует сейчас" in lines[0]
    assert lines[1].split()[:2] == ["lang", "ky"] and "сейчас не действует" in lines[1]
    stored_only = yn("config", "show").stdout.splitlines()
    assert stored_only[0].split()[:2] == ["lang", "ky"]
    assert stored_only[1].split()[0] == "enumerator"
    assert yn("config", "unset", "lang").exit_code == 0
    assert yn("config", "show").stdout.splitlines()[0].split()[:2] == ["lang", "en"]


def test_a_damaged_config_gets_one_warning_line(yntymak_home):
    (yntymak_home / "config.json").write_text("{not json")
    result = yn("drafts")
    assert result.exit_code == 0 and result.stdout.strip() == "no drafts"
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("Warning: "), result.stderr
    assert "config.json" in warnings[0]
    assert yn("drafts").stderr == result.stderr  # again on the next command, once each


def test_an_unknown_yntymak_lang_gets_one_warning_line():
    result = yn("drafts", env={"YNTYMAK_LANG": "kz"})
    assert result.exit_code == 0 and result.stdout.strip() == "no drafts"
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1 and "YNTYMAK_LANG=kz" in warnings[0], result.stderr
    assert yn("drafts", env={"YNTYMAK_LANG": "ky"}).stderr == ""


def test_catalogs_have_the_new_keys():
    from yntymak_cli.i18n import catalog

    keys = {
        "usage_which_command",
        "config_damaged_ignored",
        "lang_env_unknown",
        "config_source_option",
        "config_source_stored",
        "config_source_default",
    }
    for lang in ("en", "ky", "ru"):
        assert keys <= set(catalog(lang)), lang
    assert json.loads(json.dumps(catalog("ky")))  # still a JSON object
