"""Hardening of the laptop's store and files (issue 9): purge after edits, file modes,
a full disk, a `bundle create` killed half way, a zip bomb at HQ, NaN as a text answer."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from yntymak_cli.cli import app
from yntymak_cli.store.db import Store
from yntymak_cli.sync import container, keys

from .conftest import ROOT
from .helpers import CONTRACT as FORM
from .helpers import CONTRACT_ANSWERS as ANSWERS
from .helpers import (
    Field,
    collect_in,
    db,
    device_id,
    grow,
    rows,
    runner,
    tmpfs,
    write_answers,
    yn,
)

FIRST = "Qvr-первый-1187"  # the village of revision 1
SECOND = "Wbn-второй-5520"  # ... and of revision 2


def send(f: Field, home: Path) -> Path:
    """Bundle, import at HQ, apply the receipt: everything so far is acknowledged."""
    bundle = f.bundle(home)
    f.import_(bundle)
    yn(home, "bundle", "ack", f.receipt(bundle))
    return bundle


def purge(home: Path) -> str:
    return yn(home, "submissions", "purge", "--synced", "--yes")


def raw(home: Path) -> bytes:
    """Every byte of the database as it is on disk, main file and WAL."""
    data = (home / "yntymak.db").read_bytes()
    wal = home / "yntymak.db-wal"
    return data + (wal.read_bytes() if wal.exists() else b"")


def open_edit(home: Path, uuid: str, village: str) -> None:
    """`submissions edit` with the village changed, not finalised (edit is interactive)."""
    store = Store(home / "yntymak.db")
    try:
        record = store.get_record(uuid)
        answers = {**record["answers"], "village": village}
        store.open_edit(uuid, {"answers": answers}, "aida", record["device_id"], {})
    finally:
        store.close()


def finalise_edit(home: Path, uuid: str) -> int:
    store = Store(home / "yntymak.db")
    try:
        draft = store.get_draft(uuid)
        assert draft is not None
        answers = draft.state["answers"]
        return store.finalise(draft, answers, answers["village"])
    finally:
        store.close()


def exported_villages(home: Path, tmp: Path) -> list[str]:
    out = tmp / f"export-{home.name}.json"
    yn(home, "export", "village_safety", "--format", "json", "-o", out)
    text = out.read_text(encoding="utf-8")
    return [v for v in (FIRST, SECOND) if v in text]


# -- 1. purge is complete and can be run again ----------------------------------------------


@pytest.mark.slow
def test_purge_with_an_edit_open_erases_the_new_revision_after_its_receipt(field: Field) -> None:
    f = field
    uid = collect_in(f.a, f.tmp, FIRST)
    send(f, f.a)
    open_edit(f.a, uid, SECOND)  # an edit in progress when the laptop is purged

    out = purge(f.a)
    assert "Purged the answers of 1 submission(s) (1 revision(s))" in out
    # The edit is not at HQ yet: its draft is kept, and the purge says so.
    assert "1 edit(s) in progress" in out
    assert uid[:8] in yn(f.a, "drafts", env={"COLUMNS": "160"}).split()  # short UUIDs
    assert rows(f.a, "SELECT answers FROM revisions WHERE uuid = ?", uid) == [{"answers": None}]

    assert finalise_edit(f.a, uid) == 2
    # The new revision is on the laptop in clear again: listed, exported, not "purged".
    (sub,) = rows(f.a, "SELECT purged_at, answers FROM submissions WHERE uuid = ?", uid)
    assert sub["purged_at"] is None and SECOND in sub["answers"]
    assert exported_villages(f.a, f.tmp) == [SECOND]
    # Not acknowledged: kept.
    assert "Nothing to purge (1 submission(s) not yet acknowledged by HQ)" in purge(f.a)
    assert SECOND.encode() in raw(f.a)

    send(f, f.a)
    out = purge(f.a)
    assert "Purged the answers of 1 submission(s) (1 revision(s)); kept 0" in out
    assert SECOND.encode() not in raw(f.a) and FIRST.encode() not in raw(f.a)
    revs = rows(f.a, "SELECT revision, answers, paradata FROM revisions WHERE uuid = ?", uid)
    assert revs == [
        {"revision": 1, "answers": None, "paradata": None},
        {"revision": 2, "answers": None, "paradata": None},
    ]
    assert purge(f.a).startswith("Nothing to purge")
    assert exported_villages(f.a, f.tmp) == []
    # HQ holds the edit.
    (at_hq,) = rows(f.hq, "SELECT revision, answers FROM submissions WHERE uuid = ?", uid)
    assert at_hq["revision"] == 2 and SECOND in at_hq["answers"]


@pytest.mark.slow
def test_purge_erases_each_acknowledged_revision_and_keeps_the_rest(field: Field) -> None:
    f = field
    uid = collect_in(f.a, f.tmp, FIRST)
    send(f, f.a)
    open_edit(f.a, uid, SECOND)
    finalise_edit(f.a, uid)  # revision 2, not sent yet

    out = purge(f.a)
    assert "Purged the answers of 0 submission(s) (1 revision(s)); kept 1" in out
    assert FIRST.encode() not in raw(f.a)  # revision 1 is at HQ
    assert SECOND.encode() in raw(f.a)  # revision 2 is not
    assert exported_villages(f.a, f.tmp) == [SECOND]
    assert purge(f.a).startswith("Nothing to purge")

    send(f, f.a)
    assert "Purged the answers of 1 submission(s) (1 revision(s)); kept 0" in purge(f.a)
    assert SECOND.encode() not in raw(f.a)


def test_migration_repairs_a_submission_left_marked_purged_with_answers(tmp_path: Path) -> None:
    home = tmp_path / "old"
    uid = collect_in(home, tmp_path, FIRST)
    conn = db(home)
    with conn:  # the state an edit finalised after a purge left before 003
        conn.execute("UPDATE submissions SET purged_at = '2026-11-02T00:00:00Z'")
        conn.execute("DELETE FROM _migrations WHERE name = '003_laptop_hardening'")
    conn.close()
    assert exported_villages(home, tmp_path) == [FIRST]  # opening migrates
    (sub,) = rows(home, "SELECT purged_at FROM submissions WHERE uuid = ?", uid)
    assert sub["purged_at"] is None


# -- 2. the database and the home are the owner's only --------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # a usual umask: files 0644, folders 0755 unless asked otherwise
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_database_and_its_wal_are_0600_and_an_open_home_becomes_0700(
    tmp_path: Path, umask_022: None
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)  # made by hand, before the first run
    assert mode(home) == 0o755
    out = yn(home, "collect", FORM, "--answers", ANSWERS, "--enumerator", "aida")
    assert out.count("note:") == 1 and f"{home} could be read by other users" in out
    assert mode(home) == 0o700
    assert mode(home / "yntymak.db") == 0o600
    # SQLite makes the -wal and -shm with the database's mode.
    conn = db(home)
    try:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("UPDATE settings SET value = value")
        conn.commit()
        for suffix in ("-wal", "-shm"):
            assert mode(home / f"yntymak.db{suffix}") == 0o600, suffix
    finally:
        conn.close()
    # The note is said once: the home is tight now.
    assert "note:" not in yn(home, "submissions", "list", "--json")
    # A database an older version left 0644 is tightened too.
    os.chmod(home / "yntymak.db", 0o644)
    yn(home, "submissions", "list", "--json")
    assert mode(home / "yntymak.db") == 0o600


def _as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    """`yntymak ARGS` as an unprivileged user: as root, modes never stop a write."""
    return subprocess.run(
        [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
        + ["-m", "yntymak_cli", *args],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/nonexistent",
            # The code under test, wherever this test process imports it from.
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        },
    )


SETPRIV = shutil.which("setpriv") or "setpriv"
needs_root = pytest.mark.skipif(
    os.name == "nt" or os.geteuid() != 0 or not shutil.which("setpriv"),
    reason="runs yntymak as another user (needs root and setpriv)",
)


@pytest.fixture
def spell(tmp_path: Path) -> Iterator[Path]:
    """A home copied while a write was in the WAL, its -wal and -shm left 0444 (as after a
    read-only spell), owned by `nobody`. In /tmp: pytest's folder is closed to others."""
    base = Path(tempfile.mkdtemp(prefix="yntymak-ro-", dir="/tmp"))
    try:
        source = tmp_path / "source"
        collect_in(source, tmp_path, "Ак-Суу")
        home = base / "home"
        home.mkdir()
        conn = db(source)
        try:
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("UPDATE settings SET value = value")
            conn.commit()
            for name in ("yntymak.db", "yntymak.db-wal", "yntymak.db-shm", "device.key"):
                shutil.copy2(source / name, home / name)
        finally:
            conn.close()
        for name in ("yntymak.db-wal", "yntymak.db-shm"):
            os.chmod(home / name, 0o444)
        for path in (base, home, *home.iterdir()):
            os.chown(path, 65534, 65534)
        os.chmod(base, 0o755)
        yield home
    finally:
        shutil.rmtree(base, ignore_errors=True)


@needs_root
def test_wal_and_shm_left_read_only_are_made_writable_again(spell: Path) -> None:
    done = _as_nobody("--home", str(spell), "collect", str(FORM), "--answers", str(ANSWERS))
    assert done.returncode == 0, done.stderr
    for name in ("yntymak.db", "yntymak.db-wal", "yntymak.db-shm"):
        path = spell / name
        assert not path.exists() or mode(path) == 0o600, name
    conn = db(spell)
    try:
        assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 2
    finally:
        conn.close()


@needs_root
def test_read_only_files_of_another_user_are_named_with_the_fix(spell: Path) -> None:
    shm = spell / "yntymak.db-shm"
    os.chown(shm, 0, 0)  # not nobody's: it cannot change the mode itself
    done = _as_nobody("--home", str(spell), "collect", str(FORM), "--answers", str(ANSWERS))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"read-only for this user: {shm}" in done.stderr, done.stderr
    assert f'chown "$USER" {shm}' in done.stderr
    assert "Do not delete a -wal file" in done.stderr


# -- 3. a full disk -------------------------------------------------------------------------


BIG_FORM = (
    """
id: big
version: "1"
title: Big
questions:
"""
    + "".join(f"  - {{name: q{i}, type: text, label: Q{i}}}\n" for i in range(1, 7))
    + ("  - {name: last, type: text, label: Last}\n")
)


def test_disk_full_mid_survey_keeps_the_draft_and_says_how_to_resume(
    make_form, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yntymak_cli.collect import prompts
    from yntymak_cli.collect.prompts import ScriptedPrompter

    form = make_form(BIG_FORM)
    big = {f"q{i}": str(i) * 40_000 for i in range(1, 7)}

    def script(*items: object) -> ScriptedPrompter:
        prompter = ScriptedPrompter(items)
        monkeypatch.setattr(prompts, "make_prompter", lambda lang: prompter)
        return prompter

    with tmpfs(tmp_path / "small", "512k") as home:
        first = script(*big.items())
        args = ["--home", str(home), "collect", str(form), "--enumerator", "aida", "--lang", "en"]
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (result.output, result.exception)
        ((uuid, state),) = [(r["uuid"], r["state"]) for r in rows(home, "SELECT * FROM drafts")]
        saved = json.loads(state)["answers"]
        n = len(saved)
        assert 1 <= n < 6 and saved == {f"q{i}": big[f"q{i}"] for i in range(1, n + 1)}
        assert first.asked[-1] == f"q{n + 1}"  # asked, answered, not saved
        lines = result.output.strip().splitlines()
        # The command on a line of its own, which fits 80 columns with the whole UUID.
        assert lines[-2:] == [
            "The disk is full: the last answer was not saved, but the draft so far is safe.",
            f"Free some space, then run: yntymak resume {uuid}",
        ]
        assert "Traceback" not in result.output and "Error" not in result.output

        grow(home, "16m")
        rest = [(f"q{i}", big[f"q{i}"]) for i in range(n + 1, 7)]
        script(*rest, ("last", "done"), ("review", "finalise"))
        result = runner.invoke(app, ["--home", str(home), "resume", uuid, "--lang", "en"])
        assert result.exit_code == 0, result.output
        (sub,) = rows(home, "SELECT answers FROM submissions WHERE uuid = ?", uuid)
        assert json.loads(sub["answers"]) == {**big, "last": "done"}


@pytest.mark.slow
def test_purge_on_a_full_disk_reports_the_erasure_it_committed(field: Field) -> None:
    f = field
    secret = "Zxq-тайна-7731"
    done = collect_in(f.a, f.tmp, secret)
    send(f, f.a)
    with tmpfs(f.tmp / "small", "16m") as home:
        shutil.copytree(f.a, home, dirs_exist_ok=True)
        # Much unsent data: VACUUM has to rewrite all of it, the purge only one submission.
        for k in range(2):
            answers = write_answers(f.tmp / f"big-{k}.yaml", f"{k}-" + "Ы" * 150_000)
            yn(home, "collect", FORM, "--answers", answers, "--enumerator", "aida")
        conn = db(home)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        size = (home / "yntymak.db").stat().st_size
        free = shutil.disk_usage(home).free
        (home / "filler").write_bytes(bytes(free - size // 3))

        result = runner.invoke(
            app, ["--home", str(home), "submissions", "purge", "--synced", "--yes"]
        )
        assert result.exit_code == 0, result.output
        assert "Purged the answers of 1 submission(s) (1 revision(s)); kept 2" in result.output
        assert "the answers are erased, but the database could not be compacted" in result.output
        assert "run `yntymak submissions purge --synced` again" in result.output
        (sub,) = rows(home, "SELECT answers, purged_at FROM submissions WHERE uuid = ?", done)
        assert sub["answers"] is None and sub["purged_at"]

        (home / "filler").unlink()
        out = purge(home)
        assert "Nothing new to purge (2 not yet acknowledged); database compacted." in out
        assert rows(home, "SELECT * FROM settings WHERE key = 'purge_cleanup_pending'") == []
        assert secret.encode() not in raw(home)
        assert purge(home).startswith("Nothing to purge")


# -- 4. a bundle file appears only once the database knows it -------------------------------

_KILLED_CREATE = """
import os, sys
from pathlib import Path

import yntymak_cli.sync.bundle as bundle

real_link, real_replace = os.link, os.replace


def killed_after(real):
    def step(src, dst, *args, **kwargs):
        real(src, dst, *args, **kwargs)
        if str(dst).endswith(".ykb"):
            os._exit(9)  # power cut the moment the file has its name

    return step


if sys.argv[1] == "after-name":
    os.link, os.replace = killed_after(real_link), killed_after(real_replace)
else:  # killed once recorded, before the file got its name
    bundle._publish = lambda *args, **kwargs: os._exit(9)

from yntymak_cli.cli import app

app(["--home", sys.argv[2], "bundle", "create", "-o", sys.argv[3]])
"""


def _killed_create(home: Path, out: Path, where: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_CREATE, where, str(home), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 9, done.stderr


def _hq_chain(f: Field) -> dict:
    (device,) = json.loads(yn(f.hq, "hq", "status", "--json"))["devices"][:1]
    return device


@pytest.mark.slow
def test_bundle_create_killed_after_the_file_appeared_leaves_no_orphan(field: Field) -> None:
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    out = f.tmp / "stick"
    out.mkdir()
    _killed_create(f.a, out, "after-name")
    (first,) = out.glob("*.ykb")
    # The file under its name is a bundle the database knows, with that very content.
    (row,) = rows(f.a, "SELECT seq, file_name, file_hash FROM sync_bundles")
    assert row["file_name"] == first.name
    assert row["file_hash"] == container.bundle_file_hash(first.read_bytes())
    # The next run does not collide with it: it makes bundle 2 (the data is still unsent).
    # A temp file of a run killed before recording bundle 2 is garbage, and goes.
    second = f"{device_id(f.a)}-2.ykb"
    (out / f".{second}.0123456789ab.tmp").write_bytes(b"half a bundle")
    text = yn(f.a, "bundle", "create", "-o", out)
    assert "(bundle 2)" in text
    assert sorted(p.name for p in out.iterdir()) == sorted([first.name, second])
    assert "2 new" not in f.import_(*sorted(out.glob("*.ykb")))
    device = _hq_chain(f)
    assert device["chain_breaks"] == [] and device["gaps"] == []


@pytest.mark.slow
def test_bundle_create_killed_before_the_file_got_its_name_is_finished_next_time(
    field: Field,
) -> None:
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    out = f.tmp / "stick"
    out.mkdir()
    _killed_create(f.a, out, "before-name")
    assert list(out.glob("*.ykb")) == []  # nothing that looks like a bundle
    (row,) = rows(f.a, "SELECT seq, file_name, file_hash FROM sync_bundles")
    text = yn(f.a, "bundle", "create", "-o", out)
    assert "Finished bundle 1" in text and "(bundle 1)" in text
    (bundle,) = out.glob("*.ykb")
    assert bundle.name == row["file_name"]
    assert container.bundle_file_hash(bundle.read_bytes()) == row["file_hash"]
    assert [p.name for p in out.iterdir()] == [bundle.name]  # the temp file is gone
    assert "1 new" in f.import_(bundle)
    yn(f.a, "bundle", "ack", f.receipt(bundle))
    assert "Nothing to send" in yn(f.a, "bundle", "create", "-o", out)


# -- 5. a zip bomb costs HQ no memory -------------------------------------------------------


@pytest.mark.slow
def test_zip_bomb_is_refused_without_inflating_it_into_memory(
    field: Field, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yntymak_cli.sync.bundle import pending_records

    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    store = Store(f.a / "yntymak.db")
    try:
        records = pending_records(store)
        forms = store.form_definitions([records[0]["form_hash"]])
    finally:
        store.close()
    # 600 MB of zeros, past the 512 MB limit, compress to about 600 KB.
    deflate = zlib.compressobj(9)
    zeros = bytes(1024 * 1024)
    bomb = b"".join([*(deflate.compress(zeros) for _ in range(600)), deflate.flush()])
    assert len(bomb) < 700 * 1024
    device = keys.load_or_create_device_identity(f.a)
    hq = keys.read_hq_public(f.tmp / "hq.pub")
    with monkeypatch.context() as m:
        m.setattr(container.zlib, "compress", lambda data, level=-1: bomb)
        data = container.build_bundle(
            {"seq": 1, "prev_hash": None}, {"forms": forms, "submissions": records}, device, hq
        )
    path = f.tmp / f"{device_id(f.a)}-1.ykb"
    path.write_bytes(data)

    tracemalloc.start()
    try:
        result = runner.invoke(
            app, ["--home", str(f.hq), "hq", "import", str(path), "--receipts", str(f.receipts)]
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 2, result.output
    # The refusal reads as before.
    assert "the bundle payload expands to more than 536870912 bytes; refused" in result.output
    assert peak < 64 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"


# -- 6. a text answer is text ---------------------------------------------------------------

TEXT_FORM = """
id: t
version: "1"
title: T
questions:
  - {name: name, type: text, label: Name}
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("NaN", "name: must be text, not a number"),
        ("Infinity", "name: must be text, not a number"),
        ("1.10", "name: must be text, not a number"),
        ('"a\\udcffb"', "name: must be text in valid Unicode"),
        ("true", "name: must be text"),
        ('{"a": 1}', "name: must be text"),
    ],
)
def test_a_text_answer_that_is_not_a_string_is_refused(
    make_form, tmp_path: Path, value: str, message: str
) -> None:
    form = make_form(TEXT_FORM)
    answers = tmp_path / "answers.json"
    answers.write_text(f'{{"name": {value}}}', encoding="utf-8")
    out = yn(tmp_path / "home", "collect", form, "--answers", answers, code=2)
    assert message in out, out
    assert "nan" not in out.lower().replace("name", "")
    assert rows(tmp_path / "home", "SELECT * FROM submissions") == []
    # Quoted, the same characters are text.
    answers.write_text(json.dumps({"name": "NaN"}), encoding="utf-8")
    uid = yn(tmp_path / "home", "collect", form, "--answers", answers).strip().splitlines()[-1]
    (sub,) = rows(tmp_path / "home", "SELECT answers FROM submissions WHERE uuid = ?", uid)
    assert json.loads(sub["answers"]) == {"name": "NaN"}


def test_a_json_integer_for_a_text_answer_keeps_its_digits(make_form, tmp_path: Path) -> None:
    form = make_form(TEXT_FORM)
    answers = tmp_path / "answers.json"
    answers.write_text('{"name": 12345678901234567890}', encoding="utf-8")
    uid = yn(tmp_path / "home", "collect", form, "--answers", answers).strip().splitlines()[-1]
    (sub,) = rows(tmp_path / "home", "SELECT answers FROM submissions WHERE uuid = ?", uid)
    assert json.loads(sub["answers"]) == {"name": "12345678901234567890"}


def test_a_non_utf8_argument_is_refused_before_anything_is_written(
    make_form, tmp_path: Path
) -> None:
    # On Linux, argv bytes that are not UTF-8 arrive as lone surrogates; SQLite cannot store
    # them. The command must refuse (exit 2) in one line and write nothing.
    form = make_form(TEXT_FORM)
    answers = tmp_path / "answers.json"
    answers.write_text('{"name": "ok"}', encoding="utf-8")
    home = tmp_path / "home"
    out = yn(home, "collect", form, "--answers", answers, "--enumerator", "\udcff\udcfe", code=2)
    assert "not valid Unicode" in out and "Traceback" not in out
    assert rows(home, "SELECT * FROM submissions") == []
    assert rows(home, "SELECT * FROM drafts") == []
