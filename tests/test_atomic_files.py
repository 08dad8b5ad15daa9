"""files.write_atomic / atomic_path: a file is written whole or not at all, and no temp file
is ever left behind. Bundles, receipts, keys, exports and imported forms all write through
these functions."""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path

import pytest

from yntymak_cli import files
from yntymak_cli.files import atomic_path, create_temp, write_atomic

POSIX = sys.platform != "win32"


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_writes_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    write_atomic(path, b"one")
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert names(tmp_path) == ["a.txt"]


@pytest.mark.skipif(not POSIX, reason="POSIX permissions")
def test_mode_as_asked_less_the_umask(tmp_path: Path) -> None:
    secret, public, plain = tmp_path / "k.key", tmp_path / "k.pub", tmp_path / "x.yaml"
    write_atomic(secret, b"s", mode=0o600)
    write_atomic(public, b"p", mode=0o644)
    write_atomic(plain, b"y")
    mask = current_umask()
    assert mode_of(secret) == 0o600 & ~mask
    assert mode_of(public) == 0o644 & ~mask
    assert mode_of(plain) == 0o666 & ~mask  # like any file the user creates


@pytest.mark.skipif(not POSIX, reason="POSIX permissions")
def test_replacing_takes_the_new_mode_not_the_old_files(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_atomic(path, b"new", mode=0o600)
    assert mode_of(path) == 0o600


def test_failure_mid_write_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bundle.ykb"
    path.write_bytes(b"old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, b"new" * 1000)
    assert path.read_bytes() == b"old"
    assert names(tmp_path) == ["bundle.ykb"]


def test_failure_to_rename_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.ykr"
    path.write_bytes(b"old")

    def refused(src: object, dst: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(PermissionError):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert names(tmp_path) == ["r.ykr"]


def test_interrupt_mid_write_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "a", b"x")
    assert names(tmp_path) == []


def test_exclusive_create_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    write_atomic(path, b"winner", overwrite=False)
    with pytest.raises(FileExistsError):
        write_atomic(path, b"loser", overwrite=False)
    assert path.read_bytes() == b"winner"
    assert names(tmp_path) == ["device.key"]


@pytest.mark.skipif(not POSIX, reason="symbolic links")
def test_exclusive_create_refuses_a_dangling_link(tmp_path: Path) -> None:
    link = tmp_path / "device.key"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        write_atomic(link, b"x", overwrite=False)
    assert not (tmp_path / "elsewhere").exists()
    assert names(tmp_path) == ["device.key"]


def test_exclusive_create_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAT USB sticks have no hard links: the name is checked, then the temp file renamed."""

    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "a.ykb"
    write_atomic(path, b"first", overwrite=False)
    with pytest.raises(FileExistsError):
        write_atomic(path, b"second", overwrite=False)
    assert path.read_bytes() == b"first"
    assert names(tmp_path) == ["a.ykb"]


def test_temp_files_are_hidden_unique_and_beside_the_target(tmp_path: Path) -> None:
    out = tmp_path / "x.xlsx"
    first, second = create_temp(out, suffix=".part"), create_temp(out, suffix=".part")
    assert first != second and first.parent == second.parent == tmp_path
    assert first.name.startswith(".x.xlsx.") and first.name.endswith(".part")
    assert first.read_bytes() == b""


def test_temp_name_of_a_long_name_stays_within_the_limit(tmp_path: Path) -> None:
    out = tmp_path / ("n" * 250)
    tmp = create_temp(out)
    assert len(tmp.name) <= 255
    tmp.unlink()


def test_temp_file_is_never_opened_through_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name already taken (a link someone left) is skipped, not written through."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    taken = tmp_path / ".a.taken.tmp"
    if POSIX:
        taken.symlink_to(victim)
    else:
        taken.write_bytes(b"keep")
    tries = iter([taken, tmp_path / ".a.free.tmp"])
    monkeypatch.setattr(files, "temp_name", lambda path, suffix=".tmp": next(tries))
    write_atomic(tmp_path / "a", b"new")
    assert victim.read_bytes() == b"keep"
    assert (tmp_path / "a").read_bytes() == b"new"


def test_atomic_path_publishes_when_the_block_ends(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    with atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".part")
        with tmp.open("w", encoding="utf-8") as f:
            f.write("[1, 2]")
        assert not path.exists()  # nothing under the real name while writing
    assert path.read_text(encoding="utf-8") == "[1, 2]"
    assert names(tmp_path) == ["out.json"]


def test_atomic_path_failure_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    path.write_bytes(b"old export")
    with pytest.raises(RuntimeError, match="database went away"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("database went away")
    assert path.read_bytes() == b"old export"
    assert names(tmp_path) == ["out.xlsx"]


def test_atomic_path_exclusive(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        with atomic_path(path, overwrite=False) as tmp:
            tmp.write_bytes(b"new")
    assert path.read_bytes() == b"old"
    assert names(tmp_path) == ["out.csv"]


# -- the callers ---------------------------------------------------------------------------


def test_bundle_write_errors_are_messages_with_their_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yntymak_cli.errors import YntymakError
    from yntymak_cli.sync import bundle

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    path = tmp_path / "dev-1.ykr"
    with pytest.raises(YntymakError, match="No space left") as info:
        bundle.write_atomic(path, b"receipt")
    assert str(path) in info.value.message
    assert isinstance(info.value.__cause__, OSError)  # shown with YNTYMAK_DEBUG=1
    assert names(tmp_path) == []


@pytest.mark.skipif(not POSIX, reason="POSIX permissions")
def test_secret_key_file_is_0600_even_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yntymak_cli.sync import keys

    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "device.key"
    assert keys._create_secret_file(path, b"winner")
    assert not keys._create_secret_file(path, b"loser")
    assert path.read_bytes() == b"winner" and mode_of(path) == 0o600
    assert names(tmp_path) == ["device.key"]


def test_export_temp_file_is_made_by_files(tmp_path: Path) -> None:
    from yntymak_cli.export.output import temp_file

    tmp = temp_file(tmp_path / "x.xlsx")
    assert tmp.name.startswith(".x.xlsx.") and tmp.name.endswith(".part")
    assert tmp.exists()
