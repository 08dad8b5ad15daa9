"""Streaming xlsx writer: openpyxl write-only mode, one sheet per table.

Rows go straight to each sheet's temporary file, so memory stays flat however many
submissions there are. Text is always stored as text: openpyxl would turn a string
starting with "=" into a formula and "#N/A" into an error cell, so those are written
as explicit inline-string cells.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from yntymak_cli.export.cells import EXCEL_TEXT_MAX, xml_safe
from yntymak_cli.export.layout import Layout, SheetNames, Table
from yntymak_cli.export.paradata import ParadataTable
from yntymak_cli.export.summary import SUMMARY_SHEET, SummaryCounter, write_summary
from yntymak_cli.files import atomic_path

# Rows per sheet, header included (Excel's limit). A longer table continues on a
# further sheet named "<table> (2)". Tests monkeypatch this to a small number.
MAX_SHEET_ROWS = 1_048_576
# Columns per sheet (Excel's limit). A wider table continues on sheets named
# "<table> (c2)", "<table> (c3)"..., each closing with the table's key columns
# (Table.keys) so the parts join row by row. Tests monkeypatch this too.
MAX_SHEET_COLUMNS = 16_384

# Strings openpyxl would not store as plain text, or that Excel cannot hold: a leading
# "=" (formula), a leading "#" (maybe an error code such as #N/A), control characters.
_CARE = re.compile(r"^[=#]|[\x00-\x08\x0b\x0c\x0e-\x1f]")
# The same test over a whole row's text joined by newlines (one regex call per row
# instead of one per cell); a hit only means "look at each cell".
_ROW_CARE = re.compile(r"^[=#]|[\x00-\x08\x0b\x0c\x0e-\x1f]", re.MULTILINE)
_ERROR_CODES = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))


def _staging_error(exc: Exception, streaming: bool) -> OSError | None:
    """A failed write to openpyxl's sheet files, which live in the temporary folder
    until finish() packs them, as an OSError naming that folder (so a full disk there is
    not blamed on the output's); None for any other error.

    lxml, openpyxl's XML writer when installed, reports these as
    SerialisationError("IO_ENOSPC") rather than OSError. While rows stream, any OSError
    is one of these; in finish() an OSError is the output's own.
    """
    text = str(exc)
    if type(exc).__name__ == "SerialisationError" and text.startswith("IO_"):
        code = getattr(errno, text[3:], errno.EIO)
        return OSError(code, os.strerror(code), tempfile.gettempdir())
    if streaming and isinstance(exc, OSError):
        if exc.filename is None:
            exc.filename = tempfile.gettempdir()
        return exc
    return None


class _Part:
    """The sheets holding one run of a table's rows: one sheet, or one per column part."""

    __slots__ = ("sheets", "rows", "part")

    def __init__(self, sheets: list[Any], part: int) -> None:
        self.sheets = sheets
        self.rows = 1  # header included
        self.part = part


def column_parts(table: Table, limit: int) -> list[list[int]] | None:
    """Positions (in a full row) of the columns on each sheet of a table wider than
    `limit`: its other columns in order, cut to fit, each part closed by its keys.
    None when the table fits one sheet."""
    headers = table.headers
    if len(headers) <= limit:
        return None
    first_tail = len(headers) - len(table.tail)
    keys = [first_tail + table.tail.index(key) for key in table.keys]
    rest = [i for i in range(len(headers)) if i not in keys]
    size = limit - len(keys)
    return [rest[i : i + size] + keys for i in range(0, len(rest), size)]


class XlsxSink:
    def __init__(
        self,
        out: Path,
        layout: Layout,
        names: SheetNames,
        summary: SummaryCounter | None = None,
        paradata: bool = False,
    ) -> None:
        from openpyxl import Workbook

        self.out = out
        self.layout = layout
        self.names = names
        self.summary = summary
        self.truncated = 0  # text values cut to Excel's 32,767 characters
        self.rows: dict[str, int] = {}  # sheet name -> data rows
        self._wb = Workbook(write_only=True)
        self._summary_ws = self._wb.create_sheet(SUMMARY_SHEET) if summary else None
        self._parts: dict[str, _Part] = {}
        # --paradata: its rows as one more table, on the last sheet(s) (export/paradata.py).
        self._paradata = ParadataTable() if paradata else None
        tables = [*layout.tables, *([self._paradata] if self._paradata else [])]
        self._columns = {t.name: column_parts(t, MAX_SHEET_COLUMNS) for t in tables}
        # Tables spread over several sheets by columns (for a warning).
        self.split = [name for name, parts in self._columns.items() if parts]
        for table in tables:
            self._parts[table.name] = self._open(table, 1)

    def _open(self, table: Table, part: int, index: int | None = None) -> _Part:
        """The sheets of run `part` of a table's rows, created at `index` (None: last)."""
        columns = self._columns[table.name]
        headers = table.headers
        if columns is None:
            title = table.sheet if part == 1 else self.names.continuation(table.sheet, part)
            return _Part([self._sheet(title, headers, index)], part)
        sheets = []
        for c, positions in enumerate(columns, 1):
            if part == 1 and c == 1:
                title = table.sheet
            else:
                title = self.names.continuation(table.sheet, part, c)
            at = None if index is None else index + c - 1
            sheets.append(self._sheet(title, [headers[i] for i in positions], at))
        return _Part(sheets, part)

    def _sheet(self, title: str, headers: list[str], index: int | None) -> Any:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        ws = self._wb.create_sheet(title, index)
        # Sheet properties must be set before the first row is written.
        ws.freeze_panes = "A2"
        for i, header in enumerate(headers, 1):
            width = min(max(len(header) + 2, 9), 40)
            ws.column_dimensions[get_column_letter(i)].width = width
        bold = Font(bold=True)
        row = []
        for header in headers:
            cell = WriteOnlyCell(ws, value=xml_safe(header)[:EXCEL_TEXT_MAX])
            cell.data_type = "s"
            cell.font = bold
            row.append(cell)
        ws.append(row)
        self.rows[title] = 0
        return ws

    def write(self, table: Table, row: list[Any]) -> None:
        p = self._parts[table.name]
        if p.rows >= MAX_SHEET_ROWS:
            after = self._wb.index(p.sheets[-1]) + 1
            p = self._parts[table.name] = self._open(table, p.part + 1, after)
        columns = self._columns[table.name]
        try:
            if columns is None:
                self._append(p.sheets[0], row)
            else:
                for ws, positions in zip(p.sheets, columns, strict=True):
                    self._append(ws, [row[i] for i in positions])
        except Exception as exc:
            error = _staging_error(exc, streaming=True)
            if error is None:
                raise
            raise error from None
        p.rows += 1

    def write_paradata(self, row: list[Any]) -> None:
        assert self._paradata is not None
        self.write(self._paradata, row)

    def _append(self, ws: Any, row: list[Any]) -> None:
        text = "\n".join([v for v in row if v.__class__ is str])
        if len(text) > EXCEL_TEXT_MAX or _ROW_CARE.search(text):
            for i, value in enumerate(row):
                if value.__class__ is str and (_CARE.search(value) or len(value) > EXCEL_TEXT_MAX):
                    row[i] = self._text_cell(ws, value)
        ws.append(row)
        self.rows[ws.title] += 1

    def _text_cell(self, ws: Any, value: str) -> Any:
        from openpyxl.cell import WriteOnlyCell

        value = xml_safe(value)
        if len(value) > EXCEL_TEXT_MAX:
            self.truncated += 1
            value = value[:EXCEL_TEXT_MAX]
        if not (value.startswith("=") or value in _ERROR_CODES):
            return value
        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"  # text, not a formula / error: "=HYPERLINK(...)" stays inert
        return cell

    def finish(self) -> list[Path]:
        if self._summary_ws is not None and self.summary is not None:
            write_summary(self._summary_ws, self.summary)
        from openpyxl.writer.excel import ExcelWriter

        try:
            # atomic_path: fsync, rename, fsync the folder; the temp file goes on failure.
            # Workbook.save() would leave its zip open when a write fails, and the zip's
            # __del__ would later retry on the full disk and print "Exception ignored":
            # the inner `with` closes it, whatever happens.
            with (
                atomic_path(self.out) as tmp,
                zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive,
            ):
                ExcelWriter(self._wb, archive).save()
        except Exception as exc:
            error = _staging_error(exc, streaming=False)
            if error is None:
                raise
            raise error from None
        return [self.out]

    def abort(self) -> None:
        # Nothing is written at `out`; remove the sheets' temporary files now rather
        # than at interpreter exit (openpyxl's atexit hook), they can be large.
        for ws in self._wb.worksheets:
            writer = getattr(ws, "_writer", None)
            if writer is None:
                continue
            try:
                if not ws.closed:
                    ws.close()
                writer.cleanup()
            except Exception:  # best effort: the original error matters more
                pass
