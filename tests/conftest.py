from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from .helpers import Field, yn

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


@pytest.fixture
def field(tmp_path: Path) -> Field:
    """HQ with two enrolled laptops that trust it."""
    f = Field(tmp_path, tmp_path / "hq", tmp_path / "a", tmp_path / "b", tmp_path / "receipts")
    f.receipts.mkdir()
    out = yn(f.hq, "hq", "init", "-o", tmp_path / "hq.pub")
    hq_fp = json.loads((tmp_path / "hq.pub").read_text())["fingerprint"]
    assert hq_fp in out
    for home, name, district in ((f.a, "Aida", "kara_suu"), (f.b, "Bakyt", "at_bashy")):
        pub = tmp_path / f"{home.name}.pub"
        out = yn(home, "keys", "export", "-o", pub)
        fp = json.loads(pub.read_text())["fingerprint"]
        assert fp in out
        out = yn(f.hq, "hq", "enroll", pub, "--name", name, "--district", district)
        assert "Enrolled" in out and fp in out
        out = yn(home, "keys", "trust-hq", tmp_path / "hq.pub")
        assert hq_fp in out
        assert json.loads(yn(home, "keys", "show", "--json"))["hq"]["fingerprint"] == hq_fp
    return f
