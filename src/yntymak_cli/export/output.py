"""The output path: refused early when it cannot work, temporary files, cleanup on failure.

A bad `-o` (a folder where a file is wanted, a file where a CSV folder is wanted, a
folder that cannot be written) is refused before any record is read, naming the path
the user gave, rather than after minutes of streaming and naming an internal
temporary file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from yntymak_cli.errors import InvalidInput
from yntymak_cli.outputs import check_overwrite

# Room for the random suffix within the usual 255-byte file name limit.
_TEMP_NAME_KEEP = 200


def is_folder_output(out: Path, fmt: str) -> bool:
    """CSV goes to a folder of .csv files unless `out` names a .zip file."""
    return fmt == "csv" and out.suffix.lower() != ".zip"


def check_output(out: Path, fmt: str, form_id: str) -> None:
    """Raise InvalidInput (exit 2) if `out` cannot take this export."""
    folder = is_folder_output(out, fmt)
    if out.name in ("", ".", ".."):
        if folder:
            return  # the current folder (or its parent) as the CSV folder: fine
        raise InvalidInput(
            f"-o {out} is a folder: name the file to write, such as {out / f'{form_id}.{fmt}'}"
        )
    if folder:
        check_overwrite(out, "csv-folder")  # not named like a database or a key, either
        if out.exists() and not out.is_dir():
            raise InvalidInput(
                f"-o {out} is a file: CSV export writes a folder of .csv files; "
                "name a folder, or a file ending in .zip"
            )
    elif out.is_dir():
        raise InvalidInput(
            f"-o {out} is a folder: name the file to write, such as {out / f'{form_id}.{fmt}'}"
        )
    else:
        # Never a database, a key, a bundle: only an earlier export of this format.
        check_overwrite(out, "csv-zip" if fmt == "csv" else fmt)
    ancestor = (out if folder else out.parent).absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InvalidInput(f"cannot write {out}: {ancestor} is a file, not a folder")


def make_dirs(folder: Path) -> list[Path]:
    """`mkdir -p folder`, returning the folders it created (outermost first)."""
    missing: list[Path] = []
    node = folder.absolute()
    while not node.exists() and node != node.parent:
        missing.append(node)
        node = node.parent
    created: list[Path] = []
    try:
        for path in reversed(missing):
            path.mkdir()
            created.append(path)
    except OSError:
        remove_dirs(created)
        raise
    return created


def remove_dirs(created: list[Path]) -> None:
    """Undo make_dirs() after a failure, leaving any folder something else filled."""
    for path in reversed(created):
        try:
            path.rmdir()
        except OSError:
            pass


def temp_file(out: Path) -> Path:
    """A new, empty, uniquely named file next to `out` (same file system, so the final
    rename is atomic; unique, so two exports to one path cannot mix their bytes).

    Created with the usual permissions (umask), like the file it will become.
    """
    stem = out.name[:_TEMP_NAME_KEEP]
    while True:
        path = out.with_name(f".{stem}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
