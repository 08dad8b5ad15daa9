"""Streaming CSV writer: one file per table of the xlsx layout, in a folder or a zip
(or the one table of a form without repeats as a single .csv file).

UTF-8 with a BOM so Excel opens Kyrgyz and Russian text correctly. Text that a
spreadsheet would run as a formula (starting with = + - @ tab or CR) gets a leading
apostrophe (OWASP CSV injection advice); numbers, even negative ones, are untouched.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any

from yntymak_cli.export.layout import Layout, Table
from yntymak_cli.export.output import temp_file
from yntymak_cli.export.paradata import ParadataTable
from yntymak_cli.export.paradata import sibling as paradata_sibling
from yntymak_cli.files import atomic_path, publish

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: Any) -> Any:
    """One cell as CSV text; injection-prone text gets a leading apostrophe."""
    cls = value.__class__
    if cls is str:
        return "'" + value if value.startswith(_FORMULA_START) else value
    if value is None:
        return ""
    if cls is int or cls is float:
        return value
    if cls is dt.datetime or cls is dt.date:
        return value.isoformat()
    return str(value)


class CsvSink:
    def __init__(self, out: Path, layout: Layout, paradata: bool = False) -> None:
        self.out = out
        self.layout = layout
        self.zip = out.suffix.lower() == ".zip"
        # `-o out.csv` for a form without repeats: its one table, as that file.
        self.single = out.suffix.lower() == ".csv" and len(layout.tables) == 1
        self.rows: dict[str, int] = {}
        if self.single:
            self._dir = out.parent
        elif self.zip:
            # Members are written one at a time in a zip, but rows of all tables arrive
            # interleaved: stage the files next to the zip, then pack them.
            out.parent.mkdir(parents=True, exist_ok=True)
            self._dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        else:
            out.mkdir(parents=True, exist_ok=True)
            self._dir = out
        self._files: dict[str, IO[str]] = {}
        self._writers: dict[str, Any] = {}
        self._paths: dict[str, Path] = {}
        # --paradata: its rows as one more table (export/paradata.py); beside a single file,
        # as NAME.paradata.csv.
        self._paradata = ParadataTable() if paradata else None
        self._finals = {layout.tables[0].name: out} if self.single else {}
        tables = [*layout.tables, *([self._paradata] if self._paradata else [])]
        try:
            for table in tables:
                if self.single:  # staged under a unique name beside its file
                    final = self._finals.setdefault(table.name, paradata_sibling(out, "csv") or out)
                    path = temp_file(final)
                else:
                    path = self._dir / f"{table.name}.csv.part"
                self._paths[table.name] = path
                f = path.open("w", encoding="utf-8-sig", newline="")
                self._files[table.name] = f
                writer = self._writers[table.name] = csv.writer(f)
                writer.writerow([csv_text(h) for h in table.headers])
                self.rows[table.name] = 0
        except BaseException:
            self.abort()  # the caller has no sink to abort yet
            raise

    def write(self, table: Table, row: list[Any]) -> None:
        self._writers[table.name].writerow([csv_text(v) for v in row])
        self.rows[table.name] += 1

    def write_paradata(self, row: list[Any]) -> None:
        assert self._paradata is not None
        self.write(self._paradata, row)

    def finish(self) -> list[Path]:
        # The .csv files stay open while rows stream, so they cannot be written inside one
        # files.atomic_path block: each is fsynced here, then files.publish() renames it and
        # fsyncs the folder. The zip's staged members are packed and deleted: only the zip,
        # written through atomic_path, needs to reach the disk.
        for f in self._files.values():
            if not self.zip:
                f.flush()
                os.fsync(f.fileno())
            f.close()
        if self.single:
            for name, part in self._paths.items():
                publish(part, self._finals[name])
            return list(self._finals.values())
        if not self.zip:
            written = []
            for name, part in self._paths.items():
                final = self._dir / f"{name}.csv"
                publish(part, final)
                written.append(final)
            return written
        try:
            with (
                atomic_path(self.out) as tmp,
                zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf,
            ):
                for name, part in self._paths.items():
                    zf.write(part, f"{name}.csv")
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
        return [self.out]

    def abort(self) -> None:
        for f in self._files.values():
            try:
                f.close()  # flushes: fails again on a full disk, but closes the file
            except OSError:
                pass
        if self.zip:
            shutil.rmtree(self._dir, ignore_errors=True)
        else:
            for part in self._paths.values():
                part.unlink(missing_ok=True)
