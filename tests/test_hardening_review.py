"""What an adversarial review of the hardening found: each case failed before its fix.

A laptop must never store what HQ would refuse for ever (limits.py is one set of bounds for
both), numbers past Python's int/str limit are refused rather than crash, JSON answers files
refuse duplicate keys as YAML ones do, long chains of calculations are valid forms, and a
symlinked `shared` folder beside a form may be included from.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import pytest

from yntymak_cli.cli import app
from yntymak_cli.limits import MAX_NAME_CHARS, MAX_TEXT_CHARS

from .helpers import runner, tmpfs

FORM = """\
id: t
version: "1"
title: T
questions:
  - {name: age, type: integer, label: Age}
  - {name: note, type: text, label: Note}
"""


def yn(home: Path, *args: object):
    return runner.invoke(app, ["--home", str(home), *map(str, args)])


def stored(home: Path) -> int:
    if not (home / "yntymak.db").exists():
        return 0
    conn = sqlite3.connect(home / "yntymak.db")
    try:
        return conn.execute("SELECT count(*) FROM submissions").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def form(tmp_path: Path) -> Path:
    path = tmp_path / "f.yaml"
    path.write_text(FORM, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("huge.json", '{"age": ' + "9" * 5000 + "}"),  # past Python's int/str limit
        ("huge.yaml", 'age: "' + "9" * 5000 + '"\n'),
        ("big.json", '{"age": ' + str(2**63) + "}"),  # past 64 bits: HQ would refuse it
        ("big.yaml", f"age: {-(2**63) - 1}\n"),
    ],
)
def test_integers_beyond_64_bits_are_refused_not_crashed_on(
    form: Path, tmp_path: Path, name: str, text: str
) -> None:
    answers = tmp_path / name
    answers.write_text(text, encoding="utf-8")
    result = yn(tmp_path / "home", "collect", form, "--answers", answers, "--enumerator", "A")
    assert result.exit_code == 2, result.output
    assert "Internal error" not in result.output and "Traceback" not in result.output
    assert stored(tmp_path / "home") == 0


def test_the_64_bit_edges_are_kept(form: Path, tmp_path: Path) -> None:
    for value in (2**63 - 1, -(2**63)):
        answers = tmp_path / "a.json"
        answers.write_text(json.dumps({"age": value}), encoding="utf-8")
        result = yn(tmp_path / "home", "collect", form, "--answers", answers, "--enumerator", "A")
        assert result.exit_code == 0, result.output


def test_a_default_of_5000_digits_is_a_form_problem(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(
        FORM.replace("label: Age}", f'label: Age, default: "{"9" * 5000}"}}'), encoding="utf-8"
    )
    result = yn(tmp_path / "home", "forms", "validate", path)
    assert result.exit_code == 2 and "default" in result.output, result.output
    assert "Internal error" not in result.output


def test_text_and_enumerator_longer_than_hq_accepts_are_refused(form: Path, tmp_path: Path) -> None:
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps({"note": "ж" * (MAX_TEXT_CHARS + 1)}), encoding="utf-8")
    result = yn(tmp_path / "home", "collect", form, "--answers", answers, "--enumerator", "A")
    assert result.exit_code == 2 and "note: is too long" in result.output, result.output[:300]
    answers.write_text(json.dumps({"note": "ok"}), encoding="utf-8")
    long_name = "x" * (MAX_NAME_CHARS + 1)
    result = yn(tmp_path / "home", "collect", form, "--answers", answers, "--enumerator", long_name)
    assert result.exit_code == 2 and "--enumerator is too long" in result.output
    assert stored(tmp_path / "home") == 0


def test_json_answers_refuse_duplicate_keys(form: Path, tmp_path: Path) -> None:
    answers = tmp_path / "a.json"
    answers.write_text('{"age": 1, "age": 2}', encoding="utf-8")
    result = yn(tmp_path / "home", "collect", form, "--answers", answers, "--enumerator", "A")
    assert result.exit_code == 2 and "duplicate key 'age'" in result.output, result.output
    assert stored(tmp_path / "home") == 0


@pytest.mark.slow
def test_a_chain_of_20000_calculations_validates(tmp_path: Path) -> None:
    lines = ["id: chain", 'version: "1"', "title: C", "questions:"]
    lines.append('  - {name: c0, type: calculate, calculation: "1"}')
    lines += [
        f'  - {{name: c{i}, type: calculate, calculation: "${{c{i - 1}}} + 1"}}'
        for i in range(1, 20_000)
    ]
    path = tmp_path / "chain.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = yn(tmp_path / "home", "forms", "validate", path)
    assert result.exit_code == 0, result.output[-500:]


def test_a_symlinked_shared_folder_can_be_included_from(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere" / "lists"
    real.mkdir(parents=True)
    (real / "yn.yaml").write_text(
        "choices:\n  yn:\n    - {name: y, label: Yes}\n    - {name: n, label: No}\n",
        encoding="utf-8",
    )
    forms = tmp_path / "project" / "forms"
    forms.mkdir(parents=True)
    (forms / "shared").symlink_to(real, target_is_directory=True)
    (forms / "f.yaml").write_text(
        textwrap.dedent(
            """\
            id: f
            version: "1"
            title: F
            include: [shared/yn.yaml]
            questions:
              - {name: q, type: select_one yn, label: Q}
            """
        ),
        encoding="utf-8",
    )
    result = yn(tmp_path / "home", "forms", "validate", forms / "f.yaml")
    assert result.exit_code == 0, result.output


@pytest.fixture
def small_disk(tmp_path: Path):
    # Room for the database and its WAL after every migration (011_media grew them past 600k).
    with tmpfs(tmp_path / "disk", "800k") as disk:
        yield disk


def test_a_completely_full_disk_is_named_as_such(small_disk: Path, tmp_path: Path) -> None:
    # With no room left even to open the database, SQLite says "disk I/O error" or "unable
    # to open database file"; the volunteer needs the real cause.
    home = small_disk / "home"
    form = tmp_path / "f.yaml"
    form.write_text(FORM, encoding="utf-8")
    answers = tmp_path / "a.json"
    answers.write_text('{"age": 3}', encoding="utf-8")
    assert yn(home, "collect", form, "--answers", answers, "--enumerator", "A").exit_code == 0
    # Close the WAL so that only a fresh -shm/-wal would need room, then fill the disk.
    conn = sqlite3.connect(home / "yntymak.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for leftover in (home / "yntymak.db-wal", home / "yntymak.db-shm"):
        leftover.unlink(missing_ok=True)
    import os

    fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    # Reading may still work; if it cannot, it says why. Writing says "disk full".
    result = yn(home, "submissions", "list")
    assert result.exit_code == 0 or "disk full" in result.output, result.output
    assert "I/O error" not in result.output and "unable to open" not in result.output
    result = yn(home, "collect", form, "--answers", answers, "--enumerator", "A")
    assert result.exit_code == 1 and "disk full" in result.output, result.output
    assert "I/O error" not in result.output and "unable to open" not in result.output


def test_config_set_enumerator_applies_the_same_limit(tmp_path: Path) -> None:
    # The name HQ would refuse for ever may not be remembered by any route either.
    long_name = "x" * (MAX_NAME_CHARS + 1)
    result = yn(tmp_path / "home", "--lang", "en", "config", "set", "enumerator", long_name)
    assert result.exit_code == 2 and "--enumerator is too long" in result.output, result.output
    result = yn(tmp_path / "home", "--lang", "en", "config", "show")
    assert long_name not in result.output
