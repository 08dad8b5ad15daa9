"""Entering paper questionnaires in bulk: many answers files, `.jsonl` and `.csv`, one call.

Every submission goes through the same engine check as a single `--answers` file. The
form is parsed and the engine planned once, and the accepted submissions are saved in one
transaction, so a thousand questionnaires cost about what one used to (see
benchmarks/bulk_bench.py). By default nothing is saved unless every submission is valid;
with `keep_going` the valid ones are saved and the others reported. Problems read
``FILE:LINE: question: message``, LINE being where the submission (or the answer, in a
YAML file) is written.

Formats, chosen by the file name's ending:

- ``.yaml``/``.yml``/``.json`` (or anything else): one submission, as before;
- ``.jsonl``: one JSON object per line, one submission each (blank lines are skipped);
- ``.csv``: a header row naming the columns like the CSV export does (``group/question``
  or the bare question name; ``question/choice`` 1/0 flags and ``_question_latitude``
  parts stand in for a missing select_multiple or geopoint column), then one row per
  submission. Only for forms without repeats. Columns the form fills itself (calculate,
  metadata such as ``start``, the export's ``_uuid``-style columns) are ignored, so an
  export of the same form can be read back.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yntymak_cli.collect.answers_file import _no_duplicates, parse_answers, read_answers_text
from yntymak_cli.engine.state import NodePath, format_path
from yntymak_cli.errors import InvalidInput, ProblemsError, YntymakError
from yntymak_cli.files import FileRefused
from yntymak_cli.forms.model import METADATA_TYPES, Form
from yntymak_cli.i18n import t

if TYPE_CHECKING:
    from yntymak_cli.collect.media import PreparedMedia
    from yntymak_cli.engine.survey import Engine
    from yntymak_cli.store.db import Store

# The export's geopoint part columns (export/cells.py GEO_PARTS), in "lat lon alt acc" order.
_GEO_PARTS = ("latitude", "longitude", "altitude", "precision")
# select_multiple flag cells meaning "chosen" (the export writes 1; spreadsheets 1.0 or TRUE).
_CHOSEN = frozenset({"1", "1.0", "true", "yes", "x"})


@dataclass
class Entry:
    """One submission read from a file: where it starts, its data, or why it is unreadable
    (`error`: a whole problem line, already located)."""

    file: str
    line: int
    data: Any = None
    error: str | None = None
    # The line of an answer by its node path, for formats that know it (YAML, JSON).
    locate: Callable[[NodePath], int] | None = None

    def line_of(self, path: NodePath) -> int:
        if path and self.locate is not None:
            try:
                return self.locate(path)
            except Exception:  # a position is a courtesy, never a reason to fail
                return self.line
        return self.line


@dataclass
class BulkResult:
    uuids: list[str] = field(default_factory=list)  # saved, in the order given
    problems: list[str] = field(default_factory=list)  # FILE:LINE: question: message
    total: int = 0
    refused: int = 0


def collect_many(
    store: Store,
    form: Form,
    paths: Iterable[Path],
    *,
    lang: str | None,
    enumerator: str,
    device_id: str,
    keep_going: bool = False,
    media_from: Collection[Path] = (),
) -> BulkResult:
    """Check every submission in `paths`, then save the valid ones in one transaction.
    Media paths must stay inside each answers file's folder or one of `media_from`.

    Without `keep_going`, ProblemsError (nothing saved) when any submission is refused.
    A file that cannot be read at all (missing, too large, not a regular file) stops the
    command before anything is checked.
    """
    from yntymak_cli.collect.session import answers_engine, save_filled

    engine = answers_engine(form, lang=lang, enumerator=enumerator, device_id=device_id)
    entries = [entry for path in paths for entry in read_entries(Path(path), form, lang)]
    if not entries:
        raise InvalidInput(t("bulk_no_submissions", lang))
    result = BulkResult(total=len(entries))
    accepted: list[dict[str, Any]] = []
    files: list[PreparedMedia] = []
    for entry in entries:
        media, problems = read_media(store, form, entry, lang, media_from=media_from)
        final = None
        if not problems:
            final, problems = check_entry(engine, entry)
        if final is None:
            result.refused += 1
            result.problems.extend(problems)
            continue
        accepted.append(final)
        files.extend(media)
    if result.refused and not keep_going:
        summary = []
        if result.total > 1:
            summary = [t("bulk_nothing_saved", lang, refused=result.refused, total=result.total)]
        raise ProblemsError(result.problems + summary)
    with store.write():  # one transaction: all of them, or (disk full) none
        keep_files(store, files, lang)
        for final in accepted:
            result.uuids.append(save_filled(store, engine, final, lang=lang))
    return result


def check_entry(
    engine: Engine, entry: Entry, data: Any = None, *, kept: Collection[str] = ()
) -> tuple[dict[str, Any] | None, list[str]]:
    """One submission through `engine.fill`: (the record's answers, []) or (None, problems
    reading ``FILE:LINE: question: message``). `data` stands in for the entry's own (an
    edit's merged answers; `kept` as in `fill_located`), located by the entry's lines."""
    from yntymak_cli.engine.fill import fill_located

    if entry.error is not None:
        return None, [entry.error]
    final, located = fill_located(engine, entry.data if data is None else data, kept=kept)
    if located or final is None:
        problems = []
        for path, message in located:
            where = f"{format_path(path)}: " if path else ""
            problems.append(f"{entry.file}:{entry.line_of(path)}: {where}{message}")
        return None, problems
    return final, []


# -- media files ----------------------------------------------------------------------------


def read_media(
    store: Store,
    form: Form,
    entry: Entry,
    lang: str | None,
    data: Any = None,
    *,
    media_from: Collection[Path] = (),
) -> tuple[list[PreparedMedia], list[str]]:
    """Check the files named by the entry's media answers and put, in their place, the
    stored text each will have (`NAME sha256:HEX`). A path is relative to the answers
    file's folder and must stay inside it (or inside one of `media_from`) once resolved:
    an answers file from someone else must not pull ``~/.ssh/id_rsa`` or the device key
    into the home and the bundle by an absolute path, ``..`` or a symlink. A stored answer
    whose file is in the home (an edit keeping its photo) stays. Returns the files to keep
    and problems ``FILE:LINE: question: message``. Nothing is written: `keep_files` does
    that, in the transaction that saves."""
    from yntymak_cli.collect.media import kept_answer, prepare_media
    from yntymak_cli.forms.values import InvalidValue

    prepared: list[PreparedMedia] = []
    problems: list[str] = []
    folder = Path(entry.file).parent
    allowed = [Path(os.path.realpath(folder))]
    allowed += [Path(os.path.realpath(os.path.expanduser(str(d)))) for d in media_from]

    def walk(answers: Any, prefix: NodePath) -> None:
        if not isinstance(answers, dict):
            return
        for key, value in answers.items():
            q = form.index.get(str(key))
            if q is None:
                continue
            path: NodePath = (*prefix, str(key))
            if q.is_repeat and isinstance(value, list):
                for i, item in enumerate(value):
                    walk(item, (*path, i))
            elif q.is_media and isinstance(value, str) and value.strip():
                if kept_answer(store, value) is not None:
                    continue
                given = folder / Path(value.strip()).expanduser()
                try:
                    _check_inside(given, allowed)
                    media = prepare_media(form, q, given)
                except InvalidValue as exc:
                    where = f"{entry.file}:{entry.line_of(path)}: {format_path(path)}"
                    problems.append(f"{where}: {exc.message(lang)}")
                    continue
                answers[key] = media.ref.text
                prepared.append(media)

    if entry.error is None:
        walk(entry.data if data is None else data, ())
    return prepared, problems


def _check_inside(path: Path, allowed: list[Path]) -> None:
    """InvalidValue unless `path`, every symlink followed, is inside one of `allowed`
    (resolved folders). A missing file resolves too: prepare_media then says it is missing."""
    from yntymak_cli.forms.values import InvalidValue

    resolved = Path(os.path.realpath(path))
    if not any(resolved.is_relative_to(folder) for folder in allowed):
        raise InvalidValue("media_outside_folder", path=str(path), folder=str(allowed[0]))


def keep_files(store: Store, files: list[PreparedMedia], lang: str | None) -> None:
    """Store checked files in the home, inside the caller's write transaction (so a
    refused save leaves no row; a file it wrote has no row and goes at the next purge).
    InvalidInput when a file changed since it was checked."""
    from yntymak_cli.collect.media import keep_media
    from yntymak_cli.forms.values import InvalidValue

    for media in files:
        try:
            keep_media(store, media)
        except InvalidValue as exc:
            raise InvalidInput(exc.message(lang)) from None
        except OSError as exc:
            from yntymak_cli.i18n import os_error_text

            raise YntymakError(
                t("media_cannot_keep", lang, name=media.name, reason=os_error_text(exc, lang))
            ) from None


# -- reading ------------------------------------------------------------------------------


def read_entries(path: Path, form: Form, lang: str | None) -> list[Entry]:
    """The submissions of one file. FileRefused when it cannot be read at all."""
    suffix = path.suffix.lower()
    try:
        text = read_answers_text(path)
    except FileRefused:
        raise  # missing, a folder, a device, too large: the command stops here
    except InvalidInput as exc:
        return [Entry(str(path), 1, error=exc.message)]  # not UTF-8
    if suffix == ".jsonl":
        return _jsonl(path, text, lang)
    if suffix == ".csv":
        return _csv(path, text, form, lang)
    try:
        data, positions = parse_answers(path, text)
    except InvalidInput as exc:
        return [Entry(str(path), 1, error=exc.message)]
    if positions is None:  # JSON: its positions are looked for only when a problem needs one
        return [Entry(str(path), 1, data, locate=lambda p: _json_line(text, p))]
    return [Entry(str(path), 1, data, locate=lambda p: positions.of(p, key=True)[0])]


def _json_line(text: str, path: NodePath) -> int:
    from yntymak_cli.yaml_io import load_yaml

    return load_yaml(text)[1].of(path, key=True)[0]  # JSON is YAML 1.2: same positions


def _jsonl(path: Path, text: str, lang: str | None) -> list[Entry]:
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = {"path": path, "line": number}
        try:
            # As a .json answers file: a key given twice is refused, not silently replaced.
            data = json.loads(line, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as exc:
            error = t("answers_bad_json", lang, **where, col=exc.colno, detail=exc.msg)
            entries.append(Entry(str(path), number, error=error))
            continue
        except RecursionError:
            error = t("answers_too_deep", lang, path=f"{path}:{number}")
            entries.append(Entry(str(path), number, error=error))
            continue
        except ValueError as exc:  # a duplicate key; a number of over 4,300 digits
            detail = str(exc).split(":")[0]
            error = t("answers_bad_json", lang, **where, col=1, detail=detail)
            entries.append(Entry(str(path), number, error=error))
            continue
        if not isinstance(data, dict):
            error = f"{path}:{number}: {t('bulk_line_not_object', lang)}"
            entries.append(Entry(str(path), number, error=error))
            continue
        entries.append(Entry(str(path), number, data))
    return entries


@dataclass
class _Column:
    name: str  # question name
    kind: str  # "value", "flag", "geo" or "skip"
    part: str = ""  # the choice of a flag column, the part of a geopoint column


def _csv_columns(form: Form) -> dict[str, _Column]:
    """Every header the CSV export writes for this form (and bare question names)."""
    columns: dict[str, _Column] = {}
    for q, _ in form.walk():
        if not q.holds_value and q.base_type != "note":
            continue
        path = form.group_path(q.name)
        computed = q.base_type in METADATA_TYPES or q.base_type in ("calculate", "note")
        kind = "skip" if computed else "value"
        columns.setdefault(q.name, _Column(q.name, kind))
        columns.setdefault(path, _Column(q.name, kind))
        if computed:
            continue
        if q.base_type == "select_multiple":
            for choice in form.choice_list(q.list_name):
                columns.setdefault(f"{path}/{choice.name}", _Column(q.name, "flag", choice.name))
        elif q.is_media:
            # The export's link to the file (relative to the export's folder): a path to
            # read the file from, so an export written with --media reads back.
            columns.setdefault(f"{path}_URL", _Column(q.name, "value"))
        elif q.base_type == "geopoint":
            prefix = path[: len(path) - len(q.name)]
            for part in _GEO_PARTS:
                columns.setdefault(f"{prefix}_{q.name}_{part}", _Column(q.name, "geo", part))
    return columns


def _csv(path: Path, text: str, form: Form, lang: str | None) -> list[Entry]:
    file = str(path)
    repeats = [q.name for q, _ in form.walk() if q.is_repeat]
    if repeats:
        message = t("bulk_csv_repeats", lang, form=form.id, repeats=", ".join(repeats))
        return [Entry(file, 1, error=f"{file}: {message}")]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            return [Entry(file, 1, error=f"{file}:1: {t('bulk_csv_no_header', lang)}")]
        known = _csv_columns(form)
        columns, errors = _header(file, header, known, form, lang)
        if errors:
            return errors
        entries = []
        previous = reader.line_num
        for row in reader:
            start, previous = previous + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # a blank line, or a row of empty cells
            if len(row) > len(header):
                message = t("bulk_csv_row_length", lang, given=len(row), count=len(header))
                entries.append(Entry(file, start, error=f"{file}:{start}: {message}"))
                continue
            entries.append(Entry(file, start, _row_answers(columns, row)))
    except csv.Error as exc:
        return [Entry(file, reader.line_num, error=f"{file}:{reader.line_num}: CSV: {exc}")]
    return entries


def _header(
    file: str, header: list[str], known: dict[str, _Column], form: Form, lang: str | None
) -> tuple[list[_Column | None], list[Entry]]:
    """The column of each header cell (None: ignored); problems name line 1."""
    columns: list[_Column | None] = []
    errors: list[Entry] = []
    seen: set[str] = set()
    for raw in header:
        name = raw.strip()
        if name in seen and name:
            message = t("bulk_csv_duplicate_column", lang, column=name)
            errors.append(Entry(file, 1, error=f"{file}:1: {message}"))
        seen.add(name)
        if not name or (name.startswith("_") and name not in known):
            columns.append(None)  # the export's _uuid, _index, … columns
            continue
        column = known.get(name)
        if column is None:
            near = difflib.get_close_matches(name, list(known), n=1)
            if near:
                message = t("unknown_question_hint", lang, name=name, suggestion=near[0])
            else:
                message = t("unknown_question", lang, name=name)
            errors.append(Entry(file, 1, error=f"{file}:1: {message}"))
        columns.append(column if column is None or column.kind != "skip" else None)
    return columns, errors


def _row_answers(columns: list[_Column | None], row: list[str]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    flags: dict[str, list[str]] = {}
    geo: dict[str, dict[str, str]] = {}
    for column, cell in zip(columns, row, strict=False):
        if column is None or not cell.strip():
            continue
        if column.kind == "value":
            answers[column.name] = cell
        elif column.kind == "flag":
            if cell.strip().lower() in _CHOSEN:
                flags.setdefault(column.name, []).append(column.part)
        else:
            geo.setdefault(column.name, {})[column.part] = cell.strip()
    # The flag and part columns are what the export adds beside the value column: used
    # only when the value column itself is missing or empty.
    for name, chosen in flags.items():
        answers.setdefault(name, chosen)
    for name, parts in geo.items():
        numbers = [parts.get(p, "") for p in _GEO_PARTS]
        while numbers and not numbers[-1]:
            numbers.pop()
        answers.setdefault(name, " ".join(n or "0" for n in numbers))
    return answers
