"""Kobo-style table layout from form versions, and the rows of one submission.

One table for the main records (named after the form id; in xlsx, as KoboToolbox names
its sheet, after the form's title) and one per repeat (nested repeats too). Columns
follow the newest version's question order, then columns that only older versions have.
Tables link like KoboToolbox exports: `_index` on every table, `_parent_index` +
`_parent_table_name` on repeat tables, so analysts' existing scripts and VLOOKUPs keep
working.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from yntymak_cli.export import cells
from yntymak_cli.export.cells import Converter
from yntymak_cli.export.media import MediaLinks
from yntymak_cli.forms.model import Form, Question, text_in

# Excel sheet names: at most 31 characters, none of []:*?/\ and no leading or
# trailing apostrophe; "History" is reserved by Excel.
SHEET_NAME_MAX = 31
_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
_RESERVED = {"history"}

# Metadata columns closing the main table (Kobo puts them after the questions). _id: the
# store's stable integer per submission; _validation_status and _review_comment: HQ's
# review of the current revision; __version__: KoboToolbox's name for the form version
# (the same value as _form_version, for scripts written against Kobo exports).
MAIN_META = (
    "_id",
    "_uuid",
    "_submission_time",
    "_enumerator",
    "_device_id",
    "_form_version",
    "_status",
    "_validation_status",
    "_review_comment",
    "__version__",
)
REPEAT_LINKS = (
    "_index",
    "_parent_table_name",
    "_parent_index",
    "_submission__id",
    "_submission__uuid",
)
# What a main row is joined on when its columns are spread over several sheets.
MAIN_KEYS = ("_uuid", "_index")


def _edge(name: str) -> str:
    """Without the apostrophes and spaces Excel refuses at a sheet name's ends."""
    return name.strip(" '")


class SheetNames:
    """Allocates Excel-safe sheet names, unique case-insensitively (as Excel requires)."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._used = {name.lower() for name in reserved}

    def take(self, wanted: str) -> str:
        base = _edge(_FORBIDDEN.sub("_", wanted)) or "sheet"
        if base.lower() in _RESERVED:
            base += "_"
        name = _edge(base[:SHEET_NAME_MAX])  # a cut may end on an apostrophe (a title's)
        n = 1
        while name.lower() in self._used:
            n += 1
            suffix = f" ({n})"
            name = _edge(base[: SHEET_NAME_MAX - len(suffix)]) + suffix
        self._used.add(name.lower())
        return name

    def continuation(self, base: str, part: int, column_part: int = 1) -> str:
        """The name of a further sheet of a table too big for one: rows continue on
        "<table> (2)", columns on "<table> (c2)", both on "<table> (2, c2)"."""
        labels = [str(part)] if part > 1 else []
        if column_part > 1:
            labels.append(f"c{column_part}")
        suffix = f" ({', '.join(labels)})"
        return self.take(base[: SHEET_NAME_MAX - len(suffix)] + suffix)


@dataclass
class Column:
    key: str  # answers key (question name)
    header: str
    convert: Converter
    # A column showing choice labels: makes its converter from another label map, so a
    # record is shown with the labels of the form version it was collected with.
    relabel: Callable[[Mapping[str, str]], Converter] | None = None
    info: QuestionInfo | None = None


@dataclass
class Table:
    name: str  # sheet / CSV file name
    repeat: str | None  # repeat question name; None for the main table
    parent: Table | None = None
    columns: list[Column] = field(default_factory=list)
    children: list[Table] = field(default_factory=list)
    # With --lang: metadata headers in that language (_enumerator -> "Сурамжылоочу");
    # the id and link columns (_uuid, _index, _parent_*) keep the names scripts join on.
    meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns] + list(self.tail)

    @property
    def tail(self) -> tuple[str, ...]:
        """The metadata / link headers closing each row."""
        names = (*MAIN_META, "_index") if self.parent is None else REPEAT_LINKS
        return tuple(self.meta.get(name, name) for name in names)

    @property
    def keys(self) -> tuple[str, ...]:
        """Headers that identify a row: every sheet of a table split by columns has them."""
        names = MAIN_KEYS if self.parent is None else REPEAT_LINKS
        return tuple(self.meta.get(name, name) for name in names)


@dataclass
class QuestionInfo:
    """A question merged over all form versions (newest definition wins)."""

    name: str
    question: Question  # newest definition
    form: Form  # the form version that definition comes from
    table: str | None  # enclosing repeat (innermost), None for the main table
    choices: dict[str, str] = field(default_factory=dict)  # name -> label (or name)
    # With --lang: form definition hash -> that definition's choice labels (name -> label).
    by_form: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class Layout:
    form_id: str
    versions: list[str]
    lang: str | None
    tables: list[Table]  # main table first, then repeats depth first
    questions: dict[str, QuestionInfo]  # exported questions by name
    dropped: frozenset[str]  # questions left out (sensitive)
    repeats: frozenset[str]  # names of exported repeats
    # With --lang: the _status cell's words in that language (final -> аякталган).
    status_words: Mapping[str, str] = field(default_factory=dict)
    # Review status (approved | rejected | on_hold) -> the _validation_status cell:
    # KoboToolbox's value (validation_status_approved...), or with --lang a word of that
    # language, as _status does. A pending submission's cell is empty.
    validation_words: Mapping[str, str] = field(default_factory=lambda: validation_words(None))
    # The media columns' converters (export/media.py); None when the form has no media.
    media: MediaLinks | None = None

    @property
    def main(self) -> Table:
        return self.tables[0]


def build_layout(
    forms: Sequence[Form],
    lang: str | None = None,
    no_sensitive: bool = False,
    reserved_names: Iterable[str] = (),
    names: SheetNames | None = None,
    title_sheet: bool = False,
    link_root: str = "media",
) -> Layout:
    """Tables and columns for all versions of one form (`forms` newest first).
    `title_sheet` (xlsx): the main table is named after the form's title in `lang` (else
    its default language), as KoboToolbox names the sheet; else after the form id.
    `link_root`: the folder media `_URL` links start with (export/media.py)."""
    if not forms:
        raise ValueError("build_layout needs at least one form version")
    names = names or SheetNames(reserved_names)

    sensitive: set[str] = set()
    repeat_parent: dict[str, str | None] = {}  # repeat name -> enclosing repeat
    infos: dict[tuple[str | None, str], QuestionInfo] = {}  # insertion order = column order
    for form in forms:
        form_hash = form.definition_hash() if lang else ""
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
                own: dict[str, str] = {}
                for choice in form.choice_list(question.list_name):
                    shown = text_in(choice.label, lang, form.language) if lang else ""
                    own[choice.name] = shown or choice.name
                    if choice.name not in info.choices:  # newest label wins (headers)
                        info.choices[choice.name] = own[choice.name]
                if lang:  # each record's cells: the labels of its own definition
                    info.by_form.setdefault(form_hash, own)

    dropped = frozenset(sensitive) if no_sensitive else frozenset()

    newest = forms[0]
    title = text_in(newest.title, lang, newest.language) if title_sheet else ""
    main = Table(names.take(title.strip() or newest.id), None, meta=meta_headers(lang))
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

    media_names = frozenset(
        name for (_, name), info in infos.items() if info.question.is_media and name not in dropped
    )
    links = MediaLinks(newest.id, media_names, link_root) if media_names else None
    questions: dict[str, QuestionInfo] = {}
    for (enclosing, name), info in infos.items():
        owner = by_repeat.get(enclosing)
        if owner is None or name in dropped:
            continue
        questions.setdefault(name, info)
        owner.columns.extend(_columns(info, lang, links))

    return Layout(
        form_id=forms[0].id,
        status_words=translated_words(lang, ("draft", "final", "void"), "status_"),
        validation_words=validation_words(lang),
        # One entry per version: a definition edited without a new version is stored
        # (and passed here) once per hash.
        versions=list(dict.fromkeys(f.version for f in forms)),
        lang=lang,
        tables=tables,
        questions=questions,
        dropped=dropped,
        repeats=frozenset(t.repeat for t in tables if t.repeat),
        media=links,
    )


# Metadata columns and the catalog words naming them in a translated export.
_META_WORDS = {
    "_submission_time": "field_submission_time",
    "_enumerator": "field_enumerator",
    "_device_id": "field_device_id",
    "_form_version": "field_form_version",
    "_status": "field_status",
    "_validation_status": "field_validation_status",
    "_review_comment": "field_review_comment",
}
# Values calculations give for a yes/no result, shown in the export's language.
YES_NO = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}


def meta_headers(lang: str | None) -> dict[str, str]:
    """Headers of the main table's metadata columns in `lang` ({} without --lang)."""
    if not lang:
        return {}
    from yntymak_cli.i18n import t

    words = {name: t(key, lang) for name, key in _META_WORDS.items()}
    return {name: word[:1].upper() + word[1:] for name, word in words.items()}


def validation_words(lang: str | None) -> dict[str, str]:
    """Review status -> its _validation_status cell: KoboToolbox's value without --lang,
    the catalog's word for it in `lang` (validation_status_approved -> export_validation_
    approved) with it."""
    from yntymak_cli.store.reviews import KOBO_VALIDATION

    if not lang:
        return dict(KOBO_VALIDATION)
    from yntymak_cli.i18n import t

    prefix = "validation_status_"
    return {
        status: t("export_validation_" + kobo.removeprefix(prefix), lang)
        for status, kobo in KOBO_VALIDATION.items()
    }


def translated_words(lang: str | None, values: Iterable[str], prefix: str) -> dict[str, str]:
    """value -> the catalog's `prefix + value` in `lang` ({} without --lang)."""
    if not lang:
        return {}
    from yntymak_cli.i18n import t

    return {value: t(prefix + value, lang) for value in values}


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


def _columns(info: QuestionInfo, lang: str | None, links: MediaLinks | None) -> list[Column]:
    q, form = info.question, info.form
    path = form.group_path(q.name)
    groups = ""  # with --lang: the enclosing groups' labels, "Group/Sub/" (formpack's way)
    if lang:
        named = [text_in(a.label, lang, form.language) or a.name for a in form.ancestors(q.name)]
        groups = "".join(f"{g}/" for g in named)
    own = text_in(q.label, lang, form.language) if lang else ""
    label = groups + own if own else path
    base = q.base_type
    labels = info.choices if lang else None

    if base == "select_multiple":
        relabel = cells.multi_joined if lang else None
        cols = [Column(q.name, label, cells.multi_joined(labels), relabel, info)]
        flags = cells.multi_flags(info.choices)
        for (name, shown), flag in zip(info.choices.items(), flags, strict=True):
            header = f"{label}/{shown}" if lang else f"{path}/{name}"
            cols.append(Column(q.name, header, flag))
        return cols
    if base == "geopoint":
        # Kobo's spelling: group/_name_latitude (or _Label_latitude with labels).
        prefix = groups if lang else path[: len(path) - len(q.name)]
        stem = (own or q.name) if lang else q.name
        cols = [Column(q.name, label, cells.plain)]
        for part, convert in zip(cells.GEO_PARTS, cells.geo_parts(), strict=True):
            cols.append(Column(q.name, f"{prefix}_{stem}_{part}", convert))
        return cols
    if info.question.is_media and links is not None:
        # KoboToolbox's pair: the file name, then `question_URL` with a relative link.
        return [Column(q.name, label, links.name), Column(q.name, f"{label}_URL", links.url)]
    if base == "calculate" and lang:  # a yes/no result reads as a word of the language
        yes_no = translated_words(lang, ("yes", "no"), "")
        words = {value: yes_no[word] for value, word in YES_NO.items()}
        return [Column(q.name, label, cells.choice_label(words))]
    one = cells.choice_label if lang and base == "select_one" else None
    return [Column(q.name, label, cells.converter_for(base, labels), one, info)]


class RowBuilder:
    """Turns submission records into table rows, numbering `_index` per table."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.counts: dict[str, int] = {t.name: 0 for t in layout.tables}
        self._getters = {t.name: [(c.key, c.convert) for c in t.columns] for t in layout.tables}
        # With labels, each record is shown with its own definition's (form_hash) labels:
        # a later version, even a hostile one, cannot relabel what others collected.
        self._merged = self._getters
        self._by_hash: dict[Any, dict[str, list[tuple[str, Converter]]]] = {}
        self._relabel = any(
            c.relabel is not None and c.info is not None and c.info.by_form
            for t in layout.tables
            for c in t.columns
        )
        words = layout.status_words
        self._status = cells.choice_label(words) if words else cells.plain
        # None (pending) stays an empty cell; a status without a word is kept as text.
        self._validation = cells.choice_label(layout.validation_words)

    def _getters_for(self, form_hash: Any) -> dict[str, list[tuple[str, Converter]]]:
        """Getters using the labels of definition `form_hash` (merged ones where it has none)."""
        if form_hash.__class__ is not str:
            return self._merged
        found = self._by_hash.get(form_hash)
        if found is None:
            changed = False
            found = {}
            for t in self.layout.tables:
                getters = []
                for c in t.columns:
                    convert = c.convert
                    own = c.info.by_form.get(form_hash) if c.info is not None else None
                    if c.relabel is not None and own and c.info is not None:
                        merged = c.info.choices
                        labels = {n: own.get(n, shown) for n, shown in merged.items()}
                        if labels != merged:
                            convert, changed = c.relabel(labels), True
                    getters.append((c.key, convert))
                found[t.name] = getters
            if not changed:
                found = self._merged
            if len(self._by_hash) < 1000:  # definitions of one form: a handful
                self._by_hash[form_hash] = found
        return found

    def rows(self, record: dict[str, Any]) -> Iterator[tuple[Table, list[Any]]]:
        """The main row of `record`, then its repeat rows (parents before children)."""
        if self._relabel:  # _repeat_rows reads self._getters too, for this record's rows
            self._getters = self._getters_for(record.get("form_hash"))
        main = self.layout.main
        if self.layout.media is not None:  # its links name this record's uuid and files
            self.layout.media.start(record)
        answers = record.get("answers")
        if answers.__class__ is not dict:  # missing, or a foreign record's odd shape
            answers = {}
        index = self.counts[main.name] = self.counts[main.name] + 1
        get = answers.get
        row = [convert(get(key)) for key, convert in self._getters[main.name]]
        submission = (cells.plain(record.get("id")), cells.plain(record.get("uuid")))
        version = cells.plain(record.get("form_version"))
        row += (
            *submission,
            cells.to_datetime(record.get("submission_time")),
            cells.plain(record.get("enumerator")),
            cells.plain(record.get("device_id")),
            version,
            self._status(record.get("status")),
            self._validation(record.get("review_status")),
            cells.plain(record.get("review_comment")),  # HQ's text: the sinks keep it text
            version,
            index,
        )
        yield main, row
        for child in main.children:
            yield from self._repeat_rows(child, answers.get(child.repeat), main, index, submission)

    def _repeat_rows(
        self,
        table: Table,
        instances: Any,
        parent: Table,
        parent_index: int,
        submission: tuple[Any, Any],
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
            row += (index, parent.name, parent_index, *submission)
            yield table, row
            for child in table.children:
                yield from self._repeat_rows(
                    child, instance.get(child.repeat), table, index, submission
                )
