"""`yntymak hq targets set FORM --file targets.csv`: a targets file read and stored.

The file is input from outside (typed by hand, saved from Excel): bounded in size and
rows, its names plain text, its targets non-negative integers. The first problem found
refuses the whole file with its line and column, and nothing is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yntymak_cli.errors import InvalidInput, Problem
from yntymak_cli.plain import plain
from yntymak_cli.store import targets as targets_store
from yntymak_cli.store.hqdb import HqDb

MAX_BYTES = 1024 * 1024  # a district or staff list is a few kilobytes
MAX_ROWS = 10_000
MAX_NAME_CHARS = 200
MAX_TARGET = 10_000_000  # far above any survey, and inside a 32-bit INTEGER
_DIGITS = re.compile(r"[0-9]+")


def _t(key: str, **params: object) -> str:
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


@dataclass(frozen=True)
class TargetsFile:
    kind: str  # "district" | "enumerator": the header's first column
    rows: tuple[tuple[str, int], ...]  # (name, target), in file order


@dataclass(frozen=True)
class SetResult:
    form_id: str
    kind: str
    count: int


def _refuse(path: Path, line: int, col: int, key: str, **params: object) -> InvalidInput:
    return InvalidInput(str(Problem(plain(path), line, col, _t(key, **params))))


def read_targets(path: Path) -> TargetsFile:
    """Parse a targets CSV (UTF-8, a BOM tolerated, `,` or Excel's `;`), or InvalidInput."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        from yntymak_cli.i18n import current_lang, os_error_text

        raise InvalidInput(
            _t("targets_cannot_read", path=plain(path), reason=os_error_text(exc, current_lang()))
        ) from None
    if len(data) > MAX_BYTES:
        raise _refuse(path, 1, 1, "targets_too_large", limit=MAX_BYTES // 1024)
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise _refuse(path, line, col, "targets_not_utf8") from None
    first = content.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","
    # newline="": the csv module reads line ends itself (a quoted cell may span lines).
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter, strict=True)
    try:
        return _parse(path, reader)
    except csv.Error as exc:
        raise _refuse(path, reader.line_num or 1, 1, "targets_bad_csv", detail=str(exc)) from None


def _parse(path: Path, reader: Any) -> TargetsFile:  # a csv reader (line_num)
    header = next(reader, None)
    cells = [c.strip().lower() for c in header or []]
    while len(cells) > 2 and not cells[-1]:  # Excel's trailing empty columns
        cells.pop()
    if len(cells) != 2 or cells[0] not in targets_store.KINDS or cells[1] != "target":
        col = 1 if not cells or cells[0] not in targets_store.KINDS else 2
        raise _refuse(path, 1, col, "targets_bad_header")
    kind = cells[0]
    rows: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any(c.strip() for c in row):
            continue  # a blank line
        if len(rows) >= MAX_ROWS:
            raise _refuse(path, line, 1, "targets_too_many", limit=MAX_ROWS)
        extra = [i for i, c in enumerate(row[2:], 3) if c.strip()]
        if extra:
            raise _refuse(path, line, extra[0], "targets_extra_cell")
        name = row[0].strip()
        value = row[1].strip() if len(row) > 1 else ""
        if not name:
            raise _refuse(path, line, 1, "targets_no_name")
        if not name.isprintable():  # control, format (bidi, zero-width) or line separators
            raise _refuse(path, line, 1, "targets_control", name=_escaped(name))
        if len(name) > MAX_NAME_CHARS:
            raise _refuse(path, line, 1, "targets_name_too_long", limit=MAX_NAME_CHARS)
        if name in seen:
            raise _refuse(path, line, 1, "targets_duplicate", name=name, first=seen[name])
        # ASCII digits only: "１０" or "1e3" or "-5" is a typing slip, not a number. The
        # length first: int() refuses a string of thousands of digits with its own error.
        digits = value.lstrip("0") or "0"
        if not _DIGITS.fullmatch(value) or len(digits) > 8 or int(digits) > MAX_TARGET:
            raise _refuse(
                path, line, 2, "targets_bad_target", value=_escaped(value[:40]), max=MAX_TARGET
            )
        seen[name] = line
        rows.append((name, int(digits)))
    return TargetsFile(kind, tuple(rows))


def _escaped(name: str) -> str:
    """Every character that is not printable as \\uXXXX, so the message stays one line."""
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in name)


def check_form(db: HqDb, form_id: str) -> None:
    """InvalidInput unless HQ holds the form, with the forms it holds."""
    known = db.form_ids()
    if form_id not in known:
        shown = ", ".join(plain(f) for f in known) or _t("none_yet")
        raise InvalidInput(_t("targets_unknown_form", form=plain(form_id), known=shown))


def set_targets(db: HqDb, form_id: str, path: Path) -> SetResult:
    """Replace the form's targets of the file's kind with the file's, in one transaction."""
    check_form(db, form_id)
    parsed = read_targets(path)
    at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    targets_store.replace(db, form_id, parsed.kind, parsed.rows, at)
    return SetResult(form_id, parsed.kind, len(parsed.rows))
