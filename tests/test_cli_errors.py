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
