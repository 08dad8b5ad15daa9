from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
FORMS = ROOT / "forms"
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def yntymak_home(tmp_path_factory, monkeypatch) -> Path:
    """No test touches real user data: every test gets its own YNTYMAK_HOME."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("YNTYMAK_HOME", str(home))
    monkeypatch.setenv("PROMPT_TOOLKIT_NO_CPR", "1")
    monkeypatch.delenv("YNTYMAK_DEBUG", raising=False)
    from yntymak_cli import home as home_mod

    home_mod.set_home(None)
    from yntymak_cli.i18n import set_lang

    set_lang(None)  # no --lang of an earlier test's command line carries over
    monkeypatch.delenv("YNTYMAK_LANG", raising=False)
    return home


@pytest.fixture
def make_form(tmp_path):
    """Write a short inline YAML form to a file and return its path."""

    def make(text: str, name: str = "form.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return make


@pytest.fixture
def load(make_form):
    """Inline YAML -> Form (validated)."""
    from yntymak_cli.forms.loader import load_form

    def make(text: str):
        return load_form(make_form(text)).require()

    return make
