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
