from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from . import helpers, postgres
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


@pytest.fixture(scope="session")
def pg_server():
    """One real PostgreSQL server for the session (CI installs Debian's binaries; a
    developer machine without them skips the PostgreSQL runs, CI never does)."""
    if not postgres.available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries are missing: .ci/run installs them")
        pytest.skip("no PostgreSQL binaries on this machine")
    server = postgres.Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def hq_backend(request, tmp_path: Path):
    """Where HQ keeps its data: the embedded SQLite file, or a fresh PostgreSQL database
    (YNTYMAK_HQ_DB, which every `hq` command and `hq serve` then use). Its own
    MonkeyPatch: a test's `monkeypatch.undo()` must not move HQ back to SQLite."""
    if request.param == "sqlite":
        yield None
        return
    url = request.getfixturevalue("pg_server").new_database()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YNTYMAK_HQ_DB", url)
        patch.setitem(helpers.PG_HOMES, tmp_path / "hq", url)
        yield url
    # This process keeps a pool per database it opened (store/hqdb.py): close them, or a
    # long run exhausts the server's connections.
    from yntymak_cli.store import hqdb

    for engine in hqdb._ENGINES.values():
        engine.dispose()
    hqdb._ENGINES.clear()


@pytest.fixture
def twin(request, field: Field):
    """make(home) -> env: a second HQ at `home` with the field's HQ key and both laptops
    enrolled, on the same backend as the field's HQ (a copy of its SQLite home, or a new
    PostgreSQL database with the devices enrolled again). Pass `env` to yn() for it."""

    def make(home: Path) -> dict[str, str] | None:
        import shutil

        if field.hq not in helpers.PG_HOMES:
            shutil.copytree(field.hq, home)
            return None
        url = request.getfixturevalue("pg_server").new_database()
        request.getfixturevalue("monkeypatch").setitem(helpers.PG_HOMES, home, url)
        home.mkdir(mode=0o700)
        shutil.copy2(field.hq / "hq.key", home / "hq.key")
        env = {"YNTYMAK_HQ_DB": url}
        for laptop, name, district in (
            (field.a, "Aida", "kara_suu"),
            (field.b, "Bakyt", "at_bashy"),
        ):
            pub = field.tmp / f"{laptop.name}.pub"
            yn(home, "hq", "enroll", pub, "--name", name, "--district", district, env=env)
        return env

    return make


@pytest.fixture
def field(tmp_path: Path, hq_backend: str | None) -> Field:
    """HQ (on SQLite, then on PostgreSQL) with two enrolled laptops that trust it."""
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
