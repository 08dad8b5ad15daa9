"""Reading form files: YAML -> Form, with every problem located as FILE:LINE:COL."""

from __future__ import annotations

import csv
import difflib
import gc
import io
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yntymak_cli.errors import Problem, ProblemsError
from yntymak_cli.files import MAX_FORM_BYTES, FileRefused, read_limited
from yntymak_cli.forms.model import Choice, Form, Question
from yntymak_cli.yaml_io import Positions, YamlSyntaxError, load_yaml

# Where `include:` may read from, besides the form's own folder: a folder of this name next
# to it (forms/survey/x.yaml may include ../shared/lists.yaml).
SHARED_DIR = "shared"


def _t(key: str, /, **params: object) -> str:
    """A problem text in the reader's language (keys, names and paths stay as written)."""
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


@dataclass
class LoadedForm:
    """A form file as read: the model (None when it could not be built) and its problems."""

    path: str
    form: Form | None
    problems: list[Problem] = field(default_factory=list)
    positions: Positions = field(default_factory=Positions)
    # Choice lists pulled in with `include:`: list name -> (file, positions in that file).
    included: dict[str, tuple[str, Positions]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    @property
    def ok(self) -> bool:
        return self.form is not None and not self.errors

    def require(self) -> Form:
        """The form, or a ProblemsError listing its errors."""
        if not self.ok:
            raise ProblemsError(self.errors)
        assert self.form is not None
        return self.form

    def at(self, path: tuple[str | int, ...], key: bool = False) -> tuple[int, int]:
        return self.positions.of(path, key=key)

    def locate(self, path: tuple[str | int, ...], key: bool = False) -> tuple[str, int, int]:
        """File, line and column of a path; lists from `include:` point into their own file."""
        if len(path) >= 2 and path[0] == "choices" and path[1] in self.included:
            file, positions = self.included[str(path[1])]
            return (file, *positions.of(path, key=key))
        return (self.path, *self.positions.of(path, key=key))

    def problem(
        self, path: tuple[str | int, ...], message: str, severity: str = "error", key: bool = False
    ) -> Problem:
        p = Problem(*self.locate(path, key=key), message, severity)
        self.problems.append(p)
        return p


def load_form(path: str | Path) -> LoadedForm:
    """Read and validate a form file. Never raises for bad content: see `.problems`."""
    path = Path(path)
    try:
        raw = read_limited(path, MAX_FORM_BYTES, "a form file")
    except FileRefused as exc:
        loaded = LoadedForm(str(path), None)
        loaded.problems.append(Problem(str(path), 1, 1, exc.reason))
        return loaded
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        loaded = LoadedForm(str(path), None)
        line = raw[: exc.start].count(b"\n") + 1
        loaded.problems.append(Problem(str(path), line, 1, _t("fv_not_utf8")))
        return loaded
    return load_form_text(text, str(path), base_dir=path.parent)


def load_form_text(text: str, filename: str = "<form>", base_dir: Path | None = None) -> LoadedForm:
    loaded = LoadedForm(filename, None)
    data = _parse(loaded, text)
    if data is None:
        return loaded
    if not isinstance(data, dict):
        loaded.problem((), _t("fv_not_mapping"))
        return loaded
    data = _resolve_includes(loaded, data, base_dir)
    data = _resolve_pulldata(loaded, data, base_dir)
    form = _build(loaded, data)
    if form is None:
        return loaded
    loaded.form = form
    from yntymak_cli.forms.validate import validate_form

    validate_form(loaded)
    return loaded


def form_from_dict(data: dict[str, Any]) -> Form:
    """A Form from a stored definition (database, bundle); raises ProblemsError if invalid."""
    loaded = LoadedForm(f"<form {data.get('id', '?')}>", None)
    form = _build(loaded, data)
    if form is None:
        raise ProblemsError(loaded.errors)
    return form


def _parse(loaded: LoadedForm, text: str) -> Any:
    if not text.strip():
        loaded.problems.append(Problem(loaded.path, 1, 1, _t("fv_empty")))
        return None
    try:
        data, positions = load_yaml(text)
    except YamlSyntaxError as exc:
        loaded.problems.append(Problem(loaded.path, exc.line, exc.col, exc.message))
        return None
    loaded.positions = positions
    if data is None:
        loaded.problems.append(Problem(loaded.path, 1, 1, _t("fv_empty")))
    return data


# pulldata('NAME', ...) with a literal file name: the tables a form needs.
_PULLDATA_RE = re.compile(r"""pulldata\s*\(\s*(?:'([^']*)'|"([^"]*)")""")
_TABLE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
# Where NAME.csv is looked for: beside the form, then in a choices/ folder beside it.
_PULLDATA_DIRS = (".", "choices")


_EXPRESSION_KEYS = frozenset(
    {"required", "relevant", "constraint", "default", "calculation", "choice_filter",
     "repeat_count", "instance_name"}
)  # fmt: skip


def _strings(data: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple, str]]:
    """Every expression of the form's data, with its path (not the text an XLSForm import
    kept aside under `xlsform:`, which never runs)."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if key in _EXPRESSION_KEYS and isinstance(value, str):
            yield (*path, key), value
        elif key == "questions" and isinstance(value, list):
            for i, question in enumerate(value):
                yield from _strings(question, (*path, key, i))


def _resolve_pulldata(loaded: LoadedForm, data: dict, base_dir: Path | None) -> dict:
    """Embed NAME.csv for every pulldata('NAME', ...) the form calls (unless written inline)."""
    inline = data.get("pulldata")
    if inline is not None and not isinstance(inline, dict):
        return data  # reported by the model check
    tables = dict(inline or {})
    refused: set[str] = set()  # reported once, at the first call
    for where, text in _strings(data):
        if "pulldata" not in text:
            continue
        for match in _PULLDATA_RE.finditer(text):
            name = match.group(1) if match.group(1) is not None else match.group(2)
            if name in tables or name in refused:
                continue
            rows = _read_table(loaded, where, name, base_dir)
            if rows is None:
                refused.add(name)
            else:
                tables[name] = rows
    if tables:
        data = {**data, "pulldata": tables}
    return data


def _read_table(
    loaded: LoadedForm, where: tuple, name: str, base_dir: Path | None
) -> list[dict[str, str]] | None:
    """The rows of NAME.csv (UTF-8, a header row), or None after reporting a problem."""
    if not _TABLE_NAME_RE.fullmatch(name) or ".." in name:
        loaded.problem(where, _t("fv_pulldata_name", name=name))
        return None
    candidates = [] if base_dir is None else [base_dir / d / f"{name}.csv" for d in _PULLDATA_DIRS]
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        loaded.problem(where, _t("fv_pulldata_missing", name=name, file=f"{name}.csv"))
        return None
    try:
        raw = read_limited(found, MAX_FORM_BYTES, "a data file")
        reader = csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""))
        header = next(reader, None)
        rows = [
            {col: (row[i] if i < len(row) else "") for i, col in enumerate(header or [])}
            for row in reader
            if any(row)  # blank lines
        ]
    except FileRefused as exc:
        loaded.problem(where, _t("fv_pulldata_refused", file=found.name, reason=exc.reason))
        return None
    except (UnicodeDecodeError, csv.Error) as exc:
        loaded.problem(where, _t("fv_pulldata_refused", file=found.name, reason=exc))
        return None
    if not header or any(not col for col in header) or len(set(header)) != len(header):
        reason = _t("fv_pulldata_header")
        loaded.problem(where, _t("fv_pulldata_refused", file=found.name, reason=reason))
        return None
    return rows


def _resolve_includes(loaded: LoadedForm, data: dict, base_dir: Path | None) -> dict:
    """Merge choice lists of `include:` files (forms/shared/*.yaml) into the form."""
    includes = data.get("include") or []
    if not isinstance(includes, list):
        loaded.problem(("include",), _t("fv_include_list"))
        return data
    if data.get("choices") is not None and not isinstance(data.get("choices"), dict):
        return data  # reported by the model check
    choices = dict(data.get("choices") or {})
    for i, rel in enumerate(includes):
        where = ("include", i)
        if not isinstance(rel, str) or base_dir is None:
            loaded.problem(where, _t("fv_include_entry"))
            continue
        target = _include_target(base_dir, rel)
        if target is None:
            loaded.problem(where, _t("fv_include_outside", path=rel, shared=SHARED_DIR))
            continue
        try:
            raw = read_limited(target, MAX_FORM_BYTES, "a choice list file")
            shared, shared_positions = load_yaml(raw.decode("utf-8-sig"))
        except FileRefused as exc:
            if exc.missing:
                loaded.problem(where, _t("fv_include_missing", path=rel))
            else:
                loaded.problem(where, _t("fv_include_refused", path=rel, reason=exc.reason))
            continue
        except (UnicodeDecodeError, YamlSyntaxError) as exc:
            detail = getattr(exc, "message", None) or _t("fv_include_not_utf8")
            loaded.problem(where, _t("fv_include_refused", path=rel, reason=detail))
            continue
        if not isinstance(shared, dict) or not isinstance(shared.get("choices"), dict):
            loaded.problem(where, _t("fv_include_not_mapping", path=rel))
            continue
        for list_name, items in shared["choices"].items():
            if list_name in choices:
                loaded.problem(where, _t("fv_include_list_twice", list=list_name, path=rel))
                continue
            choices[list_name] = items
            loaded.included[list_name] = (_display_path(target, base_dir, rel), shared_positions)
    return {**data, "choices": choices}


def _include_target(base_dir: Path, rel: str) -> Path | None:
    """The file an include names, symlinks resolved; None when it lies outside the folders
    a form may read (so a shared form cannot pull in /dev/zero or ~/.ssh/id_rsa)."""
    if not rel.strip() or Path(rel).anchor or rel.startswith(("/", "\\")):
        return None
    try:
        home = base_dir.resolve()
        target = (home / rel).resolve()
        # A `shared` folder beside the form (or beside its folder) may itself be a symlink
        # to where the lists really live: its resolved place is allowed too.
        shared = [(p / SHARED_DIR).resolve() for p in (Path(base_dir), Path(base_dir).parent)]
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return None
    for allowed in (home, home.parent / SHARED_DIR, *shared):
        if target.is_relative_to(allowed):
            return target
    return None


def _display_path(target: Path, base_dir: Path, rel: str) -> str:
    """The included file as the author would name it next to the form file."""
    return str(Path(base_dir) / rel) if not Path(rel).is_absolute() else str(target)


_FIELD_NAMES = {
    "question": sorted(Question.model_fields),
    "form": sorted(Form.model_fields),
}


def _build(loaded: LoadedForm, data: dict) -> Form | None:
    """Validate the structure. Unknown keys are reported and then ignored, so the semantic
    checks still run and the author sees every problem in one pass."""
    import copy

    from pydantic import ValidationError

    work = data
    for _ in range(2):
        try:
            with _collector_paused():
                return Form.model_validate(work)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        except RecursionError:
            loaded.problem((), _t("fv_nested"))
            return None
        if work is data:
            for err in errors:
                loaded.problems.append(_problem_from_pydantic(loaded, data, err))
        if any(err["type"] != "extra_forbidden" for err in errors) or work is not data:
            return None
        work = copy.deepcopy(data)
        for err in errors:
            _drop(work, err["loc"])
    return None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """100,000 choices are 100,000 models and dicts, none in a reference cycle: without a
    pause the garbage collector rescans the growing heap again and again meanwhile."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _drop(data: Any, loc: tuple) -> None:
    node = data
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict):
        node.pop(loc[-1], None)


def _problem_from_pydantic(loaded: LoadedForm, data: dict, err: Mapping[str, Any]) -> Problem:
    loc = tuple(err["loc"])
    # Union members add pseudo-locations ('str', 'dict[str,str]'); keep the real data path.
    path: list[str | int] = []
    node: Any = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif err["type"] in ("extra_forbidden", "missing") and part == loc[-1]:
            pass
        else:
            continue
        path.append(part)
    where = _describe(data, path)
    etype = err["type"]
    if etype == "extra_forbidden":
        key = str(path[-1])
        kind = "question" if _in_question(path) else "form"
        hint = difflib.get_close_matches(key, _FIELD_NAMES[kind], n=1)
        suggestion = _t("did_you_mean", name=hint[0]) if hint else ""
        message = where + _t("fv_unknown_key", key=key, hint=suggestion)
        file, line, col = loaded.locate(tuple(path), key=True)
    elif etype == "missing":
        message = where + _t("fv_missing_key", key=path[-1])
        file, line, col = loaded.locate(tuple(path[:-1]))
    else:
        field_name = path[-1] if path else "form"
        message = f"{where}'{field_name}': {_pydantic_text(err)}"
        file, line, col = loaded.locate(tuple(path))
    return Problem(file, line, col, message)


# pydantic's messages are English: the common ones from the catalog in ky and ru.
_PYDANTIC_KEYS = {
    "string_type": "fv_expected_text",
    "list_type": "fv_expected_list",
    "dict_type": "fv_expected_mapping",
    "model_type": "fv_expected_mapping",
    "model_attributes_type": "fv_expected_mapping",
    "bool_type": "fv_expected_bool",
    "bool_parsing": "fv_expected_bool",
}


def _pydantic_text(err: Mapping[str, Any]) -> str:
    from yntymak_cli.i18n import current_lang

    key = _PYDANTIC_KEYS.get(err["type"])
    if key is None or current_lang() == "en":
        return str(err["msg"])
    return _t(key)


def _in_question(path: list[str | int]) -> bool:
    return len(path) >= 3 and path[-3] == "questions"


def _describe(data: dict, path: list[str | int]) -> str:
    """'question 'age': ' for paths inside a question, 'choice list 'x': ' inside choices."""
    node: Any = data
    label = ""
    for i, part in enumerate(path[:-1]):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and i > 0 and path[i - 1] == "questions":
            name = node.get("name")
            if isinstance(name, str):
                label = _t("fv_who_question", name=name) + ": "
            elif isinstance(part, int):  # an index into the questions list
                label = _t("fv_who_question_n", n=part + 1) + ": "
        elif i > 0 and path[i - 1] == "choices" and isinstance(node, list):
            label = _t("fv_who_list", list=part) + ": "
    return label


__all__ = ["LoadedForm", "load_form", "load_form_text", "form_from_dict", "Choice"]
