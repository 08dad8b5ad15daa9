"""Docs that cannot drift: docs/cli.md is regenerated from --help and compared."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def test_cli_reference_is_up_to_date():
    result = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", "--verbosity=0", str(ROOT / "docs" / "cli.md")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, "docs/cli.md is stale: run `cog -r docs/cli.md`\n" + (
        result.stdout + result.stderr
    )


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = ci.strip().splitlines()[-1]
    assert test_command in readme, "README must give .ci/run's exact test command"


def test_every_function_is_in_the_expressions_table_with_its_arity():
    import re

    from yntymak_cli.forms.expressions import _FUNCTIONS

    def arity(lo: int, hi: int) -> str:
        return f"{lo}+" if hi < 0 else str(lo) if lo == hi else f"{lo}–{hi}"

    documented: dict[str, str] = {}
    for line in (ROOT / "docs" / "expressions.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([a-z][\w:-]*)\(", cells[0]):
            documented[name] = cells[1]
    assert set(documented) == set(_FUNCTIONS)
    wrong = {
        n: (documented[n], arity(f.min_args, f.max_args))
        for n, f in _FUNCTIONS.items()
        if documented[n] != arity(f.min_args, f.max_args)
    }
    assert not wrong  # name -> (the docs say, forms validate knows)
