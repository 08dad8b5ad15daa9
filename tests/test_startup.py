"""`yntymak --help` and `forms validate` must stay fast on old laptops: the heavy modules
are imported only by the commands that need them (timings live in benchmarks/help_bench.py)."""

from __future__ import annotations

import ast
import subprocess
import sys

from .conftest import DATA

HEAVY = (
    *("openpyxl", "xlsxwriter", "questionary", "prompt_toolkit", "pyxform", "nacl", "lxml"),
    "sqlite_utils",
    "PIL",  # Pillow: only for resizing a photo (collect/media.py)
)

PROBE = """
import sys
from yntymak_cli.cli import main
sys.argv = ["yntymak", *{args!r}]
try:
    main()
except SystemExit:
    pass
print("LOADED", sorted(m for m in {heavy!r} if m in sys.modules))
"""


def loaded(*args: str) -> list[str]:
    code = PROBE.format(args=list(args), heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("LOADED"))
    return ast.literal_eval(line.removeprefix("LOADED "))


def test_help_imports_no_heavy_module():
    assert loaded("--help") == []


def test_validate_imports_no_heavy_module():
    assert loaded("forms", "validate", str(DATA / "village_safety.yaml")) == []
