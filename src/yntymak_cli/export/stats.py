"""SPSS .sav and Stata .dta export through pyreadstat (the optional `stats` extra).

The rows come from the usual layout (names mode: choice names, typed dates), so the
tables, `_index` / `_parent_index` links and metadata columns are those of the CSV
export; this module only decides what each column becomes in SPSS or Stata:

- select_one (and a calculated yes/no) -> numeric codes with value labels. Codes follow
  the choice lists from the oldest form version to the newest: a choice added later gets
  the next free code, so a choice keeps its code in every export of every version.
- select_multiple -> one 0/1 variable per choice, labelled "question: choice".
- integers and decimals numeric, dates and datetimes real dates, the rest strings.
- names made valid for the format by a deterministic renaming (`variable_names`).

pyreadstat writes a whole table from a pandas DataFrame, so unlike the other sinks this
one holds the rows in memory until the end.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yntymak_cli.errors import InvalidInput
from yntymak_cli.export.cells import to_datetime
from yntymak_cli.export.layout import (
    MAIN_META,
    REPEAT_LINKS,
    YES_NO,
    Layout,
    Table,
    meta_headers,
    translated_words,
)
from yntymak_cli.files import atomic_path, publish
from yntymak_cli.forms.model import Form, text_in

VARIABLES = "_variables"  # the mapping file: _variables.csv in a zip/folder
VARIABLES_HEADER = ("table", "variable", "name", "label", "type", "codes")

_NUMERIC = {"integer", "decimal", "range"}
_DATES = {"date", "today"}
_DATETIMES = {"datetime", "start", "end"}
_META_TYPES = {"_submission_time": "datetime", "_index": "numeric", "_parent_index": "numeric",
               "_id": "numeric", "_submission__id": "numeric"}  # fmt: skip

# Words a name may not be: SPSS's reserved keywords, Stata's reserved names (both
# compared case-insensitively here, so one rule serves both and stays simple).
_SPSS_RESERVED = {"all", "and", "by", "eq", "ge", "gt", "le", "lt", "ne", "not", "or", "to", "with"}
_STATA_RESERVED = {
    "_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long",
    "_n", "_pi", "_pred", "_rc", "_skip", "strl", "using", "with",
}  # fmt: skip
_STATA_MAX, _SPSS_MAX_BYTES = 32, 64
_LABEL_SET_DIGITS = 4  # room for pyreadstat's label set number (up to 9,999 sets)


def _t(key: str, **params: object) -> str:
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


def require_pyreadstat() -> Any:
    """pyreadstat, or InvalidInput (exit 2) naming the extra that installs it."""
    try:
        import pandas  # noqa: F401  (pyreadstat's DataFrames)
        import pyreadstat
    except ImportError:
        extra = "pip install 'yntymak-cli[stats]'"
        raise InvalidInput(_t("export_stats_missing", extra=extra)) from None
    return pyreadstat


def variable_names(
    originals: Sequence[str], fmt: str, labelled: Sequence[bool] | None = None
) -> list[str]:
    """Valid, unique variable names for `originals`, in order (deterministic).

    Stata: ASCII letters, digits and _, at most 32 characters (28 for a variable with
    value labels: pyreadstat names its label set after it plus a number, and that name
    has the same limit), not a reserved name. SPSS: starts with a letter; letters, digits,
    _ and . but no dot at the end; at most 64 bytes; not a keyword. Both: unique
    case-insensitively; a clash gets _2, _3, ...
    """
    taken: set[str] = set()
    names = []
    for i, original in enumerate(originals):
        room = _LABEL_SET_DIGITS if fmt == "dta" and labelled and labelled[i] else 0
        base = _stata_name(original, room) if fmt == "dta" else _spss_name(original)
        name, n = base, 1
        while name.lower() in taken:
            n += 1
            name = _cut(base, fmt, room + len(f"_{n}")) + f"_{n}"
        taken.add(name.lower())
        names.append(name)
    return names


def _stata_name(original: str, room: int) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", original) or "v"
    if name[0].isdigit():
        name = "v" + name
    if name.lower() in _STATA_RESERVED:
        name += "_"
    return _cut(name, "dta", room)


def _spss_name(original: str) -> str:
    name = re.sub(r"[^\w.]", "_", original).rstrip(".") or "v"
    if not name[0].isalpha():
        name = "v" + name  # SPSS names start with a letter: _uuid -> v_uuid
    if name.lower() in _SPSS_RESERVED:
        name += "_"
    return _cut(name, "sav", 0)


def _cut(name: str, fmt: str, room: int) -> str:
    """`name` short enough to leave `room` characters (ASCII) for a suffix."""
    if fmt == "dta":
        return name[: _STATA_MAX - room]
    while len(name.encode("utf-8")) > _SPSS_MAX_BYTES - room:
        name = name[:-1]
    return name.rstrip(".")


def choice_codes(forms: Sequence[Form], question: str, list_name: str | None) -> dict[str, int]:
    """Choice name -> code, numbered oldest version first: later choices get new codes."""
    codes: dict[str, int] = {}
    for form in reversed(forms):  # `forms` are newest first
        q = form.index.get(question)
        name = q.list_name if q is not None and q.list_name else list_name
        for choice in form.choice_list(name):
            codes.setdefault(choice.name, len(codes) + 1)
    return codes


@dataclass
class Var:
    """One variable of a table: where its value is in the layout row, and what it is."""

    index: int  # position in the layout row
    name: str  # original name (question name, "question/choice", _uuid...)
    label: str
    kind: str  # numeric | date | datetime | string | coded | flag; calculate until typed
    codes: dict[str, int] = field(default_factory=dict)  # coded: choice name -> code
    value_labels: dict[int, str] = field(default_factory=dict)
    variable: str = ""  # the format's name, set by plan()


def plan(forms: Sequence[Form], layout: Layout, table: Table, lang: str) -> list[Var]:
    """The variables of `table`: layout columns, typed and labelled for a stats format."""
    variables: list[Var] = []
    seen: dict[str, int] = {}  # question -> columns of it seen so far
    # select_multiple: its choices in column order and their labels, once per question
    # (a list may hold 100,000 choices).
    multi: dict[str, tuple[list[str], dict[str, str]]] = {}
    for i, column in enumerate(table.columns):
        info = layout.questions.get(column.key)
        position = seen[column.key] = seen.get(column.key, -1) + 1
        if info is None:
            variables.append(Var(i, column.key, column.key, "string"))
            continue
        q, form = info.question, info.form
        label = text_in(q.label, lang, form.language) or q.name
        base = q.base_type
        if base == "select_multiple":
            if position == 0:
                continue  # the joined names: the 0/1 variables say it all
            if q.name not in multi:
                multi[q.name] = list(info.choices), _choice_labels(forms, q.name, lang)
            choices, shown_by_name = multi[q.name]
            choice = choices[position - 1]
            shown = shown_by_name.get(choice, choice)
            variables.append(Var(i, f"{q.name}/{choice}", f"{label}: {shown}", "flag"))
        elif base == "geopoint":
            if position == 0:
                variables.append(Var(i, q.name, label, "string"))
            else:
                part = column.header.rsplit("_", 1)[-1]
                variables.append(Var(i, f"{q.name}_{part}", f"{label}: {part}", "numeric"))
        elif base == "select_one":
            codes = choice_codes(forms, q.name, q.list_name)
            labels = _choice_labels(forms, q.name, lang)
            value_labels = {code: labels.get(name, name) for name, code in codes.items()}
            variables.append(Var(i, q.name, label, "coded", codes, value_labels))
        elif base == "calculate":
            variables.append(Var(i, q.name, label, "calculate"))
        else:
            kind = (
                "numeric"
                if base in _NUMERIC
                else "date"
                if base in _DATES
                else "datetime"
                if base in _DATETIMES
                else "string"
            )
            variables.append(Var(i, q.name, label, kind))
    # Metadata and links, as the CSV export keeps them (by their names, not --lang headers).
    names = (*MAIN_META, "_index") if table.parent is None else REPEAT_LINKS
    words = meta_headers(lang)
    for offset, name in enumerate(names, start=len(table.columns)):
        variables.append(Var(offset, name, words.get(name, name), _META_TYPES.get(name, "string")))
    return variables


def _choice_labels(forms: Sequence[Form], question: str, lang: str) -> dict[str, str]:
    """Choice name -> label in `lang`, the newest version's label winning."""
    labels: dict[str, str] = {}
    for form in forms:
        q = form.index.get(question)
        if q is None or not q.list_name:
            continue
        for choice in form.choice_list(q.list_name):
            shown = text_in(choice.label, lang, form.language)
            labels.setdefault(choice.name, shown or choice.name)
    return labels


class StatsSink:
    """Collects the rows of every table, then writes one .sav/.dta per table at finish()."""

    def __init__(
        self, out: Path, layout: Layout, forms: Sequence[Form], fmt: str, lang: str
    ) -> None:
        self.pyreadstat = require_pyreadstat()
        self.out, self.layout, self.fmt, self.lang = out, layout, fmt, lang
        self.zip = out.suffix.lower() == ".zip"
        self.single = out.suffix.lower() == f".{fmt}"
        self.rows: dict[str, int] = {t.name: 0 for t in layout.tables}
        self._data: dict[str, list[list[Any]]] = {t.name: [] for t in layout.tables}
        self.plans = {t.name: plan(forms, layout, t, lang) for t in layout.tables}
        for variables in self.plans.values():
            originals = [v.name for v in variables]
            labelled = [v.kind in ("coded", "calculate") for v in variables]
            for var, name in zip(variables, variable_names(originals, fmt, labelled), strict=True):
                var.variable = name

    def write(self, table: Table, row: list[Any]) -> None:
        self._data[table.name].append(row)
        self.rows[table.name] += 1

    def finish(self) -> list[Path]:
        frames = {name: self._frame(name) for name in self._data}
        if self.single:
            variables = self.out.with_name(f"{self.out.stem}{VARIABLES}.csv")
            with atomic_path(self.out) as tmp:
                self._write_table(tmp, *frames[self.layout.main.name])
            with atomic_path(variables) as tmp:
                self._write_variables(tmp)
            return [self.out, variables]
        stage = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=self.out.parent))
        try:
            members = []
            for name, frame in frames.items():
                path = stage / f"{name}.{self.fmt}"
                self._write_table(path, *frame)
                members.append(path)
            members.append(stage / f"{VARIABLES}.csv")
            self._write_variables(members[-1])
            if self.zip:
                with (
                    atomic_path(self.out) as tmp,
                    zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf,
                ):
                    for path in members:
                        zf.write(path, path.name)
                return [self.out]
            self.out.mkdir(parents=True, exist_ok=True)
            written = []
            for path in members:
                publish(path, self.out / path.name)
                written.append(self.out / path.name)
            return written
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def abort(self) -> None:
        self._data.clear()

    def _frame(self, table: str) -> tuple[Any, dict[str, str], dict[str, dict[int, str]]]:
        """(DataFrame, variable labels, value labels) of one table."""
        import pandas as pd

        rows = self._data[table]
        columns: dict[str, Any] = {}
        labels: dict[str, str] = {}
        value_labels: dict[str, dict[int, str]] = {}
        for var in self.plans[table]:
            values = [row[var.index] for row in rows]
            series, kind = self._typed(var, values)
            columns[var.variable] = series
            label = var.label if var.variable == var.name else f"[{var.name}] {var.label}"
            labels[var.variable] = label[:80] if self.fmt == "dta" else _fit(label, 256)
            if kind == "coded":
                limit = 120 if self.fmt == "sav" else 32000
                value_labels[var.variable] = {
                    code: _fit(text, limit) for code, text in var.value_labels.items()
                }
            var.kind = kind
        frame = pd.DataFrame(columns, index=range(len(rows)))
        return frame, labels, value_labels

    def _typed(self, var: Var, values: list[Any]) -> tuple[Any, str]:
        import pandas as pd

        kind = var.kind
        present = [v for v in values if v is not None]
        if kind == "calculate":
            words = {str(v).lower() for v in present}
            if present and words <= set(YES_NO):  # a yes/no result: 1 yes, 0 no
                yes_no = translated_words(self.lang, ("yes", "no"), "")
                var.codes = {w: 1 if YES_NO[w] == "yes" else 0 for w in YES_NO}
                var.value_labels = {1: yes_no["yes"], 0: yes_no["no"]}
                values = [None if v is None else str(v).lower() for v in values]
                kind = "coded"
            else:
                kind = "numeric" if all(_number(v) for v in present) else "string"
        if kind == "coded":
            codes = var.codes
            for v in present:  # a name no version lists: the next free code, kept labelled
                if isinstance(v, str) and v not in codes:
                    codes[v] = max(codes.values(), default=0) + 1
                    var.value_labels[codes[v]] = v
            if all(isinstance(v, str) for v in present):
                return pd.Series([codes.get(v) for v in values], dtype="float64"), kind
            kind = "string"
        if kind in ("numeric", "flag") and all(_number(v) for v in present):
            return pd.Series(values, dtype="float64"), kind
        if kind == "date" and all(v.__class__ is dt.date for v in present):
            return pd.Series(values, dtype=object), kind
        if kind == "datetime" and any(v.__class__ is str for v in present):
            # start/end arrive as text with their offset (xlsx/CSV keep it): a datetime
            # here, at the wall-clock time recorded, as other datetimes are.
            values = [to_datetime(v) if v.__class__ is str else v for v in values]
            present = [v for v in values if v is not None]
        if kind == "datetime" and all(v.__class__ is dt.datetime for v in present):
            return pd.Series(values, dtype=object), kind
        # Text, or a value that does not fit its question's type: kept as text, not lost.
        # Stata has no missing string: "" (what a missing string reads back as anyway). It
        # is also needed for strL: pyreadstat registers a reference for None that no row
        # uses, and ReadStat then refuses the file.
        empty = "" if self.fmt == "dta" else None
        text = [empty if v is None else _text(v) for v in values]
        return pd.Series(text, dtype=object), "string"

    def _write_table(
        self, path: Path, frame: Any, labels: dict[str, str], values: dict[str, dict[int, str]]
    ) -> None:
        write = self.pyreadstat.write_sav if self.fmt == "sav" else self.pyreadstat.write_dta
        try:
            write(frame, str(path), column_labels=labels, variable_value_labels=values or None)
        except OSError:
            raise
        except Exception as exc:  # ReadStat's own errors: said in one line, never a traceback
            raise InvalidInput(_t("export_stats_failed", path=self.out, reason=exc)) from None

    def _write_variables(self, path: Path) -> None:
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(VARIABLES_HEADER)
            for table, variables in self.plans.items():
                for var in variables:
                    codes = " ".join(f"{code}={name}" for name, code in _sorted(var))
                    writer.writerow((table, var.variable, var.name, var.label, var.kind, codes))


def _sorted(var: Var) -> Iterable[tuple[str, int]]:
    if var.kind != "coded":
        return ()
    return sorted(var.codes.items(), key=lambda item: item[1])


def _fit(text: str, max_bytes: int) -> str:
    """`text` cut to `max_bytes` of UTF-8 on a character boundary. SPSS keeps variable labels
    to 256 bytes and value labels to 120: ReadStat would cut them mid-character."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", errors="ignore")


def _number(value: Any) -> bool:
    return value.__class__ in (int, float)


def _text(value: Any) -> str:
    if value.__class__ in (dt.date, dt.datetime):
        return str(value.isoformat())
    return str(value)
