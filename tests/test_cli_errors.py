"""Every mistake on the command line ends in one readable line and exit code 2."""

from __future__ import annotations

import pytest

from yntymak_cli.cli import app

from .helpers import runner


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["export", "x"], "Missing option '-o'"),
        (["forms", "validat"], "Did you mean 'validate'?"),
        (["collect", "a.yaml", "--bogus"], "No such option: --bogus"),
        (["--bogus"], "No such option: --bogus"),
        (["submissions", "void", "abc"], "Missing option '--reason'"),
    ],
)
def test_usage_errors_are_one_line(args, expected):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and expected in lines[0] and "--help" in lines[0]


def test_no_arguments_shows_help():
    result = runner.invoke(app, [])
    assert "Usage: yntymak" in result.output and "collect" in result.output


def test_a_short_or_shared_uuid_prefix_says_what_is_wrong(tmp_path):
    from .helpers import collect_in, db, yn

    home = tmp_path / "home"
    first, second = (collect_in(home, tmp_path, v) for v in ("Ак-Суу", "Нарын"))
    out = yn(home, "submissions", "show", first[:1], code=2)
    assert "at least 4 characters" in out, out
    assert first[:8] in yn(home, "submissions", "show", first[:8])
    # Two UUIDs that start alike: the prefix names neither, and says so.
    conn = db(home)
    with conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        for old, new in ((first, "abcd0000" + first[8:]), (second, "abcd1111" + second[8:])):
            for table in ("submissions", "revisions"):
                conn.execute(f"UPDATE {table} SET uuid = ? WHERE uuid = ?", [new, old])
    conn.close()
    out = yn(home, "submissions", "show", "abcd", code=2)
    assert "more than one UUID" in out, out
    assert "abcd0000" in yn(home, "submissions", "show", "abcd0")
    out = yn(home, "submissions", "show", "ffff", code=2)
    assert "no submission ffff" in out, out
