"""`export --paradata`: one row per submission x question, from each current revision's
paradata (timing by quality/paradata.py).

Where the rows go: an xlsx export's own `paradata` sheet; a CSV export's `paradata.csv`
(in the folder or zip; beside a single `NAME.csv` as `NAME.paradata.csv`); beside a JSON /
JSON Lines export as `NAME.paradata.jsonl`. The xlsx and CSV sinks write them as one more
table (so text is kept from becoming a formula there, as in the data); JSON Lines has a
small writer of its own. Submissions without timing (filled with --answers) have no rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from yntymak_cli.export.layout import Table
from yntymak_cli.export.output import csv_target, temp_file
from yntymak_cli.files import fsync_file, publish
from yntymak_cli.quality.paradata import timing

PARADATA = "paradata"  # the sheet / CSV table name (reserved among the form's table names)
# Column names as scripts join on them (like _uuid in the data): never translated.
HEADERS = (
    "_uuid",
    "_revision",
    "_enumerator",
    "question",
    "first",
    "last",
    "seconds",
    "changes",
    "back_steps",
)


class ParadataTable(Table):
    """The paradata rows as one more table of the xlsx / CSV sinks."""

    def __init__(self) -> None:
        super().__init__(name=PARADATA, repeat=None)

    @property
    def headers(self) -> list[str]:
        return list(HEADERS)

    @property
    def tail(self) -> tuple[str, ...]:
        return ()

    @property
    def keys(self) -> tuple[str, ...]:
        return ("_uuid", "question")


def paradata_rows(record: dict[str, Any]) -> list[list[Any]] | None:
    """The rows of one record (in HEADERS order); None when it has no timing."""
    timed = timing(record.get("paradata"))
    if not timed.timed:
        return None
    uuid, revision = record.get("uuid"), record.get("revision") or None
    enumerator = record.get("enumerator")
    return [
        [uuid, revision, enumerator, q.path, q.first, q.last, _seconds(q.seconds), q.changes,
         q.back_steps]
        for q in timed.questions
    ]  # fmt: skip


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class Feed:
    """Hands each record's rows to `write` as the records stream past on their way to the
    data's writer (so the records are read once, and memory stays flat)."""

    def __init__(self, write: Callable[[list[Any]], None]) -> None:
        self.write = write
        self.untimed = 0  # submissions without timing: no rows

    def __call__(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        write = self.write
        for record in records:
            rows = paradata_rows(record)
            if rows is None:
                self.untimed += 1
            else:
                for row in rows:
                    write(row)
            yield record


def sibling(out: Path, fmt: str) -> Path | None:
    """The separate file the rows go to, or None when they go inside the output."""
    if fmt in ("json", "jsonl"):
        return out.with_name(f"{_stem(out)}.{PARADATA}.jsonl")
    if fmt == "csv" and csv_target(out) == "file":
        return out.with_name(f"{_stem(out)}.{PARADATA}.csv")
    return None


def _stem(out: Path) -> str:
    # `out.json` -> `out`; a name without the suffix asked for stays whole.
    return out.stem if out.suffix.lower() in (".json", ".jsonl", ".csv") else out.name


def check_paradata_output(out: Path, fmt: str) -> None:
    """Refuse (InvalidInput) a paradata file that would replace what is not an export."""
    from yntymak_cli.outputs import check_overwrite

    path = sibling(out, fmt)
    if path is not None:
        check_overwrite(path, "jsonl" if fmt in ("json", "jsonl") else "csv")
    elif fmt == "csv" and csv_target(out) == "folder":
        check_overwrite(out / f"{PARADATA}.csv", "csv")
        check_overwrite(out / f"{PARADATA}.csv.part", "csv")


class JsonlParadata:
    """The rows as JSON objects, one a line, streamed to a temporary file beside `path`
    and renamed into place by finish()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._tmp = temp_file(path)
        self._file: IO[str] = self._tmp.open("w", encoding="utf-8", newline="\n")
        self._encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=str)

    def write(self, row: list[Any]) -> None:
        self._file.write(self._encoder.encode(dict(zip(HEADERS, row, strict=True))) + "\n")
        self.rows += 1

    def finish(self) -> Path:
        self._file.close()
        fsync_file(self._tmp)
        publish(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._file.close()
        except OSError:  # a full disk: the original error matters more
            pass
        self._tmp.unlink(missing_ok=True)


def untimed_warning(n: int) -> str:
    from yntymak_cli.i18n import current_lang, t

    return t("paradata_untimed", current_lang(), n=n)
