"""Kobo-style table layout from form versions, and the rows of one submission.

One table for the main records (named after the form id) and one per repeat (nested
repeats too). Columns follow the newest version's question order, then columns
that only older versions have. Tables link like KoboToolbox exports: `_index` on
every table, `_parent_index` + `_parent_table_name` on repeat tables, so analysts'
existing scripts and VLOOKUPs keep working.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from yntymak_cli.export import cells
from yntymak_cli.export.cells import Converter
from yntymak_cli.forms.model import Form, Question, text_in

# Excel sheet names: at most 31 characters, none of []:*?/\ and no leading or
# trailing apostrophe; "History" is reserved by Excel.
SHEET_NAME_MAX = 31
_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
_RESERVED = {"history"}

# Metadata columns closing the main table (Kobo puts them after the questions).
MAIN_META = ("_uuid", "_submission_time", "_enumerator", "_device_id", "_form_version", "_status")
REPEAT_LINKS = ("_index", "_parent_table_name", "_parent_index", "_submission__uuid")


class SheetNames:
    """Allocates Excel-safe sheet names, unique case-insensitively (as Excel requires)."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._used = {name.lower() for name in reserved}

    def take(self, wanted: str) -> str:
        base = _FORBIDDEN.sub("_", wanted).strip("'").strip() or "sheet"
        if base.lower() in _RESERVED:
            base += "_"
        name = base[:SHEET_NAME_MAX]
        n = 1
        while name.lower() in self._used:
            n += 1
            suffix = f" ({n})"
            name = base[: SHEET_NAME_MAX - len(suffix)] + suffix
        self._used.add(name.lower())
        return name

    def continuation(self, base: str, part: int) -> str:
        """The name of part `part` (2, 3, ...) of a table too long for one sheet."""
        suffix = f" ({part})"
        return self.take(base[: SHEET_NAME_MAX - len(suffix)] + suffix)


@dataclass
class Column:
    key: str  # answers key (question name)
    header: str
    convert: Converter


@dataclass
class Table:
    name: str  # sheet / CSV file name
    repeat: str | None  # repeat question name; None for the main table
    parent: Table | None = None
    columns: list[Column] = field(default_factory=list)
    children: list[Table] = field(default_factory=list)

    @property
    def headers(self) -> list[str]:
        tail = (*MAIN_META, "_index") if self.parent is None else REPEAT_LINKS
        return [c.header for c in self.columns] + list(tail)


@dataclass
class QuestionInfo:
    """A question merged over all form versions (newest definition wins)."""

    name: str
    question: Question  # newest definition
    form: Form  # the form version that definition comes from
    table: str | None  # enclosing repeat (innermost), None for the main table
    choices: dict[str, str] = field(default_factory=dict)  # name -> label (or name)


@dataclass
class Layout:
    form_id: str
    versions: list[str]
    lang: str | None
    tables: list[Table]  # main table first, then repeats depth first
    questions: dict[str, QuestionInfo]  # exported questions by name
    dropped: frozenset[str]  # questions left out (sensitive)
    repeats: frozenset[str]  # names of exported repeats

    @property
    def main(self) -> Table:
        return self.tables[0]


def build_layout(
    forms: Sequence[Form],
    lang: str | None = None,
    no_sensitive: bool = False,
    reserved_names: Iterable[str] = (),
    names: SheetNames | None = None,
) -> Layout:
    """Tables and columns for all versions of one form (`forms` newest first)."""
    if not forms:
        raise ValueError("build_layout needs at least one form version")
    names = names or SheetNames(reserved_names)

    sensitive: set[str] = set()
    repeat_parent: dict[str, str | None] = {}  # repeat name -> enclosing repeat
    infos: dict[tuple[str | None, str], QuestionInfo] = {}  # insertion order = column order
    for form in forms:
        for question, ancestors in form.walk():
            if question.sensitive or any(a.sensitive for a in ancestors):
                sensitive.add(question.name)
            repeats = [a.name for a in ancestors if a.is_repeat]
            enclosing = repeats[-1] if repeats else None
            if question.is_repeat:
                repeat_parent.setdefault(question.name, enclosing)
                continue
            if not question.holds_value:
                continue  # groups, notes, unsupported: no column
            key = (enclosing, question.name)
            info = infos.get(key)
            if info is None:
                info = infos[key] = QuestionInfo(question.name, question, form, enclosing)
            if question.list_name:
                for choice in form.choice_list(question.list_name):
                    if choice.name not in info.choices:  # newest label wins
                        shown = text_in(choice.label, lang, form.language) if lang else ""
                        info.choices[choice.name] = shown or choice.name

    dropped = frozenset(sensitive) if no_sensitive else frozenset()

    main = Table(names.take(forms[0].id), None)
    by_repeat: dict[str | None, Table] = {None: main}
    for repeat, parent in repeat_parent.items():
        if _excluded(repeat, repeat_parent, dropped):
            continue
        parent_table = by_repeat.get(parent)
        if parent_table is None:  # defensive: parents are walked before their children
            continue
        table = Table(names.take(repeat), repeat, parent_table)
        parent_table.children.append(table)
        by_repeat[repeat] = table
    # Depth-first order keeps a repeat's sheet right after its parent's.
    tables = list(_depth_first(main))

    questions: dict[str, QuestionInfo] = {}
    for (enclosing, name), info in infos.items():
        table = by_repeat.get(enclosing)
        if table is None or name in dropped:
            continue
        questions.setdefault(name, info)
        table.columns.extend(_columns(info, lang))

    return Layout(
        form_id=forms[0].id,
        # One entry per version: a definition edited without a new version is stored
        # (and passed here) once per hash.
        versions=list(dict.fromkeys(f.version for f in forms)),
        lang=lang,
        tables=tables,
        questions=questions,
        dropped=dropped,
        repeats=frozenset(t.repeat for t in tables if t.repeat),
    )


def _excluded(repeat: str, parents: dict[str, str | None], dropped: frozenset[str]) -> bool:
    node: str | None = repeat
    while node is not None:
        if node in dropped:
            return True
        node = parents.get(node)
    return False


def _depth_first(table: Table) -> Iterator[Table]:
    yield table
    for child in table.children:
        yield from _depth_first(child)


def _columns(info: QuestionInfo, lang: str | None) -> list[Column]:
    q, form = info.question, info.form
    path = form.group_path(q.name)
    label = (text_in(q.label, lang, form.language) if lang else "") or path
    base = q.base_type
    labels = info.choices if lang else None

    if base == "select_multiple":
        cols = [Column(q.name, label, cells.multi_joined(labels))]
        for name, shown in info.choices.items():
            header = f"{label}/{shown}" if lang else f"{path}/{name}"
            cols.append(Column(q.name, header, cells.multi_flag(name)))
        return cols
    if base == "geopoint":
        # Kobo's spelling: group/_name_latitude (or _Label_latitude with labels).
        prefix = "" if lang else path[: len(path) - len(q.name)]
        stem = label if lang else q.name
        cols = [Column(q.name, label, cells.plain)]
        for part, convert in zip(cells.GEO_PARTS, cells.geo_parts(), strict=True):
            cols.append(Column(q.name, f"{prefix}_{stem}_{part}", convert))
        return cols
    return [Column(q.name, label, cells.converter_for(base, labels))]


class RowBuilder:
    """Turns submission records into table rows, numbering `_index` per table."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.counts: dict[str, int] = {t.name: 0 for t in layout.tables}
        self._getters = {t.name: [(c.key, c.convert) for c in t.columns] for t in layout.tables}

    def rows(self, record: dict[str, Any]) -> Iterator[tuple[Table, list[Any]]]:
        """The main row of `record`, then its repeat rows (parents before children)."""
        main = self.layout.main
        answers = record.get("answers") or {}
        index = self.counts[main.name] = self.counts[main.name] + 1
        get = answers.get
        row = [convert(get(key)) for key, convert in self._getters[main.name]]
        row += (
            cells.plain(record.get("uuid")),
            cells.to_datetime(record.get("submission_time")),
            cells.plain(record.get("enumerator")),
            cells.plain(record.get("device_id")),
            cells.plain(record.get("form_version")),
            cells.plain(record.get("status")),
            index,
        )
        yield main, row
        if main.children:
            uuid = cells.plain(record.get("uuid"))
            for child in main.children:
                yield from self._repeat_rows(child, answers.get(child.repeat), main, index, uuid)

    def _repeat_rows(
        self, table: Table, instances: Any, parent: Table, parent_index: int, uuid: Any
    ) -> Iterator[tuple[Table, list[Any]]]:
        if instances.__class__ is not list:
            return
        getters = self._getters[table.name]
        for instance in instances:
            if not isinstance(instance, dict):
                continue
            index = self.counts[table.name] = self.counts[table.name] + 1
            get = instance.get
            row = [convert(get(key)) for key, convert in getters]
            row += (index, parent.name, parent_index, uuid)
            yield table, row
            for child in table.children:
                yield from self._repeat_rows(child, instance.get(child.repeat), table, index, uuid)
