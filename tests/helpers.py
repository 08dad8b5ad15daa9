"""Test helpers shared by several test modules (not a test module itself)."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import re
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from yntymak_cli.canonical import canonical_bytes
from yntymak_cli.cli import app
from yntymak_cli.sync import container, keys

DATA = Path(__file__).resolve().parent / "data"

# -- the CLI and the contract form ---------------------------------------------------------

runner = CliRunner()
CONTRACT = DATA / "village_safety.yaml"  # default_language: ky; has a repeat (incidents)
CONTRACT_ANSWERS = DATA / "village_safety_answers.yaml"


def collect(*args: Any):
    """`yntymak collect ARGS` in the test's own home; the result, whatever its exit code."""
    return runner.invoke(app, ["collect", *map(str, args)])


def show(uuid: str) -> dict[str, Any]:
    """`submissions show UUID --json`, parsed."""
    result = runner.invoke(app, ["submissions", "show", uuid, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def collected(form: Path = CONTRACT, answers: Path = CONTRACT_ANSWERS) -> str:
    """Collect one submission from an answers file; the last line of the output (its uuid)."""
    result = collect(form, "--answers", answers, "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small file system of its own at `path` (root only; the test is skipped otherwise),
    unmounted afterwards: a real full disk for disk-full tests."""
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "nt" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    options = f"size={size},mode=0700"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        gc.collect()  # close connections the CLI left to the garbage collector
        subprocess.run(["umount", "-l", str(path)], check=False)


def grow(path: Path, size: str) -> None:
    """Free space on a tmpfs of tmpfs(): give it a new size."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


# -- two field laptops and one HQ, each in its own home (tests/test_sync_*.py) ---------


def yn(home: Path, *args: Any, code: int = 0, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, ["--home", str(home), *map(str, args)], env=env)
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.output


def write_answers(path: Path, village: str) -> Path:
    text = CONTRACT_ANSWERS.read_text(encoding="utf-8").replace(
        "village: Кара-Суу", f"village: {village}"
    )
    assert village in text
    path.write_text(text, encoding="utf-8")
    return path


def collect_in(home: Path, tmp: Path, village: str) -> str:
    answers = write_answers(tmp / f"answers-{village}.yaml", village)
    out = yn(home, "collect", CONTRACT, "--answers", answers, "--enumerator", "aida")
    return out.strip().splitlines()[-1]


def device_id(home: Path) -> str:
    return json.loads(yn(home, "keys", "show", "--json"))["device_id"]


# HQ homes whose data lives in PostgreSQL (the `field` fixture's postgresql runs):
# home -> database URL. rows() and snapshot() read those from the server.
PG_HOMES: dict[Path, str] = {}


def sqlite_only(f: Field, why: str) -> None:
    """Skip the PostgreSQL run of a test about HQ's SQLite file itself."""
    if Path(f.hq) in PG_HOMES:
        pytest.skip(f"about HQ's SQLite file: {why}")


def db(home: Path) -> sqlite3.Connection:
    assert Path(home) not in PG_HOMES, "this HQ's data is in PostgreSQL: use rows()"
    conn = sqlite3.connect(home / "yntymak.db")
    conn.row_factory = sqlite3.Row
    return conn


def _pg(home: Path) -> Any:
    import psycopg
    from psycopg.rows import dict_row
    from sqlalchemy.engine import make_url

    url = make_url(PG_HOMES[Path(home)])
    return psycopg.connect(
        host=url.query["host"], user=url.username, dbname=url.database, row_factory=dict_row
    )


def rows(home: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    if Path(home) in PG_HOMES:
        with _pg(home) as conn:
            return [dict(r) for r in conn.execute(sql.replace("?", "%s"), params)]
    conn = db(home)
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


# The documented `submissions list --json` item, keys in this order (a consumer may rely
# on either); `show --json` adds the revision history.
LIST_KEYS = [
    "format_version",
    "uuid",
    "revision",
    "form_id",
    "form_version",
    "status",
    "created_at",
    "updated_at",
    "enumerator",
    "device_id",
    "answers",
    "submission_time",
    "instance_name",
    "void_reason",
]
SHOW_KEYS = [*LIST_KEYS, "revisions"]
REVISION_KEYS = [
    "uuid",
    "revision",
    "form_hash",
    "submission_time",
    "enumerator",
    "device_id",
    "hash",
]

# Columns that record when something arrived, not what arrived.
ARRIVAL = {
    "forms": {"registered_at"},
    "hq_bundles": {"received_at"},
    "hq_devices": {"enrolled_at"},
    "submissions": {"id"},  # HQ numbers submissions in the order they arrive (exports' _id)
}


def snapshot(home: Path) -> dict[str, list[tuple]]:
    """Every row of the synced tables, without arrival times, in a stable order."""
    out: dict[str, list[tuple]] = {}
    if Path(home) in PG_HOMES:
        for name in ("forms", "submissions", "revisions", "hq_bundles", "hq_devices"):
            found = rows(home, f"SELECT * FROM {name}")  # our table names
            cols = [c for c in (found[0] if found else {}) if c not in ARRIVAL.get(name, set())]
            out[name] = sorted(tuple(r[c] for c in cols) for r in found)
        return out
    import sqlite_utils

    database = sqlite_utils.Database(home / "yntymak.db")
    try:
        for name in ("forms", "submissions", "revisions", "hq_bundles", "hq_devices"):
            table = database.table(name)
            cols = [c for c in table.columns_dict if c not in ARRIVAL.get(name, set())]
            out[name] = sorted(tuple(r[c] for c in cols) for r in table.rows)
    finally:
        database.close()
    return out


@dataclass
class Field:
    tmp: Path
    hq: Path
    a: Path
    b: Path
    receipts: Path

    def bundle(self, home: Path) -> Path:
        out = self.tmp / f"out-{home.name}"
        out.mkdir(exist_ok=True)
        text = yn(home, "bundle", "create", "-o", out)
        found = re.search(r"^Wrote (.+\.ykb) \(bundle \d+\)", text, re.M)
        assert found, text
        path = Path(found.group(1))
        assert path.parent == out and path.exists()
        return path

    def import_(self, *paths: Path, code: int = 0) -> str:
        return yn(self.hq, "hq", "import", *paths, "--receipts", self.receipts, code=code)

    def receipt(self, bundle: Path) -> Path:
        return self.receipts / bundle.name.replace(".ykb", ".ykr")


def hq_db(home: Path) -> Any:
    """HQ's database at `home`: HqDb over its SQLite file, or its PostgreSQL database."""
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.hqdb import HqDb

    if Path(home) in PG_HOMES:
        return HqDb.postgres(PG_HOMES[Path(home)])
    return HqDb.over_store(Store(Path(home) / "yntymak.db"))


def open_genuine(f: Field, home: Path) -> tuple[dict, dict, Any, Any]:
    """A genuine bundle of `home`, opened with HQ's key: (header, payload, the device's
    identity, HQ's identity), for tests that forge a changed copy."""
    from yntymak_cli.sync import hq as hq_mod

    hq_identity = keys.load_hq_identity(f.hq)
    device = keys.load_or_create_device_identity(home)
    with hq_db(f.hq) as store:
        header, payload = container.open_bundle(
            f.bundle(home).read_bytes(), hq_mod.device_lookup(store), hq_identity
        )
    return header, payload, device, hq_identity


def resign(f: Field, home: Path, change: Any, name: str) -> Path:
    """Open a genuine bundle with HQ's key, change its records, seal and sign it again."""
    header, payload, device, hq_identity = open_genuine(f, home)
    change(payload["submissions"])
    records = {"forms": payload["forms"], "submissions": payload["submissions"]}
    data = container.build_bundle(
        {"seq": header["seq"] + 100, "prev_hash": "0" * 64}, records, device, hq_identity.public()
    )
    path = f.tmp / name
    path.write_bytes(data)
    return path


def relabelled_form(tmp: Path) -> Path:
    """The same form id and version with the yes/no labels swapped (and a question renamed
    in its label): what a careless or hostile edit without a new version looks like."""
    text = CONTRACT.read_text(encoding="utf-8")
    swapped = (
        text.replace('en: "Yes"}', "en: __YES__}")
        .replace('en: "No"}', 'en: "Yes"}')
        .replace("en: __YES__}", 'en: "No"}')
        .replace("en: Village}", "en: Town}")
    )
    assert swapped != text
    path = tmp / "relabelled.yaml"
    path.write_text(swapped, encoding="utf-8")
    return path


# -- words on a ky/ru screen (tests/test_lang_*.py) ---------------------------------------

# Latin words a ky/ru screen may show: the programme's name and commands, language codes,
# file formats, key names and what a keyboard says.
ALLOWED: frozenset[str] = frozenset(
    {
        # the tool and its commands
        "yntymak",
        "collect",
        "drafts",
        "resume",
        "submissions",
        "list",
        "show",
        "edit",
        "void",
        "purge",
        "export",
        "forms",
        "validate",
        "tree",
        "import",
        "keys",
        "bundle",
        "create",
        "verify",
        "hq",
        "HQ",
        "enroll",
        "status",
        "config",
        "set",
        "unset",
        "help",
        # language codes, setting keys, formats, keyboard
        "ky",
        "ru",
        "en",
        "lang",
        "enumerator",
        "xlsx",
        "csv",
        "json",
        "jsonl",
        "geojson",
        "GeoJSON",
        "sav",
        "dta",
        "SPSS",
        "Stata",
        "zip",
        "yaml",
        "toml",
        "XLSForm",
        "YAML",
        "JSON",
        "CSV",
        "UUID",
        "SQLite",
        "OK",
        "Ctrl",
        "Enter",
        "Unicode",
    }
)

_UUID = re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b|\b[0-9a-f]{8}\b")
_OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")
_ENV = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")
# A token holding a path separator, or a file name with an extension.
_PATH = re.compile(r"[^\s'\"“”«»()]*[/\\][^\s'\"“”«»()]*|\b[\w.-]+\.[A-Za-z0-9]{1,5}\b")
# snake_case identifiers: form ids, question names, setting keys (never prose words).
_IDENT = re.compile(r"\b\w+_\w+\b")
_PLACEHOLDER = re.compile(r"\{\w*\}")
_WORD = re.compile(r"[A-Za-z]{2,}")


def english_words(text: str, allow: Iterable[str] = ()) -> set[str]:
    """The Latin-letter words in `text` that are not allowed on a ky/ru screen.

    Allowed: ALLOWED, the words in `allow` (form ids, question names, file names of the
    test), UUIDs and their 8-character prefixes, options (`--lang`), environment variables
    (`YNTYMAK_LANG`), paths and file names, snake_case identifiers and `{placeholders}`.
    An entry of `allow` is taken as a whole token ("dev1", "Aigul Toktosunova").
    """
    given = sorted(set(allow), key=len, reverse=True)
    for token in given:
        text = re.sub(rf"(?<![\w-]){re.escape(token)}(?![\w-])", " ", text)
    for pattern in (_UUID, _PLACEHOLDER, _OPTION, _ENV, _PATH, _IDENT):
        text = pattern.sub(" ", text)
    return {word for word in _WORD.findall(text) if word not in ALLOWED and word not in given}


# -- keys for a real terminal ------------------------------------------------------------

UP, DOWN, SPACE, ENTER, CTRL_B, CTRL_C, BACKSPACE = (
    "\x1b[A",
    "\x1b[B",
    " ",
    "\r",
    "\x02",
    "\x03",
    "\x7f",
)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


def spawn_yntymak(home, args, *, rows: int, cols: int, **env: str):
    """`python -m yntymak_cli ARGS` in a pty of rows x cols, with a clean UTF-8 environment
    whose home is `home` (extra variables in `env`)."""
    import pexpect

    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "YNTYMAK_HOME": str(home),
        "TERM": "xterm",
        "COLUMNS": str(cols),
        "LINES": str(rows),
    }
    return pexpect.spawn(
        sys.executable,
        ["-m", "yntymak_cli", *args],
        env={**base, **env},
        encoding="utf-8",
        timeout=20,
        dimensions=(rows, cols),
    )


class Term:
    """One `yntymak` process in a pty, with helpers that wait for a prompt before typing
    (keys typed before prompt_toolkit owns the terminal would be cooked by the tty)."""

    def __init__(self, home, *args: str) -> None:
        self.log = io.StringIO()
        self.child = spawn_yntymak(home, args, rows=40, cols=100, PROMPT_TOOLKIT_NO_CPR="1")
        self.child.logfile_read = self.log

    def prompt(self, label: str) -> None:
        """Wait for the prompt line of `label` (its instruction line names Ctrl-B)."""
        self.child.expect(re.escape(label) + r"[^\n]{0,120}?Ctrl-B")

    def answer(self, label: str, keys: str) -> None:
        self.prompt(label)
        self.child.send(keys)

    def expect(self, pattern: str) -> re.Match:
        self.child.expect(pattern)
        return self.child.match

    def finish(self) -> int:
        import pexpect

        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus

    @property
    def text(self) -> str:
        """Everything the terminal showed, without escape sequences."""
        return ANSI.sub("", self.log.getvalue())


def press(keys: str, ask):
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        with create_app_session(input=pipe, output=DummyOutput()):
            return ask()


# -- bundles made by hand ----------------------------------------------------------------


def frame(magic: bytes, parts: list[tuple[int, bytes]], signer) -> bytes:
    """Sections framed and signed as the magic's version does: format 1 signs the bytes,
    format 2 a digest of them (container.SIGNED_DIGEST_PREFIX)."""
    body = magic + b"".join(struct.pack(">BI", t, len(b)) + b for t, b in parts)
    if magic == container.BUNDLE_MAGIC:
        digest = container.SIGNED_DIGEST_PREFIX + hashlib.sha256(body).digest()
        return body + signer.sign(digest).signature
    return body + signer.sign(body).signature


def seal_raw(
    header: dict[str, Any], payload_text: bytes, device, hq_public: keys.HqPublic
) -> bytes:
    """Seal payload bytes as they are (build_bundle would re-encode them canonically), in
    the layout of the header's format_version (1 when the test writes it so)."""
    import zlib

    from nacl.public import PublicKey, SealedBox

    header_bytes = canonical_bytes(header)
    plaintext = hashlib.sha256(header_bytes).digest() + zlib.compress(payload_text)
    sealed = SealedBox(PublicKey(hq_public.box_key)).encrypt(plaintext)
    if header.get("format_version") == container.BUNDLE_VERSION:  # an empty media section
        parts = [(1, header_bytes), (2, bytes(sealed)), (container.TAG_MEDIA, b"")]
        return frame(container.BUNDLE_MAGIC, parts, device.signing_key)
    return frame(b"YKB\x01", [(1, header_bytes), (2, bytes(sealed))], device.signing_key)
