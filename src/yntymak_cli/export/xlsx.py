"""Streaming xlsx writer: XlsxWriter in constant_memory mode, one sheet per table.

Each row goes straight to its sheet's temporary file, so memory stays flat however many
submissions there are; close() packs those files into the xlsx. Text is always stored as
text: the workbook is opened with XlsxWriter's string conversions off, so "=..." never
becomes a formula, "http://..." a link or "12" a number, and "#N/A" stays a string.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Any

from yntymak_cli.export.cells import EXCEL_TEXT_MAX, ILLEGAL_XML, xml_safe
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

# Number formats of date and datetime cells (openpyxl's, which earlier exports used).
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd h:mm:ss"
# A row whose text is shorter than this cannot hold a cell over Excel's limit, which
# counts UTF-16 code units (2 per character outside the BMP).
_LONG = EXCEL_TEXT_MAX // 2


def workbook_options(tmpdir: str) -> dict[str, Any]:
    """XlsxWriter Workbook options of every export."""
    return {
        "constant_memory": True,  # rows streamed to temporary files: flat memory
        "tmpdir": tmpdir,
        # Text stays text (strings are answers, never formulas, links or numbers).
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
        "use_zip64": True,  # sheets past 4 GB uncompressed; only big files use it
    }


def excel_text(value: str) -> tuple[str, bool]:
    """`value` as a cell can hold it: control characters as U+FFFD (xml_safe), cut to
    Excel's 32,767 UTF-16 code units; and whether it was cut."""
    value = xml_safe(value)
    if len(value) <= _LONG:
        return value, False
    units = value.encode("utf-16-le")
    if len(units) <= 2 * EXCEL_TEXT_MAX:
        return value, False
    # "ignore": a character split in two at the cut is dropped whole.
    return units[: 2 * EXCEL_TEXT_MAX].decode("utf-16-le", "ignore"), True


def order_sheets(workbook: Any, sheets: list[Any]) -> None:
    """Put the workbook's sheets in the order of `sheets` (a permutation of them).

    XlsxWriter writes sheets in creation order and has no way to add one at a position,
    but a table's continuation sheet ("<table> (2)") is only created when its rows pass
    Excel's limit, after the sheets of later tables. Its list of sheets and each sheet's
    `index` (which picks the sheet that opens first) are all XlsxWriter keeps of the
    order, so both are set here, before close().
    """
    objs = workbook.worksheets_objs
    if sorted(map(id, sheets)) != sorted(map(id, objs)):
        raise ValueError("order_sheets needs every sheet of the workbook once")
    objs[:] = sheets
    for index, ws in enumerate(sheets):
        ws.index = index


class _OutputFile:
    """The xlsx file XlsxWriter packs (its ZipFile writes here), buffered.

    A failed write names this file: zipfile's errors name none, and while packing
    XlsxWriter also writes staged parts into the temporary folder, so this tells a full
    output disk from a full temporary folder. After a failure, or once closed, it takes
    any further write silently: XlsxWriter leaves its ZipFile open when a write fails,
    and the ZipFile's __del__ would later retry and print "Exception ignored".
    """

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        self._fh = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 (closed by close())
        self._dead = False
        self._pos = 0  # once dead: where the ZipFile believes it is

    def _failed(self, exc: OSError) -> OSError:
        self._dead = True
        exc.filename = self.name
        return exc

    def write(self, data: bytes) -> int:
        if self._dead:
            self._pos += len(data)
            return len(data)
        try:
            return self._fh.write(data)
        except OSError as exc:
            raise self._failed(exc) from None

    def tell(self) -> int:
        return self._pos if self._dead else self._fh.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        if not self._dead:
            return self._fh.seek(offset, whence)
        self._pos = offset if whence == 0 else self._pos + offset
        return self._pos

    def flush(self) -> None:
        if self._dead:
            return
        try:
            self._fh.flush()
        except OSError as exc:
            raise self._failed(exc) from None

    def close(self) -> None:
        dead, self._dead = self._dead, True
        try:
            self._fh.close()
        except OSError as exc:
            if not dead:
                raise self._failed(exc) from None

    def __enter__(self) -> _OutputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Sheet:
    """One worksheet and the next row to write on it."""

    __slots__ = ("ws", "row", "title", "string", "number", "datetime")

    def __init__(self, ws: Any, title: str) -> None:
        self.ws = ws
        self.title = title
        self.row = 1  # header written
        # XlsxWriter's write_string() etc. each call an undecorated _write_string() etc.
        # through a decorator that parses A1 notation; calling those directly, typed by
        # the cell's class here, saves ~10% of an export's CPU time. The public methods
        # when a version lacks them.
        self.string = getattr(ws, "_write_string", ws.write_string)
        self.number = getattr(ws, "_write_number", ws.write_number)
        self.datetime = getattr(ws, "_write_datetime", ws.write_datetime)


class _Part:
    """The sheets holding one run of a table's rows: one sheet, or one per column part."""

    __slots__ = ("sheets", "rows", "part")

    def __init__(self, sheets: list[_Sheet], part: int) -> None:
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
        import xlsxwriter

        self.out = out
        self.layout = layout
        self.names = names
        self.summary = summary
        self.truncated = 0  # text values cut to Excel's 32,767 characters
        self.rows: dict[str, int] = {}  # sheet name -> data rows
        # XlsxWriter's temporary files (a sheet's rows, then the parts it packs) go in a
        # folder of their own, so abort() removes them all at once.
        self._staging = tempfile.mkdtemp(prefix="yntymak-xlsx-")
        try:
            # The output's name is given at close (finish), once its temporary file exists.
            self._wb = xlsxwriter.Workbook(None, workbook_options(self._staging))
            self._bold = self._wb.add_format({"bold": True})
            self._date = self._wb.add_format({"num_format": DATE_FORMAT})
            self._datetime = self._wb.add_format({"num_format": DATETIME_FORMAT})
            self._summary_ws = self._wb.add_worksheet(SUMMARY_SHEET) if summary else None
            # Every sheet in the order it is shown (order_sheets), summary first.
            self._order: list[Any] = [self._summary_ws] if self._summary_ws is not None else []
            self._parts: dict[str, _Part] = {}
            # --paradata: its rows as one more table, on the last sheet(s) (export/paradata.py).
            self._paradata = ParadataTable() if paradata else None
            tables = [*layout.tables, *([self._paradata] if self._paradata else [])]
            self._columns = {t.name: column_parts(t, MAX_SHEET_COLUMNS) for t in tables}
            for table in tables:
                self._parts[table.name] = self._open(table, 1)
            # Tables spread over several sheets by columns -> the second sheet's name, as
            # made (cut to fit Excel's 31 characters): for a warning.
            self.split = {
                name: self._parts[name].sheets[1].title
                for name, parts in self._columns.items()
                if parts
            }
        except BaseException:
            self.abort()
            raise

    def _open(self, table: Table, part: int, index: int | None = None) -> _Part:
        """The sheets of run `part` of a table's rows, shown at `index` (None: last)."""
        columns = self._columns[table.name]
        headers = table.headers
        if columns is None:
            title = table.name if part == 1 else self.names.continuation(table.name, part)
            return _Part([self._sheet(title, headers, index)], part)
        sheets = []
        for c, positions in enumerate(columns, 1):
            if part == 1 and c == 1:
                title = table.name
            else:
                title = self.names.continuation(table.name, part, c)
            at = None if index is None else index + c - 1
            sheets.append(self._sheet(title, [headers[i] for i in positions], at))
        return _Part(sheets, part)

    def _sheet(self, title: str, headers: list[str], index: int | None) -> _Sheet:
        ws = self._wb.add_worksheet(title)
        self._order.insert(len(self._order) if index is None else index, ws)
        ws.freeze_panes(1, 0)
        for i, header in enumerate(headers):
            ws.set_column(i, i, min(max(len(header) + 2, 9), 40))
            ws.write_string(0, i, excel_text(header)[0], self._bold)
        self.rows[title] = 0
        return _Sheet(ws, title)

    def write(self, table: Table, row: list[Any]) -> None:
        p = self._parts[table.name]
        if p.rows >= MAX_SHEET_ROWS:
            after = self._order.index(p.sheets[-1].ws) + 1
            p = self._parts[table.name] = self._open(table, p.part + 1, after)
        columns = self._columns[table.name]
        try:
            if columns is None:
                self._append(p.sheets[0], row)
            else:
                for sheet, positions in zip(p.sheets, columns, strict=True):
                    self._append(sheet, [row[i] for i in positions])
        except OSError as exc:
            # While rows stream, XlsxWriter writes only to its files in the temporary
            # folder: name that folder, so a full disk there is not blamed on the output's.
            if exc.filename is None:
                exc.filename = self._staging
            raise
        p.rows += 1

    def write_paradata(self, row: list[Any]) -> None:
        assert self._paradata is not None
        self.write(self._paradata, row)

    def _append(self, sheet: _Sheet, row: list[Any]) -> None:
        # One test over the row's text joined (one call per row, not one per cell); a
        # hit only means "look at each cell".
        text = "\n".join([v for v in row if v.__class__ is str])
        if len(text) > _LONG or ILLEGAL_XML.search(text):
            for i, value in enumerate(row):
                if value.__class__ is str:
                    row[i], cut = excel_text(value)
                    self.truncated += cut
        r = sheet.row
        string, number, datetime = sheet.string, sheet.number, sheet.datetime
        for c, value in enumerate(row):
            cls = value.__class__
            if cls is str:
                if value:  # "" is an empty cell, as None
                    string(r, c, value)
            elif cls is int or cls is float:
                number(r, c, value)
            elif value is None:
                continue
            elif cls is dt.datetime:
                datetime(r, c, value, self._datetime)
            elif cls is dt.date:
                datetime(r, c, value, self._date)
            else:  # bool, subclasses: XlsxWriter's own dispatch
                sheet.ws.write(r, c, value)
        sheet.row = r + 1
        self.rows[sheet.title] += 1

    def finish(self) -> list[Path]:
        from xlsxwriter.exceptions import FileCreateError

        if self._summary_ws is not None and self.summary is not None:
            write_summary(self._wb, self._summary_ws, self.summary)
        order_sheets(self._wb, self._order)
        try:
            # atomic_path: fsync, rename, fsync the folder; the temp file goes on failure.
            with (
                atomic_path(self.out) as tmp,
                _OutputFile(tmp) as fh,
            ):
                self._wb.filename = fh
                self._wb.close()
        except FileCreateError as exc:  # XlsxWriter's wrapper of an OSError
            error = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else None
            if error is None:
                raise
            if error.filename is None:  # not the output (_OutputFile): a staged part
                error.filename = self._staging
            raise error from None
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)
        return [self.out]

    def abort(self) -> None:
        # Nothing is written at `out`; the sheets' temporary files can be large: close
        # them (XlsxWriter keeps each open until close()) and remove them now.
        wb = getattr(self, "_wb", None)
        for ws in wb.worksheets() if wb is not None else ():
            fh = getattr(ws, "row_data_fh", None)
            try:
                if fh is not None:
                    fh.close()
            except OSError:  # a full disk: the original error matters more
                pass
        shutil.rmtree(self._staging, ignore_errors=True)
