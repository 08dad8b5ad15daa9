"""The output path: refused early when it cannot work, temporary files, cleanup on failure.

A bad `-o` (a folder where a file is wanted, a file where a CSV folder is wanted, a
folder that cannot be written) is refused before any record is read, naming the path
the user gave, rather than after minutes of streaming and naming an internal
temporary file.
"""

from __future__ import annotations

import os
from pathlib import Path

from yntymak_cli.errors import InvalidInput
from yntymak_cli.files import create_temp
from yntymak_cli.outputs import check_overwrite

# Names that ask for a file of another kind: `--format csv -o out.xlsx` is a slip, never
# a folder to create under that name.
_OTHER_FILE_SUFFIXES = {
    *(".xlsx", ".xlsm", ".xls", ".json", ".jsonl", ".geojson", ".txt", ".tsv", ".ods"),
}


FORMATS = ("xlsx", "csv", "json", "jsonl", "geojson", "sav", "dta")
# Formats written as one file per table, like CSV: a folder, a .zip, or one NAME.<fmt> file.
TABLE_FORMATS = ("csv", "sav", "dta")
STATS_FORMATS = ("sav", "dta")  # SPSS and Stata, through pyreadstat (export/stats.py), an extra
# The format a name asks for when --format is not given (a folder asks for csv).
SUFFIX_FORMATS = {
    ".xlsx": "xlsx",
    ".csv": "csv",
    ".zip": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".geojson": "geojson",
    ".sav": "sav",
    ".dta": "dta",
}


def names_folder(given: str) -> bool:
    """`-o outdir/`: the trailing separator, which Path() drops, asks for a folder."""
    return given.endswith(tuple(sep for sep in (os.sep, os.altsep, "/") if sep))


def output_format(given: str, fmt: str | None, form_id: str) -> str:
    """The format of an export to `-o given`.

    Without --format, the name says it: .xlsx, .csv / .zip / a folder named with a trailing
    slash, .json, .jsonl, .geojson; no suffix at all is xlsx (an existing folder named without
    the slash is refused as before: `-o ~/Desktop` must not scatter CSV files there); any other
    suffix is refused rather than guessed. With --format, a name that asks for another format is
    refused: `--format xlsx -o a.csv` would write an xlsx file named a.csv.
    """
    out = Path(given)
    slash = names_folder(given)
    folder = slash or out.is_dir()
    named = "csv" if slash else SUFFIX_FORMATS.get(out.suffix.lower())
    if slash and fmt in (None, "csv") and csv_target(out) != "folder":
        raise _csv_wrong_name(given, out)  # `-o out.zip/`: a folder, or the zip file?
    if fmt is None:
        if named is not None:
            return named
        if not out.suffix:
            return "xlsx"
        # A database, a key, a bundle, a link...: refused as such, the strongest reason.
        check_overwrite(out, "xlsx")
        raise InvalidInput(
            _t(
                "export_unknown_suffix",
                out=given,
                suffix=out.suffix,
                formats=", ".join(FORMATS),
                example=out.with_suffix(".xlsx"),
            )
        )
    if fmt not in FORMATS or named is None or named == fmt:
        return fmt  # an unknown --format is refused, with the list, by the exporter
    if fmt in STATS_FORMATS and (slash or out.suffix.lower() == ".zip"):
        return fmt  # SPSS/Stata tables in a folder or a .zip, as CSV
    if fmt == "csv" or (folder and not slash):
        return fmt  # check_output says what a CSV export or an existing folder needs
    if slash:  # `--format xlsx -o outdir/`: said as given, the folder need not exist yet
        example = out / f"{form_id}.{fmt}"
        raise InvalidInput(_t("output_is_folder", path=given, example=example))
    raise InvalidInput(
        _t(
            "export_format_mismatch",
            out=given,
            fmt=fmt,
            named=named,
            example=out.with_suffix(f".{fmt}"),
        )
    )


def _t(key: str, **params: object) -> str:
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


def csv_target(out: Path, fmt: str = "csv") -> str:
    """What a CSV (or sav/dta) export writes at `out`, as its name asks: "zip" (one .zip of
    every table), "file" (one .csv: a form without repeats) or "folder" (a file per table)."""
    suffix = out.suffix.lower()
    if suffix == ".zip":
        return "zip"
    if suffix == f".{fmt}":
        return "file"
    return "folder"


def is_folder_output(out: Path, fmt: str) -> bool:
    """CSV (sav, dta) goes to a folder of files unless `out` names a .zip or one file."""
    return fmt in TABLE_FORMATS and csv_target(out, fmt) == "folder"


def check_csv_tables(out: Path, tables: list[str], fmt: str = "csv") -> None:
    """A single .csv (.sav, .dta) file holds one table: a form with repeats needs a folder
    or a .zip."""
    if csv_target(out, fmt) != "file" or len(tables) <= 1:
        return
    from yntymak_cli.i18n import current_lang, t

    raise InvalidInput(
        t(
            "export_csv_needs_folder" if fmt == "csv" else "export_stats_needs_folder",
            current_lang(),
            out=out,
            tables=", ".join(tables),
            folder=out.with_suffix(""),
            zip=out.with_suffix(".zip"),
        )
    )


def check_output(out: Path, fmt: str, form_id: str) -> None:
    """Raise InvalidInput (exit 2) if `out` cannot take this export."""
    if fmt == "csv" and out.suffix.lower() in _OTHER_FILE_SUFFIXES and not out.exists():
        raise _csv_wrong_name(out, out)
    folder = is_folder_output(out, fmt)
    if out.name in ("", ".", ".."):
        if folder:
            return  # the current folder (or its parent) as the CSV folder: fine
        raise _is_folder(out, form_id, fmt)
    if folder:
        check_overwrite(out, "csv-folder")  # not named like a database or a key, either
        if out.exists() and not out.is_dir():
            from yntymak_cli.i18n import current_lang, t

            raise InvalidInput(t("output_csv_is_file", current_lang(), path=out))
    elif out.is_dir():
        raise _is_folder(out, form_id, fmt)
    else:
        # Never a database, a key, a bundle: only an earlier export of this format.
        if fmt in TABLE_FORMATS:
            zipped = "csv-zip" if fmt == "csv" else "stats-zip"
            kind = {"zip": zipped, "file": fmt}[csv_target(out, fmt)]
        else:
            kind = fmt
        check_overwrite(out, kind)
    ancestor = (out if folder else out.parent).absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        from yntymak_cli.i18n import current_lang, t

        raise InvalidInput(t("output_parent_is_file", current_lang(), path=out, parent=ancestor))


def _csv_wrong_name(given: object, out: Path) -> InvalidInput:
    return InvalidInput(
        _t(
            "export_csv_wrong_name",
            out=given,
            folder=out.with_suffix(""),
            zip=out.with_suffix(".zip"),
            csv=out.with_suffix(".csv"),
        )
    )


def _is_folder(out: Path, form_id: str, fmt: str) -> InvalidInput:
    from yntymak_cli.i18n import current_lang, t

    example = out / f"{form_id}.{fmt}"
    return InvalidInput(t("output_is_folder", current_lang(), path=out, example=example))


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

    Created with the usual permissions (umask), like the file it will become. Writers that
    can work in one block use files.atomic_path, which also renames and cleans up.
    """
    return create_temp(out, suffix=".part")
