"""Streaming xlsx writer: openpyxl write-only mode, one sheet per table.

Rows go straight to each sheet's temporary file, so memory stays flat however many
submissions there are. Text is always stored as text: openpyxl would turn a string
starting with "=" into a formula and "#N/A" into an error cell, so those are written
as explicit inline-string cells.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from yntymak_cli.export.cells import EXCEL_TEXT_MAX, xml_safe
from yntymak_cli.export.layout import Layout, SheetNames, Table
from yntymak_cli.export.output import temp_file
from yntymak_cli.export.summary import SUMMARY_SHEET, SummaryCounter, write_summary

# Rows per sheet, header included (Excel's limit). A longer table continues on a
# further sheet named "<table> (2)". Tests monkeypatch this to a small number.
MAX_SHEET_ROWS = 1_048_576

# Strings openpyxl would not store as plain text, or that Excel cannot hold: a leading
# "=" (formula), a leading "#" (maybe an error code such as #N/A), control characters.
_CARE = re.compile(r"^[=#]|[\x00-\x08\x0b\x0c\x0e-\x1f]")
# The same test over a whole row's text joined by newlines (one regex call per row
# instead of one per cell); a hit only means "look at each cell".
_ROW_CARE = re.compile(r"^[=#]|[\x00-\x08\x0b\x0c\x0e-\x1f]", re.MULTILINE)
_ERROR_CODES = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))


class _Part:
    """One physical sheet of a table."""

    __slots__ = ("ws", "rows", "part")

    def __init__(self, ws: Any, part: int) -> None:
        self.ws = ws
        self.rows = 0  # header included
        self.part = part


class XlsxSink:
    def __init__(
        self,
        out: Path,
        layout: Layout,
        names: SheetNames,
        summary: SummaryCounter | None = None,
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
        for table in layout.tables:
            self._parts[table.name] = self._open(table, table.name, 1)

    def _open(self, table: Table, title: str, part: int, index: int | None = None) -> _Part:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        ws = self._wb.create_sheet(title, index)
        # Sheet properties must be set before the first row is written.
        ws.freeze_panes = "A2"
        headers = table.headers
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
        p = _Part(ws, part)
        p.rows = 1
        return p

    def write(self, table: Table, row: list[Any]) -> None:
        p = self._parts[table.name]
        if p.rows >= MAX_SHEET_ROWS:
            title = self.names.continuation(table.name, p.part + 1)
            p = self._parts[table.name] = self._open(
                table, title, p.part + 1, self._wb.index(p.ws) + 1
            )
        text = "\n".join([v for v in row if v.__class__ is str])
        if len(text) > EXCEL_TEXT_MAX or _ROW_CARE.search(text):
            for i, value in enumerate(row):
                if value.__class__ is str and (_CARE.search(value) or len(value) > EXCEL_TEXT_MAX):
                    row[i] = self._text_cell(p.ws, value)
        p.ws.append(row)
        p.rows += 1
        self.rows[p.ws.title] += 1

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
        tmp = temp_file(self.out)
        try:
            self._wb.save(tmp)
            os.replace(tmp, self.out)
        finally:
            tmp.unlink(missing_ok=True)
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
