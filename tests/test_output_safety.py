"""`-o` never writes over a database, its -wal/-shm, a key, a bundle or a receipt.

Every command that writes a file is tried against each protected file, where it lies, under
an innocent name (a copy renamed `report.xlsx`) and through a symlink; each must refuse with
exit 2 and leave the file's bytes as they were. Writing again over an earlier output of the
same kind stays allowed.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from yntymak_cli.cli import app

from .helpers import CONTRACT as FORM
from .helpers import CONTRACT_ANSWERS as ANSWERS
from .helpers import runner


def yn(home: Path, *args: Any) -> Any:
    # English messages: the form's default language (ky) would otherwise be used.
    return runner.invoke(app, ["--home", str(home), "--lang", "en", *map(str, args)])


def ok(home: Path, *args: Any) -> str:
    result = yn(home, *args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


@dataclass
class World:
    tmp: Path
    device: Path  # a field laptop's home: a form, a submission, device.key, a bundle
    hq: Path  # HQ's home: hq.key
    protected: dict[str, Path]  # kind -> the real file
    xlsform: Path  # an XLSForm to import


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from yntymak_cli.sync import container

    tmp = tmp_path_factory.mktemp("outputs")
    device, hq = tmp / "device", tmp / "hq"
    ok(hq, "hq", "init", "-o", tmp / "hq.pub")
    ok(device, "keys", "trust-hq", tmp / "hq.pub")
    ok(device, "collect", FORM, "--answers", ANSWERS, "--enumerator", "aida")
    bundles = tmp / "bundles"
    bundles.mkdir()
    ok(device, "bundle", "create", "-o", bundles)
    (bundle,) = bundles.glob("*.ykb")
    device_id = json.loads(ok(device, "keys", "show", "--json"))["device_id"]
    receipt = tmp / "receipts" / f"{device_id}-1.ykr"
    receipt.parent.mkdir()
    # Only the magic and the size matter to `-o`; a signed receipt is not needed here.
    receipt.write_bytes(container.RECEIPT_MAGIC + os.urandom(300))
    # A database with its -wal and -shm, held open so that both exist and hold data.
    side = tmp / "side" / "field.db"
    side.parent.mkdir()
    conn = sqlite3.connect(side)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES ('precious')")
    conn.commit()
    xlsform = tmp / "village.xlsx"
    ok(device, "forms", "export-xlsform", FORM, "-o", xlsform)
    protected = {
        "db": side,  # the home's own yntymak.db: see test_never_writes_over_the_homes_own_files
        "wal": Path(f"{side}-wal"),
        "shm": Path(f"{side}-shm"),
        "hq.key": hq / "hq.key",
        "device.key": device / "device.key",
        "ykb": bundle,
        "ykr": receipt,
    }
    for path in protected.values():
        assert path.stat().st_size > 0, path
    yield World(tmp, device, hq, protected, xlsform)
    conn.close()


# command -> (the arguments before `-o`, an innocent name for its output)
COMMANDS = {
    "export": (["export", "village_safety"], "report.xlsx"),
    "export-json": (["export", "village_safety", "--format", "json"], "report.json"),
    "export-csv-zip": (["export", "village_safety", "--format", "csv"], "report.zip"),
    "hq export": (["hq", "export", "village_safety"], "report.xlsx"),
    "keys export": (["keys", "export"], "device.pub"),
    "hq init": (["hq", "init"], "hq.pub"),
    "forms export-xlsform": (["forms", "export-xlsform", str(FORM)], "form.xlsx"),
    "forms import-xlsform": (["forms", "import-xlsform", "XLSFORM"], "form.yaml"),
}


def _args(world: World, command: str) -> list[str]:
    before, _ = COMMANDS[command]
    return [str(world.xlsform) if a == "XLSFORM" else a for a in before]


def _refused(world: World, command: str, target: Path, guarded: Path) -> None:
    before = guarded.read_bytes()
    result = yn(world.device, *_args(world, command), "-o", target)
    assert result.exit_code == 2, (command, target, result.output, result.exception)
    assert "refusing to write over" in result.output, result.output
    assert guarded.read_bytes() == before, f"{command} wrote over {guarded}"
    assert not (world.device / "hq.key").exists()  # hq init created no key on the way


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["db", "wal", "shm", "hq.key", "device.key", "ykb", "ykr"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_never_writes_over_a_protected_file(world: World, command: str, kind: str) -> None:
    real = world.protected[kind]
    # Where it lies, under its own name.
    _refused(world, command, real, real)
    # A copy under the name this command would happily write: recognised by content.
    folder = world.tmp / f"copy-{command.replace(' ', '_')}-{kind}"
    folder.mkdir()
    innocent = folder / COMMANDS[command][1]
    shutil.copyfile(real, innocent)
    _refused(world, command, innocent, innocent)
    # A symlink with an innocent name pointing at the real file.
    link = folder / f"link-{COMMANDS[command][1]}"
    os.symlink(real, link)
    _refused(world, command, link, real)


@pytest.mark.slow
@pytest.mark.parametrize("command", list(COMMANDS))
def test_never_writes_over_the_homes_own_files(world: World, command: str) -> None:
    """The home's database companions and keys, even when they do not exist right now."""
    db = world.device / "yntymak.db"
    submissions = _submissions(db)
    for name in ("yntymak.db", "yntymak.db-wal", "yntymak.db-shm", "hq.key", "trusted_hq.pub"):
        target = world.device / name
        existed = target.exists()
        result = yn(world.device, *_args(world, command), "-o", target)
        assert result.exit_code == 2, (command, name, result.output)
        assert "refusing to write over" in result.output
        if name.endswith(".key"):
            assert target.exists() == existed
    assert _submissions(db) == submissions


def _submissions(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT uuid, revision FROM revisions ORDER BY uuid").fetchall()
    finally:
        conn.close()


def test_hq_init_does_not_replace_its_own_key(tmp_path: Path) -> None:
    """The reported bug: `hq init -o HOME/hq.key` replaced the secret key and exited 0."""
    home = tmp_path / "hq"
    ok(home, "hq", "init", "-o", tmp_path / "hq.pub")
    key = (home / "hq.key").read_bytes()
    result = yn(home, "hq", "init", "-o", home / "hq.key")
    assert result.exit_code == 2 and "refusing to write over" in result.output
    assert (home / "hq.key").read_bytes() == key
    # A fresh home: no key is created only to be written over.
    fresh = tmp_path / "fresh"
    result = yn(fresh, "hq", "init", "-o", fresh / "hq.key")
    assert result.exit_code == 2 and not (fresh / "hq.key").exists()


def test_a_public_key_is_not_replaced_by_the_other_kind(world: World, tmp_path: Path) -> None:
    hq_pub = tmp_path / "hq.pub"
    shutil.copyfile(world.tmp / "hq.pub", hq_pub)
    result = yn(world.device, "keys", "export", "-o", hq_pub)
    assert result.exit_code == 2 and "HQ public key" in result.output
    device_pub = tmp_path / "device.pub"
    ok(world.device, "keys", "export", "-o", device_pub)
    result = yn(world.hq, "hq", "init", "-o", device_pub)
    assert result.exit_code == 2 and "device public key" in result.output
    assert json.loads(device_pub.read_text())["format"] == "yntymak-device-pub"


def test_bundle_create_never_writes_over_a_protected_file(world: World, tmp_path: Path) -> None:
    """The bundle's own name (DEVICE-SEQ.ykb) already taken by a database copy or a link."""
    ok(world.device, "collect", FORM, "--answers", ANSWERS, "--enumerator", "aida")
    device_id = json.loads(ok(world.device, "keys", "show", "--json"))["device_id"]
    for kind in ("db", "hq.key"):
        out = tmp_path / kind
        out.mkdir()
        name = out / f"{device_id}-2.ykb"
        shutil.copyfile(world.protected[kind], name)
        before = name.read_bytes()
        result = yn(world.device, "bundle", "create", "-o", out)
        assert result.exit_code == 2, result.output
        assert "refusing to write over" in result.output and name.read_bytes() == before
        name.unlink()
        os.symlink(world.protected[kind], name)
        before = world.protected[kind].read_bytes()
        result = yn(world.device, "bundle", "create", "-o", out)
        assert result.exit_code == 2, result.output
        assert world.protected[kind].read_bytes() == before


def test_csv_folder_export_never_writes_over_a_protected_file(world: World) -> None:
    # No folder of CSV files named like a key in the home, where `hq init` would find it.
    result = yn(
        world.device, "export", "village_safety", "--format", "csv", "-o", world.device / "hq.key"
    )
    assert result.exit_code == 2 and not (world.device / "hq.key").exists()
    # Nor a CSV file of the folder over a key copied there.
    out = world.tmp / "csv-folder"
    out.mkdir()
    victim = out / "village_safety.csv"
    shutil.copyfile(world.protected["hq.key"], victim)
    before = victim.read_bytes()
    result = yn(world.device, "export", "village_safety", "--format", "csv", "-o", out)
    assert result.exit_code == 2 and "refusing to write over" in result.output
    assert victim.read_bytes() == before


def test_hq_import_never_writes_a_receipt_over_a_protected_file(tmp_path: Path) -> None:
    hq, device = tmp_path / "hq", tmp_path / "device"
    ok(hq, "hq", "init", "-o", tmp_path / "hq.pub")
    ok(device, "keys", "export", "-o", tmp_path / "device.pub")
    ok(hq, "hq", "enroll", tmp_path / "device.pub", "--name", "Aida")
    ok(device, "keys", "trust-hq", tmp_path / "hq.pub")
    ok(device, "collect", FORM, "--answers", ANSWERS, "--enumerator", "aida")
    ok(device, "bundle", "create", "-o", tmp_path)
    (bundle,) = tmp_path.glob("*.ykb")
    receipts = tmp_path / "receipts"
    receipts.mkdir()
    victim = receipts / bundle.name.replace(".ykb", ".ykr")
    shutil.copyfile(hq / "hq.key", victim)
    before = victim.read_bytes()
    result = yn(hq, "hq", "import", bundle, "--receipts", receipts)
    # Exit 1 or 2: the bundle may be merged, but its receipt is not written.
    assert result.exit_code != 0 and "refusing to write over" in result.output
    assert victim.read_bytes() == before
    # Once the file is moved away, importing again writes the receipt (HQ's import is
    # idempotent), and importing once more replaces that earlier receipt.
    victim.unlink()
    ok(hq, "hq", "import", bundle, "--receipts", receipts)
    assert victim.read_bytes()[:3] == b"YKR"
    ok(hq, "hq", "import", bundle, "--receipts", receipts)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["export", "village_safety"], "report.xlsx"),
        (["export", "village_safety", "--summary"], "report.xlsx"),
        (["export", "village_safety", "--format", "json"], "report.json"),
        (["export", "village_safety", "--format", "jsonl"], "report.jsonl"),
        (["export", "village_safety", "--format", "csv"], "report.zip"),
        (["export", "village_safety", "--format", "csv"], "report-csv"),
        (["hq", "export", "village_safety"], "report.xlsx"),
        (["keys", "export"], "device.pub"),
        (["forms", "export-xlsform", str(FORM)], "form.xlsx"),
        (["forms", "import-xlsform", "XLSFORM"], "form.yaml"),
    ],
)
def test_writing_again_over_an_earlier_output_is_allowed(
    world: World, tmp_path: Path, args: list[str], name: str
) -> None:
    args = [str(world.xlsform) if a == "XLSFORM" else a for a in args]
    ok(world.device, *args, "-o", tmp_path / name)
    ok(world.device, *args, "-o", tmp_path / name)


def test_hq_init_rewrites_its_public_key(tmp_path: Path) -> None:
    ok(tmp_path / "hq", "hq", "init", "-o", tmp_path / "hq.pub")
    out = ok(tmp_path / "hq", "hq", "init", "-o", tmp_path / "hq.pub")
    assert "wrote its public key again" in out


@pytest.mark.parametrize("content", [b"%PDF-1.7\n\x00\xff binary", b"\x89PNG\r\n\x1a\n\x00"])
def test_an_unrelated_file_is_not_replaced(world: World, tmp_path: Path, content: bytes) -> None:
    victim = tmp_path / "report.xlsx"
    victim.write_bytes(content)
    result = yn(world.device, "export", "village_safety", "-o", victim)
    assert result.exit_code == 2 and "refusing to write over" in result.output
    assert victim.read_bytes() == content


# -- what an adversarial review found: links, pipes, devices, look-alike outputs ------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_fifo_or_device_at_o_is_refused_not_replaced(
    world: World, tmp_path: Path, command: str
) -> None:
    # A FIFO used to hang the write; a device node (as root) was replaced by a regular file.
    fifo = tmp_path / ("pipe" + Path(COMMANDS[command][1]).suffix)
    os.mkfifo(fifo)
    result = yn(world.device, *_args(world, command), "-o", fifo)
    assert result.exit_code == 2 and "not a regular file" in result.output, result.output
    assert fifo.is_fifo()
    if os.geteuid() == 0:
        node = tmp_path / ("null" + Path(COMMANDS[command][1]).suffix)
        os.mknod(node, 0o666 | 0o020000, os.makedev(1, 3))  # a character device, as /dev/null
        result = yn(world.device, *_args(world, command), "-o", node)
        assert result.exit_code == 2 and "not a regular file" in result.output, result.output
        assert node.is_char_device()


@pytest.mark.slow
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_symlink_at_o_is_refused_and_left_alone(
    world: World, tmp_path: Path, command: str
) -> None:
    # The write renames a temporary file over the name: it would replace the link itself.
    name = COMMANDS[command][1]
    first = tmp_path / ("first-" + name)
    ok(world.device, *_args(world, command), "-o", first)
    link = tmp_path / name
    link.symlink_to(first)
    before = first.read_bytes()
    result = yn(world.device, *_args(world, command), "-o", link)
    assert result.exit_code == 2 and "symbolic link" in result.output, result.output
    assert link.is_symlink() and first.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "name", "content"),
    [
        (["export", "village_safety", "--format", "json"], "answers.json", '{"village": "x"}\n'),
        (["export", "village_safety", "--format", "jsonl"], "notes.jsonl", '{"a": 1}\n'),
        (["export", "village_safety", "--format", "csv"], "budget.csv", "item,cost\nrice,10\n"),
        (["forms", "import-xlsform", "XLSFORM"], ".bashrc", "export PATH=$PATH:~/bin\n"),
        (
            ["forms", "import-xlsform", "XLSFORM"],
            "other_form.yaml",
            "id: other_form\nversion: '1'\nquestions:\n  - {name: a, type: text}\n",
        ),
    ],
)
def test_a_hand_made_file_is_not_taken_for_an_earlier_output(
    world: World, tmp_path: Path, args: list[str], name: str, content: str
) -> None:
    victim = tmp_path / name
    victim.write_text(content, encoding="utf-8")
    args = [str(world.xlsform) if a == "XLSFORM" else a for a in args]
    result = yn(world.device, *args, "-o", victim)
    assert result.exit_code == 2 and "refusing to write over" in result.output, result.output
    assert victim.read_text(encoding="utf-8") == content


def test_another_laptops_trusted_hq_or_public_key_is_never_replaced(
    world: World, tmp_path: Path
) -> None:
    # `hq init -o laptop/trusted_hq.pub` would silently switch that laptop to another HQ.
    laptop = tmp_path / "laptop"
    ok(laptop, "keys", "trust-hq", world.tmp / "hq.pub")
    trusted = laptop / "trusted_hq.pub"
    before = trusted.read_bytes()
    result = yn(tmp_path / "hq2", "hq", "init", "-o", trusted)
    assert result.exit_code == 2 and "refusing to write over" in result.output, result.output
    assert trusted.read_bytes() == before
    # Laptop B's device.pub is not laptop A's to replace; A's own may be written again.
    b_pub = tmp_path / "b.pub"
    ok(tmp_path / "b", "keys", "export", "-o", b_pub)
    b_before = b_pub.read_bytes()
    result = yn(world.device, "keys", "export", "-o", b_pub)
    assert result.exit_code == 2 and "another device" in result.output, result.output
    assert b_pub.read_bytes() == b_before
