"""XLSForm -> YAML form, through pyxform's own reader (we never parse XLSForm ourselves).

pyxform turns the workbook into its intermediate JSON dict (`children`, `bind`,
`control`, ...) after resolving header and type aliases, translations and settings.
We map that dict onto our model. The dict is not a stable pyxform API, so type names
are normalised defensively and unknown keys are kept, never dropped; every call into
pyxform goes through pyxform_adapter, the one module to change for a new pyxform.

Each survey row is tagged with its spreadsheet row number before pyxform reads it, so
warnings can name the row and elements pyxform generates itself (the `meta` group,
`or_other` text questions, repeat count calculations, table-list headers) are told
apart from the author's rows.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yntymak_cli.errors import InvalidInput, YntymakError
from yntymak_cli.forms import expressions as ex
from yntymak_cli.forms.model import EXPRESSION_KEYS, NAME_RE, VALUE_TYPES
from yntymak_cli.xlsform import expressions as xex
from yntymak_cli.xlsform import languages
from yntymak_cli.xlsform import pyxform_adapter as pyx
from yntymak_cli.yaml_io import dump_yaml

ROW_KEY = "_yntymak_row"
# Ours in XLSForm terms: pyxform passes `bind::` columns to the XForm (with the namespace
# declared in settings) and ignores unknown settings columns.
SENSITIVE_BIND = "yntymak:sensitive"
# `latin_lookalikes: true` travels as the column bind::yntymak:latin-lookalikes (XLSForm has no
# such column; a namespaced bind attribute is kept by pyxform and ignored by ODK tools).
LOOKALIKES_BIND = "yntymak:latin-lookalikes"
# `keep_gps: true` (an image keeps its EXIF GPS when scaled down) likewise.
KEEP_GPS_BIND = "yntymak:keep-gps"
# XLSForm's names of the media types (pyxform calls `image` `photo`).
_MEDIA_TYPES = {
    "image": "image",
    "photo": "image",
    "audio": "audio",
    "video": "video",
    "file": "file",
}
NAMESPACE = 'yntymak="urn:yntymak-cli:xforms"'
SUMMARY_SETTING = "yntymak_summary_by"
# The form's `quality:` block, one settings column per key: yntymak_quality_min_minutes...
QUALITY_SETTING = "yntymak_quality_"
_QUALITY_NUMBERS = ("min_minutes", "min_seconds_per_question", "max_km_from_district")
_QUALITY_NAMES = ("duplicate_keys", "district_by")

# Warning kinds (XlsformWarning.kind), stable for tests and for callers that filter.
UNSUPPORTED_TYPE = "unsupported-type"
EXPRESSION = "expression-not-run"
RENAMED = "renamed"
OR_OTHER = "or-other"
CHOICES_LOADED = "choices-loaded"
CHOICES = "choices"
LOOP = "loop-expanded"
COLUMNS_KEPT = "columns-kept"
SETTINGS = "settings-not-kept"
DEFAULT = "default-not-used"
TYPE_CONVERTED = "type-converted"
APPEARANCE = "appearance"
EMPTY_GROUP = "empty-group"
INVALID = "invalid"
# pyxform could not read something the way we ask it to, and a plainer reading was used.
READ_FALLBACK = "read-fallback"

# XLSForm question columns we carry, in the one order both directions use: YAML keys on
# import (KEY_ORDER) and survey columns on export (exporter).
QUESTION_COLUMNS = (
    "label",
    "hint",
    "required",
    "required_message",
    "relevant",
    "constraint",
    "constraint_message",
    "default",
    "calculation",
    "choice_filter",
    "read_only",
    "appearance",
    "parameters",
    "repeat_count",
)
_APPEARANCE_AT = QUESTION_COLUMNS.index("appearance")
# Question keys written in this order (readable YAML; nested questions last).
KEY_ORDER = (
    "name",
    "type",
    *QUESTION_COLUMNS[:_APPEARANCE_AT],
    "sensitive",
    "latin_lookalikes",
    "accept",
    "max_pixels",
    "keep_gps",
    *QUESTION_COLUMNS[_APPEARANCE_AT:],
    "xlsform",
    "questions",
)
# Keys a validation error can be moved aside from (kept under `xlsform:` instead).
SET_ASIDE_KEYS = (*EXPRESSION_KEYS, "required", "default")

_TYPES = {
    "text": "text",
    "string": "text",
    "integer": "integer",
    "int": "integer",
    "decimal": "decimal",
    "date": "date",
    "time": "time",
    "datetime": "datetime",
    "date time": "datetime",
    "geopoint": "geopoint",
    "gps": "geopoint",
    "location": "geopoint",
    "geotrace": "geotrace",
    "geoshape": "geoshape",
    **_MEDIA_TYPES,
    "note": "note",
    "calculate": "calculate",
    "acknowledge": "acknowledge",
    "trigger": "acknowledge",
    "range": "range",
    "start": "start",
    "start time": "start",
    "end": "end",
    "end time": "end",
    "today": "today",
    "deviceid": "deviceid",
    "device id": "deviceid",
    "imei": "deviceid",
    "username": "username",
}
_GROUPS = {
    "group": "group",
    "begin group": "group",
    "repeat": "repeat",
    "begin repeat": "repeat",
    "looped group": "repeat",
    "lgroup": "repeat",
    "loop": "loop",
    "begin loop": "loop",
}
_BIND_TYPES = {
    "string": "text",
    "int": "integer",
    "decimal": "decimal",
    "date": "date",
    "time": "time",
    "dateTime": "datetime",
    "geopoint": "geopoint",
    "geotrace": "geotrace",
    "geoshape": "geoshape",
}
_PRELOADS = {"start", "end", "today", "deviceid", "username"}
_FILE_EXTENSIONS = (".csv", ".xml", ".geojson")
_TRUE = {"yes", "true", "true()"}
_FALSE = {"no", "false", "false()", ""}
# Survey columns (as pyxform names them after de-aliasing) that map onto our fields.
_CONSUMED_FIRST = {"type", "name", "label", "hint", "default", "choice_filter", ROW_KEY}
_CONSUMED_PAIRS = {
    ("bind", "relevant"),
    ("bind", "constraint"),
    ("bind", "jr:constraintMsg"),
    ("bind", "required"),
    ("bind", "jr:requiredMsg"),
    ("bind", "readonly"),
    ("bind", "calculate"),
    ("bind", SENSITIVE_BIND),
    ("bind", LOOKALIKES_BIND),
    ("bind", KEEP_GPS_BIND),
    ("control", "appearance"),
    ("control", "accept"),
    ("control", "jr:count"),
}
# Settings pyxform fills in itself or that we map.
_KNOWN_SETTINGS = {
    "type",
    "name",
    "title",
    "id_string",
    "sms_keyword",
    "default_language",
    "children",
    "choices",
    "version",
    "instance_name",
    SUMMARY_SETTING,
}
MEDIA_COLUMNS = ("media", "image", "big-image", "audio", "video")


class XlsformWarning(str):
    """A warning message (a plain str for printing) that also says what kind it is."""

    kind: str

    def __new__(cls, message: str, kind: str) -> XlsformWarning:
        obj = super().__new__(cls, message)
        obj.kind = kind
        return obj


@dataclass
class XlsformResult:
    """The imported form as plain data, as YAML text, and what could not be carried over."""

    form_data: dict[str, Any]
    yaml_text: str
    warnings: list[str]

    def warning_kinds(self) -> set[str]:
        return {getattr(w, "kind", INVALID) for w in self.warnings}


def import_xlsform(path: str | Path) -> XlsformResult:
    """Read an XLSForm (.xlsx .xlsm .xls .md .csv) into our form format.

    Raises InvalidInput (exit 2) when pyxform itself rejects the file. Everything that
    cannot run here becomes a warning and is kept under the question's `xlsform:` key.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    source = _read(path)
    importer = _Importer(path, source)
    try:
        data = importer.build()
    except YntymakError:
        raise
    except Exception as exc:  # a bug here must not show a traceback to a field user
        raise YntymakError(
            f"{path}: could not import this XLSForm ({type(exc).__name__}: {exc}); "
            "please report this with the file"
        ) from exc
    return XlsformResult(data, dump_yaml(data), list(importer.warnings))


# --------------------------------------------------------------------------- reading


@dataclass
class _Source:
    data: dict[str, Any]
    raw_rows: list[dict[str, Any]] | None  # survey rows as written, index = row - 2
    workbook: Any  # pyxform DefinitionData
    headers: dict[str, tuple[str, ...]]  # survey header as written -> pyxform's tokens
    fallbacks: list[str]  # what was read a plainer way, told to the user as warnings


def _read(path: Path) -> _Source:
    try:
        workbook = pyx.read_workbook(path)
        # The whole pyxform conversion decides whether the file is an XLSForm at all.
        pyx.check_converts(workbook)
    except Exception as exc:
        message = pyx.error_text(exc)
        raise InvalidInput(f"{path}: pyxform cannot convert this XLSForm: {message}") from exc
    fallbacks: list[str] = []
    raw_rows: list[dict[str, Any]] | None = pyx.survey_rows(workbook)
    headers = _header_tokens(workbook, fallbacks)
    try:
        data = pyx.intermediate_dict(workbook, row_key=ROW_KEY)
    except Exception as exc:
        raw_rows = None  # pyxform's untagged dict: positions instead of rows
        data = pyx.intermediate_dict(workbook)
        fallbacks.append(
            f"pyxform could not read the survey with row numbers ({pyx.error_text(exc)}); "
            "warnings give positions instead of rows, and columns without a field here "
            "are not kept"
        )
    return _Source(data, raw_rows, workbook, headers, fallbacks)


def _header_tokens(workbook: Any, fallbacks: list[str]) -> dict[str, tuple[str, ...]]:
    """pyxform's reading of each survey header, e.g. `image::English` -> (media, image, ...)."""
    names = pyx.survey_headers(workbook)
    double = any("::" in h for h in names)
    out: dict[str, tuple[str, ...]] = {}
    for header in names:
        try:
            out[header] = pyx.header_tokens(header, double)
        except Exception as exc:
            out[header] = tuple(header.split("::"))
            fallbacks.append(
                f"survey column '{header}': pyxform could not read this header "
                f"({pyx.error_text(exc)}); read as written"
            )
    return out


# --------------------------------------------------------------------------- helpers


def _norm(type_text: Any) -> str:
    """`select_one`, `Select One`, `select one` -> `select one`."""
    return " ".join(str(type_text).replace("_", " ").split()).lower()


def _flag(value: Any) -> bool | None:
    """True/False for XLSForm yes/no values, None for an expression."""
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _dict_at(node: dict, key: str) -> dict:
    """node[key] when it is a dict (pyxform's bind, control, parameters), else {}."""
    value = node.get(key)
    return value if isinstance(value, dict) else {}


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Nested pyxform keys back to column headers: {media: {image: x}} -> media::image."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}::{key}" if prefix else str(key))
    elif value is not None and value != "":
        yield prefix, str(value)


def _sanitise(name: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
    return text if re.match(r"[A-Za-z_]", text) else f"_{text}"


def _ordered(q: dict[str, Any]) -> dict[str, Any]:
    """Put keys in readable order in place (the dict's identity is referenced elsewhere)."""
    rank = {k: i for i, k in enumerate(KEY_ORDER)}
    items = sorted(q.items(), key=lambda kv: rank.get(kv[0], len(rank)))
    q.clear()
    q.update(items)
    return q


@dataclass
class _Pending:
    """An expression to translate once every question's name and type is known."""

    question: dict[str, Any]
    key: str
    text: str


# --------------------------------------------------------------------------- importer


class _Importer:
    def __init__(self, path: Path, source: _Source) -> None:
        self.path = path
        self.file = str(path)
        self.data = source.data
        self.raw_rows = source.raw_rows
        self.workbook = source.workbook
        self.headers = source.headers
        self.warnings: list[XlsformWarning] = []
        self.choices: dict[str, list[dict[str, Any]]] = {}
        self.list_names: dict[str, str] = {}  # pyxform list name -> ours
        self.langs: dict[str, None] = {}  # language codes, in order of appearance
        self.pending: list[_Pending] = []
        self.rows: dict[int, int] = {}  # id(question dict) -> spreadsheet row
        self.kept: dict[str, list[int]] = {}  # kept survey column -> rows
        self.position = 0
        self.external: dict[str, list[dict[str, Any]]] | None = None
        self.csv_problem = ""
        setting = str(self.data.get("default_language") or languages.DEFAULT)
        self.default_code = languages.code_of(setting)
        self.multilingual = self._has_named_languages()
        for message in source.fallbacks:  # said, never silent
            self.warnings.append(XlsformWarning(f"{self.file}: {message}", READ_FALLBACK))

    # -- warnings -----------------------------------------------------------------------

    def warn(self, kind: str, message: str, q: dict[str, Any] | None = None) -> None:
        where = ""
        if q is not None:
            row = self.rows.get(id(q))
            where = f"row {row}, " if row else ""
            where += f"question '{q.get('name')}': "
        self.warnings.append(XlsformWarning(f"{self.file}: {where}{message}", kind))

    # -- text and languages ---------------------------------------------------------------

    def _has_named_languages(self) -> bool:
        def texts(node: Any) -> Iterator[Any]:
            if isinstance(node, dict):
                for key in ("label", "hint"):
                    yield node.get(key)
                bind = node.get("bind") or {}
                if isinstance(bind, dict):
                    yield bind.get("jr:constraintMsg")
                    yield bind.get("jr:requiredMsg")
                for child in node.get("children") or []:
                    yield from texts(child)

        values = list(texts(self.data))
        for items in (self.data.get("choices") or {}).values():
            values.extend(item.get("label") for item in items if isinstance(item, dict))
        return any(isinstance(v, dict) and any(k != languages.DEFAULT for k in v) for v in values)

    def text(self, value: Any) -> str | dict[str, str] | None:
        if value is None or value == "":
            return None
        if isinstance(value, dict):
            out: dict[str, str] = {}
            for lang, item in value.items():
                if item is None or item == "" or isinstance(item, dict):
                    continue
                code = languages.code_of(str(lang))
                out[code] = str(item)
                self.langs.setdefault(code, None)
            return out or None
        if self.multilingual:
            # pyxform gives plain text to the default language (`default` if unset).
            self.langs.setdefault(self.default_code, None)
            return {self.default_code: str(value)}
        return str(value)

    def every_language(self, text: str) -> str | dict[str, str]:
        if not self.multilingual:
            return text
        codes = list(self.langs) or [self.default_code]
        return dict.fromkeys(codes, text)

    # -- build ----------------------------------------------------------------------------

    def build(self) -> dict[str, Any]:
        self._choices()
        questions = self._children(self.data.get("children") or [])
        renamed = self._unique_names(questions)
        self._expressions(questions, renamed)
        self._warn_kept_columns()
        form = self._settings(renamed, {q["name"]: q for q in _walk(questions)})
        if self.choices:
            form["choices"] = self.choices
        form["questions"] = questions
        self._settle(form)
        return form

    # -- choices --------------------------------------------------------------------------

    def _choices(self) -> None:
        for list_name, items in (self.data.get("choices") or {}).items():
            self._add_list(str(list_name), items or [])

    def _add_list(self, list_name: str, items: list[Any]) -> str:
        ours = list_name if NAME_RE.match(list_name) else _sanitise(list_name)
        base, k = ours, 2
        while ours in self.choices:
            ours, k = f"{base}_{k}", k + 1
        if ours != list_name:
            self.warnings.append(
                XlsformWarning(
                    f"{self.file}: choice list '{list_name}' renamed to '{ours}'", RENAMED
                )
            )
        self.list_names[list_name] = ours
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        media: set[str] = set()
        for item in items:
            if not isinstance(item, dict) or item.get("name") in (None, ""):
                continue
            choice: dict[str, Any] = {"name": str(item["name"])}
            label = self.text(item.get("label"))
            if label is not None:
                choice["label"] = label
            for key, value in item.items():
                if key in ("name", "label") or str(key).startswith("__"):
                    continue
                for column, text in _flatten(value, str(key)):
                    choice[column] = text
                    if column.split("::")[0] in MEDIA_COLUMNS:
                        media.add(column)
            if choice["name"] in seen:
                self.warnings.append(
                    XlsformWarning(
                        f"{self.file}: choice list '{list_name}': duplicate choice "
                        f"'{choice['name']}' dropped (choice names must be unique here)",
                        CHOICES,
                    )
                )
                continue
            seen.add(choice["name"])
            out.append(choice)
        for column in sorted(media):
            self.warnings.append(
                XlsformWarning(
                    f"{self.file}: choice list '{list_name}': column '{column}' is kept but "
                    "media are not shown in a terminal",
                    COLUMNS_KEPT,
                )
            )
        self.choices[ours] = out
        return ours

    # -- questions ------------------------------------------------------------------------

    def _marked(self, node: dict[str, Any]) -> bool:
        return ROW_KEY in node

    def _generated(self, node: dict[str, Any]) -> bool:
        if self.raw_rows is not None:
            return not self._marked(node)
        name = str(node.get("name", ""))
        bind = node.get("bind") or {}
        return bool(
            (node.get("control") or {}).get("bodyless")
            or name in ("instanceID", "instanceName")
            or name.startswith(("generated_table_list_label_", "reserved_name_for_field"))
            or (node.get("label") == "Specify other." and name.endswith("_other"))
            or (node.get("type") == "calculate" and bind.get("readonly") == "true()")
        )

    def _children(self, children: list[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        nodes = [c for c in children if isinstance(c, dict)]
        counts = {
            str(c.get("name")): c
            for c in nodes
            if self._generated(c) and _norm(c.get("type")) == "calculate"
        }
        for i, node in enumerate(nodes):
            if self._generated(node):
                # pyxform's meta group also holds rows the author wrote (audit).
                if node.get("children"):
                    out.extend(self._children(node["children"]))
                continue
            self.position += 1
            nxt = nodes[i + 1] if i + 1 < len(nodes) else None
            out.extend(self._question(node, nxt, counts))
        return out

    def _row_of(self, node: dict[str, Any]) -> int:
        try:
            return int(node[ROW_KEY])
        except (KeyError, TypeError, ValueError):
            return self.position

    def _question(
        self,
        node: dict[str, Any],
        nxt: dict[str, Any] | None,
        counts: dict[str, dict[str, Any]],
    ) -> list[dict[str, Any]]:
        name = str(node.get("name", ""))
        q: dict[str, Any] = {"name": name}
        self.rows[id(q)] = self._row_of(node)
        xls: dict[str, Any] = {}
        type_text = str(node.get("type", ""))
        norm = _norm(type_text)
        extra: list[dict[str, Any]] = []

        if norm in _GROUPS:
            kind = _GROUPS[norm]
            if kind == "loop":
                return self._loop(node, q)
            q["type"] = kind
            self._common(node, q, xls, kind)
            self._container(node, q, counts)
            if not q["questions"]:
                self.warn(EMPTY_GROUP, f"{kind} holds no question this tool can keep; left out", q)
                return []
        else:
            base = self._type(node, q, xls, type_text, norm)
            self._common(node, q, xls, base)
            if base.startswith("select_") and nxt is not None:
                extra = self._or_other(q, nxt)
        self._kept_columns(node, q, xls)
        if xls:
            q["xlsform"] = {**(q.get("xlsform") or {}), **xls}
        return [_ordered(q), *extra]

    # -- types ------------------------------------------------------------------------------

    def _type(self, node: dict, q: dict, xls: dict, type_text: str, norm: str) -> str:
        selects = {_norm(k): v for k, v in pyx.select_aliases().items()}
        if norm in selects:
            return self._select(node, q, xls, type_text, selects[norm])
        base = _TYPES.get(norm) or self._type_from_pyxform(node, q, type_text)
        if base is None:
            q["type"] = "unsupported"
            xls["type"] = self._written_type(node, type_text)
            self.warn(UNSUPPORTED_TYPE, self._why_unsupported(type_text), q)
            return "unsupported"
        q["type"] = base
        if base == "range":
            self._range(node, q, xls)
        if base in ("image", "audio", "video", "file"):
            self._media(node, q, xls, base)
        if base == "calculate" and not (node.get("bind") or {}).get("calculate"):
            self._calculate_from_default(node, q)
        return base

    def _why_unsupported(self, type_text: str) -> str:
        spec = pyx.type_spec(type_text) or {}
        if (spec.get("bind") or {}).get("type") == "binary":
            what = "media or files cannot be captured in a terminal"
        elif (spec.get("bind") or {}).get("jr:preload"):
            what = "this device property is not recorded here"
        else:
            what = "this type cannot be answered here"
        return f"type '{type_text}': {what}; kept as type unsupported (not asked)"

    def _type_from_pyxform(self, node: dict, q: dict, type_text: str) -> str | None:
        """Old or rare type names, read through pyxform's own type dictionary."""
        spec = pyx.type_spec(type_text)
        if spec is None:
            return None
        bind, control = spec.get("bind") or {}, spec.get("control") or {}
        preload = str(bind.get("jr:preloadParams", ""))
        if bind.get("jr:preload"):
            base = preload if preload in _PRELOADS else None
        elif control.get("tag") == "trigger" and bind.get("type") in (None, "string"):
            base = "acknowledge"
        elif control.get("tag") == "input" and bind.get("readonly") == "true()":
            base = "note"
        elif control.get("tag") == "input":
            base = _BIND_TYPES.get(str(bind.get("type")))
        elif not control and (node.get("bind") or {}).get("calculate"):
            base = "calculate"
        else:
            base = None
        if base is None:
            return None
        self.warn(TYPE_CONVERTED, f"type '{type_text}' imported as {base}", q)
        if bind.get("constraint") and not (node.get("bind") or {}).get("constraint"):
            node.setdefault("bind", {})["constraint"] = bind["constraint"]
        return base

    def _calculate_from_default(self, node: dict, q: dict) -> None:
        default = node.pop("default", None)
        if default in (None, ""):
            return
        text = str(default)
        if not pyx.default_is_dynamic(text, "calculate"):
            quote = '"' if "'" in text else "'"
            text = f"{quote}{text}{quote}"  # a fixed value as a string literal
        node.setdefault("bind", {})["calculate"] = text
        self.warn(
            TYPE_CONVERTED, f"calculate has no calculation; its default {default!r} is used", q
        )

    def _range(self, node: dict, q: dict, xls: dict) -> None:
        params = node.get("parameters") or {}
        if not isinstance(params, dict):
            params = pyx.parse_parameters(str(params), self.rows.get(id(q), 0))
        q["parameters"] = {
            k: str(params.get(k, d)) for k, d in (("start", "1"), ("end", "10"), ("step", "1"))
        }
        raw = self._raw(node).get("parameters") if self.raw_rows is not None else None
        others = {}
        if raw:
            others = {
                k: v
                for k, v in pyx.parse_parameters(str(raw), 0).items()
                if k not in ("start", "end", "step")
            }
        if others:
            xls["parameters"] = " ".join(f"{k}={v}" for k, v in others.items())

    def _media(self, node: dict, q: dict, xls: dict, base: str) -> None:
        """body::accept -> accept; an image's max-pixels parameter -> max_pixels (other
        parameters are kept aside and go back on export); bind::yntymak:keep-gps."""
        accept = _dict_at(node, "control").get("accept")
        if accept not in (None, ""):
            q["accept"] = str(accept)
        if _flag(_dict_at(node, "bind").get(KEEP_GPS_BIND)) and base == "image":
            q["keep_gps"] = True
        raw = node.get("parameters")
        if not raw:
            return
        params = raw if isinstance(raw, dict) else pyx.parse_parameters(str(raw), 0)
        others = {k: str(v) for k, v in params.items() if k != "max-pixels"}
        pixels = str(params.get("max-pixels", "")).strip()
        if pixels and base == "image" and pixels.isdigit() and int(pixels) > 0:
            q["max_pixels"] = int(pixels)
        elif pixels:
            others["max-pixels"] = pixels
        if others:
            xls["parameters"] = " ".join(f"{k}={v}" for k, v in others.items())

    def _select(self, node: dict, q: dict, xls: dict, type_text: str, kind: str) -> str:
        keyword = {
            pyx.SELECT_ONE: "select_one",
            pyx.SELECT_ALL_THAT_APPLY: "select_multiple",
            pyx.SELECT_ONE_EXTERNAL: "select_one",
            pyx.RANK: "rank",
        }.get(kind, "select_one")
        list_name = str(node.get("itemset") or node.get("list_name") or "")
        if not list_name:
            list_name = type_text.split()[-1] if len(type_text.split()) > 1 else ""
        ext = os.path.splitext(list_name)[1].lower()

        def unsupported(original: str, why: str) -> str:
            q["type"] = "unsupported"
            xls["type"] = original
            self.warn(UNSUPPORTED_TYPE, f"{why}; kept as type unsupported (not asked)", q)
            return "unsupported"

        if kind == pyx.RANK:
            return unsupported(
                f"rank {list_name}", "type 'rank' (ordering choices) is not supported"
            )
        if list_name.startswith("${"):
            return unsupported(
                f"{keyword} {list_name}", f"choices from another question's answers ({list_name})"
            )
        if ext in _FILE_EXTENSIONS:
            original = f"{keyword}_from_file {list_name}"
            if ext != ".csv":
                return unsupported(original, f"choices from {ext} file '{list_name}'")
            ours = self._csv_list(node, q, list_name)
            if ours is None:
                return unsupported(original, f"choices file '{list_name}' {self.csv_problem}")
            q["type"] = f"{keyword} {ours}"
            return keyword
        if kind == pyx.SELECT_ONE_EXTERNAL:
            ours = self._external_list(q, list_name)
            if ours is None:
                return unsupported(
                    f"select_one_external {list_name}", "external choices could not be read"
                )
            q["type"] = f"select_one {ours}"
            return keyword
        ours = self.list_names.get(list_name)
        if ours is None:
            return unsupported(f"{keyword} {list_name}", f"choice list '{list_name}' is missing")
        q["type"] = f"{keyword} {ours}"
        return keyword

    def _csv_list(self, node: dict, q: dict, file_name: str) -> str | None:
        cached = self.list_names.get(f"file:{file_name}")
        if cached is not None:
            node.pop("parameters", None)
            return cached
        target = self.path.parent / file_name
        params = _dict_at(node, "parameters")
        value_col = str(params.get("value") or "name")
        label_col = str(params.get("label") or "label")
        try:
            text = target.read_text(encoding="utf-8-sig")
            reader = csv.DictReader(io.StringIO(text))
            rows = list(reader)
            fields = [f for f in (reader.fieldnames or []) if f]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            missing = isinstance(exc, OSError)
            self.csv_problem = "not found next to the form" if missing else "not UTF-8 CSV"
            return None
        if value_col not in fields:
            self.csv_problem = f"has no '{value_col}' column"
            return None
        items = []
        for row in rows:
            item: dict[str, Any] = {"name": (row.get(value_col) or "").strip()}
            labels = {
                f.split("::", 1)[1]: row[f]
                for f in fields
                if f.startswith(f"{label_col}::") and row.get(f)
            }
            if labels and row.get(label_col):
                labels[str(self.data.get("default_language") or languages.DEFAULT)] = row[label_col]
            item["label"] = labels or row.get(label_col) or None
            for f in fields:
                if f != value_col and f != label_col and not f.startswith(f"{label_col}::"):
                    if row.get(f):
                        item[f] = row[f]
            items.append(item)
        stem = os.path.splitext(os.path.basename(file_name))[0]
        ours = self._add_list(stem, items)
        self.list_names[f"file:{file_name}"] = ours
        n = len(self.choices[ours])
        self.warn(
            CHOICES_LOADED,
            f"{n} choices read from '{file_name}' into choice list '{ours}' "
            "(exported back as an ordinary list)",
            q,
        )
        # value=/label= only make sense for a file; the exported select has a real list.
        node.pop("parameters", None)
        return ours

    def _external_list(self, q: dict, list_name: str) -> str | None:
        if self.external is None:
            language = str(self.data.get("default_language") or "default")
            self.external = pyx.external_choices(self.workbook, language)
        items = self.external.get(list_name)
        if not items:
            return None
        ours = self.list_names.get(f"external:{list_name}")
        if ours is None:
            ours = self._add_list(list_name, items)
            self.list_names[f"external:{list_name}"] = ours
        self.warn(
            CHOICES_LOADED,
            f"select_one_external: choices of '{list_name}' read from the external_choices "
            f"sheet into list '{ours}'",
            q,
        )
        return ours

    def _or_other(self, q: dict, nxt: dict) -> list[dict[str, Any]]:
        """pyxform adds an 'other' choice and a text question after `select_one x or_other`."""
        name = q["name"]
        relevant = (nxt.get("bind") or {}).get("relevant")
        if not (
            self._generated(nxt)
            and str(nxt.get("name")) == f"{name}_other"
            and relevant == f"selected(../{name}, 'other')"
        ):
            return []
        list_name = q["type"].split()[-1]
        for choice in self.choices.get(list_name, []):
            if choice["name"] == "other" and isinstance(choice.get("label"), dict):
                if set(choice["label"]) == {self.default_code}:
                    choice["label"] = self.every_language(choice["label"][self.default_code])
        other = {
            "name": f"{name}_other",
            "type": "text",
            "label": self.every_language(str(nxt.get("label") or "Specify other.")),
            "relevant": f"selected(${{{name}}}, 'other')",
        }
        self.rows[id(other)] = self.rows.get(id(q), 0)
        self.warn(
            OR_OTHER,
            f"or_other: choice 'other' added to list '{list_name}' and text question "
            f"'{name}_other' added after it",
            q,
        )
        return [other]

    # -- fields -----------------------------------------------------------------------------

    def _common(self, node: dict, q: dict, xls: dict, base: str) -> None:
        bind = _dict_at(node, "bind")
        control = _dict_at(node, "control")
        for key, value in (
            ("label", node.get("label")),
            ("hint", node.get("hint")),
            ("constraint_message", bind.get("jr:constraintMsg")),
            ("required_message", bind.get("jr:requiredMsg")),
        ):
            text = self.text(value)
            if text is not None:
                q[key] = text
        required = bind.get("required")
        if required not in (None, ""):
            flag = _flag(required)
            if flag is None:
                self.pending.append(_Pending(q, "required", str(required)))
            elif flag:
                q["required"] = True
        readonly = bind.get("readonly")
        if readonly not in (None, ""):
            flag = _flag(readonly)
            if flag is None:
                xls["read_only"] = str(readonly)
                self.warn(EXPRESSION, f"read_only expression not run: {readonly}", q)
            elif flag and base != "note":
                q["read_only"] = True
        if _flag(bind.get(SENSITIVE_BIND)):
            q["sensitive"] = True
        if _flag(bind.get(LOOKALIKES_BIND)) and base == "text":
            q["latin_lookalikes"] = True
        for key, value in (
            ("relevant", bind.get("relevant")),
            ("constraint", bind.get("constraint")),
            ("calculation", bind.get("calculate")),
            ("choice_filter", node.get("choice_filter")),
        ):
            if value not in (None, ""):
                self.pending.append(_Pending(q, key, str(value)))
        appearance = control.get("appearance")
        if appearance:
            q["appearance"] = str(appearance)
            self._check_appearance(q, base, str(appearance))
        self._default(node, q, xls, base)

    def _check_appearance(self, q: dict, base: str, appearance: str) -> None:
        words = appearance.split()
        if any(w.startswith("search(") for w in words):
            self.warn(APPEARANCE, f"appearance '{appearance}' reads choices from a CSV file", q)
        elif base == "date" and ({"month-year", "year"} & set(words)):
            self.warn(APPEARANCE, f"appearance '{appearance}': a full date is asked here", q)

    def _default(self, node: dict, q: dict, xls: dict, base: str) -> None:
        default = node.get("default")
        if default in (None, ""):
            return
        text = str(default)
        if pyx.default_is_dynamic(text, node.get("type")) or node.get("_dynamic_default"):
            xls["default"] = text
            self.warn(DEFAULT, f"dynamic default not run: {text}", q)
            return
        if base == "date" and re.fullmatch(r"\d{4}-\d{2}-\d{2} 00:00:00", text):
            text = text[:10]  # an Excel date cell
        # Typed as a volunteer types (`05.10.2026`, `40,53 72,80`): kept as the answer
        # would be stored, so the form (and an XLSForm exported from it) holds ISO dates
        # and decimal points. What does not read is kept as written, for validation.
        from yntymak_cli.forms.values import stored_text

        q["default"] = stored_text(base, text)

    def _container(self, node: dict, q: dict, counts: dict) -> None:
        children = [c for c in node.get("children") or [] if isinstance(c, dict)]
        generated = [c for c in children if self._generated(c)]
        header = [
            c
            for c in generated
            if str(c.get("name", "")).startswith("reserved_name_for_field_list_labels_")
        ]
        if header:  # pyxform rewrote a table-list group; put the author's version back
            note = next(
                (c for c in generated if str(c.get("name", "")).startswith("generated_table")),
                {},
            )
            for key in ("label", "hint"):
                text = self.text(note.get(key))
                if text is not None:
                    q[key] = text
            words = [w for w in str(q.get("appearance", "")).split() if w != "field-list"]
            q["appearance"] = " ".join(["table-list", *words])
            for child in children:
                control = child.get("control") or {}
                if control.get("appearance") == "list-nolabel" and not self._generated(child):
                    control.pop("appearance")
        count = (node.get("control") or {}).get("jr:count")
        if count:
            match = re.fullmatch(r"\$\{([^}]+)\}", str(count).strip())
            generated_count = counts.get(match.group(1)) if match else None
            if generated_count is not None:
                count = (generated_count.get("bind") or {}).get("calculate", count)
            self.pending.append(_Pending(q, "repeat_count", str(count)))
        q["questions"] = self._children(children)

    def _loop(self, node: dict, q: dict) -> list[dict[str, Any]]:
        """A legacy `begin loop over LIST`: one group per choice, as pyxform builds it."""
        q["type"] = "group"
        self._common(node, q, {}, "group")
        groups = []
        names = []
        for column in node.get("columns") or []:
            if not isinstance(column, dict) or column.get("name") in (None, "none"):
                continue
            col = str(column["name"])
            group: dict[str, Any] = {"name": col, "type": "group"}
            self.rows[id(group)] = self.rows[id(q)]
            label = self.text(column.get("label"))
            if label is not None:
                group["label"] = label
            children = []
            for child in node.get("children") or []:
                copy_ = _substitute(child, column)
                if copy_.get("name") == child.get("name"):
                    copy_["name"] = f"{child.get('name')}_{col}"
                names.append(str(copy_["name"]))
                children.append(copy_)
            group["questions"] = self._children(children)
            groups.append(_ordered(group))
        q["questions"] = groups
        self.warn(
            LOOP,
            f"loop over '{node.get('name')}' expanded into one group per choice; "
            f"questions named {', '.join(names[:6])}{', ...' if len(names) > 6 else ''}",
            q,
        )
        return [_ordered(q)]

    # -- columns kept as they were ------------------------------------------------------

    def _raw(self, node: dict) -> dict[str, Any]:
        if self.raw_rows is None or not self._marked(node):
            return {}
        index = self._row_of(node) - 2
        return self.raw_rows[index] if 0 <= index < len(self.raw_rows) else {}

    def _written_type(self, node: dict, type_text: str) -> str:
        """The type as the author wrote it (`image`, where pyxform says `photo`)."""
        for header, value in self._raw(node).items():
            if (self.headers.get(header) or (header,))[0] == "type" and value:
                written = " ".join(str(value).split())
                if pyx.type_alias(written) == type_text:
                    return written
        return type_text

    def _kept_columns(self, node: dict, q: dict, xls: dict) -> None:
        """Columns with no field here keep their header and text, and go back on export."""
        base = q.get("type", "").split()[0]
        for header, value in self._raw(node).items():
            tokens = self.headers.get(header) or (header,)
            if tokens[0] in _CONSUMED_FIRST or tuple(tokens[:2]) in _CONSUMED_PAIRS:
                continue
            if tokens[0] == "parameters" and (
                base in ("range", "image", "audio", "video", "file") or "parameters" not in node
            ):
                continue  # range and media parameters are fields; from-file ones were used up
            if value in (None, ""):
                continue
            xls[header] = str(value)
            self.kept.setdefault(header, []).append(self.rows.get(id(q), 0))

    def _warn_kept_columns(self) -> None:
        for header, rows in self.kept.items():
            shown = ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            self.warnings.append(
                XlsformWarning(
                    f"{self.file}: column '{header}' (row{'s' if len(rows) > 1 else ''} "
                    f"{shown}) is not used here; kept under xlsform: and exported back",
                    COLUMNS_KEPT,
                )
            )

    # -- names ------------------------------------------------------------------------------

    def _unique_names(self, questions: list[dict[str, Any]]) -> dict[str, str]:
        """Names are unique form-wide here (groups are flattened); rename later copies."""
        originals = {q["name"] for q in _walk(questions)}
        used: set[str] = set()
        first_in: dict[str, str] = {}
        renamed: dict[str, str] = {}  # names no expression could refer to as written
        for q, parents in _walk_with_parents(questions):
            name = q["name"]
            where = "/".join(p["name"] for p in parents) or "the top level"
            if not NAME_RE.match(name):
                new = _sanitise(name)
                self.warn(RENAMED, f"name is not valid here; renamed to '{new}'", q)
                renamed.setdefault(name, new)
                q["name"] = name = new
            if name in used:
                k = 2
                while f"{name}_{k}" in used or f"{name}_{k}" in originals:
                    k += 1
                new = f"{name}_{k}"
                self.warn(
                    RENAMED,
                    f"name already used in {first_in[name]}; renamed to '{new}' "
                    f"(references to ${{{name}}} mean the first one)",
                    q,
                )
                q["name"] = name = new
            used.add(name)
            first_in.setdefault(name, where)
        return renamed

    # -- expressions ----------------------------------------------------------------------

    def _expressions(self, questions: list[dict[str, Any]], renamed: dict[str, str]) -> None:
        index = {q["name"]: q for q in _walk(questions)}
        for q in _walk(questions):
            for key in ("label", "hint", "constraint_message", "required_message"):
                value = q.get(key)
                if renamed and isinstance(value, str):
                    q[key] = xex.rename_refs(value, renamed)
                elif renamed and isinstance(value, dict):
                    q[key] = {k: xex.rename_refs(v, renamed) for k, v in value.items()}

        def translate(item: _Pending) -> tuple[str, str | None]:
            result = xex.from_xlsform(xex.rename_refs(item.text, renamed), index)
            text = result.text
            return text, result.problem or self._reference_problem(
                item.question, item.key, text, index
            )

        # A calculate we cannot compute holds no value, so whatever uses it cannot run either.
        calculations = [p for p in self.pending if p.key == "calculation"]
        changed = True
        while changed:
            changed = False
            for item in calculations:
                q = item.question
                if q.get("type") == "calculate" and translate(item)[1]:
                    q["type"] = "unsupported"
                    q.setdefault("xlsform", {})["type"] = "calculate"
                    changed = True
        for item in self.pending:
            q, key, original = item.question, item.key, item.text
            if key == "choice_filter" and q.get("type") == "unsupported":
                q.setdefault("xlsform", {})[key] = original  # the type warning covers it
                continue
            text, problem = translate(item)
            if problem:
                q.setdefault("xlsform", {})[key] = original
                self.warn(EXPRESSION, f"{key} not run ({problem}): {original}", q)
            else:
                q[key] = text
        for q in _walk(questions):  # keys added late go back to their readable place
            _ordered(q)

    def _reference_problem(
        self, q: dict | None, key: str, text: str, index: dict[str, dict[str, Any]]
    ) -> str | None:
        expr = ex.parse(text)
        for ref in sorted(expr.refs()):
            target = index.get(ref)
            if target is None:
                return f"refers to unknown question ${{{ref}}}"
            base = str(target.get("type", "")).split()[0]
            if base == "unsupported":
                return f"refers to '{ref}', which is not asked here"
            if base not in VALUE_TYPES and base != "repeat":
                return f"refers to '{ref}', a {base} that holds no value"
        bare = expr.bare_names()
        if key == "choice_filter" and q is not None:
            list_name = str(q.get("type", "")).split()[-1]
            columns = {"name", "label"}
            for choice in self.choices.get(list_name, []):
                columns.update(choice)
            missing = sorted(bare - columns)
            if missing:
                return f"'{missing[0]}' is not a column of choice list '{list_name}'"
        elif bare:
            return f"bare name '{sorted(bare)[0]}'"
        return None

    # -- settings ---------------------------------------------------------------------------

    def _settings(
        self, renamed: dict[str, str], index: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        data = self.data
        raw_id = str(data.get("id_string") or self.path.stem)
        form_id = raw_id if NAME_RE.match(raw_id) else _sanitise(raw_id)
        if form_id != raw_id:
            self.warnings.append(
                XlsformWarning(
                    f"{self.file}: settings: form_id '{raw_id}' renamed to '{form_id}'", RENAMED
                )
            )
        form: dict[str, Any] = {"id": form_id, "version": str(data.get("version") or "1")}
        title = data.get("title")
        if title not in (None, "") and str(title) != raw_id:
            form["title"] = str(title)
        if self.multilingual and self.langs:
            form["languages"] = list(self.langs)
            if self.default_code in self.langs and self.default_code != languages.DEFAULT:
                form["default_language"] = self.default_code
        instance_name = data.get("instance_name")
        if instance_name not in (None, ""):
            result = xex.from_xlsform(xex.rename_refs(str(instance_name), renamed), index)
            problem = result.problem or self._reference_problem(
                None, "instance_name", result.text, index
            )
            if problem is None:
                form["instance_name"] = result.text
            else:
                self.warnings.append(
                    XlsformWarning(
                        f"{self.file}: settings: instance_name not used ({problem}): "
                        f"{instance_name}",
                        EXPRESSION,
                    )
                )
        summary = data.get(SUMMARY_SETTING)
        if summary not in (None, ""):
            summary = renamed.get(str(summary), str(summary))
            if summary in index:
                form["summary_by"] = summary
            else:
                self.warnings.append(
                    XlsformWarning(
                        f"{self.file}: settings: {SUMMARY_SETTING} names unknown question "
                        f"'{summary}'; not kept",
                        SETTINGS,
                    )
                )
        quality = self._quality(data, renamed, index)
        if quality:
            form["quality"] = quality
        dropped = []
        for key, value in data.items():
            if key in _KNOWN_SETTINGS or value in (None, "", {}, []):
                continue
            if key.startswith(QUALITY_SETTING):
                continue  # read by _quality, which warns itself
            if key == "namespaces" and str(value).strip() == NAMESPACE:
                continue
            dropped.append(key)
        if data.get("sms_keyword") not in (None, data.get("id_string")):
            dropped.append("sms_keyword")
        if dropped:
            self.warnings.append(
                XlsformWarning(
                    f"{self.file}: settings {', '.join(sorted(dropped))} have no meaning here "
                    "and are not kept",
                    SETTINGS,
                )
            )
        return form

    def _quality(self, data: dict[str, Any], renamed: dict[str, str], index: Any) -> dict[str, Any]:
        """The form's `quality:` block from its settings columns (our extension). A value
        that does not fit is left out, with a warning."""
        quality: dict[str, Any] = {}
        for key in (*_QUALITY_NUMBERS, *_QUALITY_NAMES):
            column = QUALITY_SETTING + key
            value = data.get(column)
            if value in (None, ""):
                continue
            text = str(value).strip()
            problem = None
            if key in _QUALITY_NUMBERS:
                try:
                    number = float(text.replace(",", "."))
                except ValueError:
                    number = math.nan
                least = 0.0 if key != "max_km_from_district" else math.ulp(0.0)
                if math.isfinite(number) and number >= least:
                    quality[key] = number
                else:
                    problem = "not a number above 0" if least else "not a number of 0 or more"
            else:
                names = [renamed.get(n, n) for n in text.split()]
                unknown = [n for n in names if n not in index]
                if unknown:
                    problem = f"unknown question '{unknown[0]}'"
                elif key == "district_by" and len(names) != 1:
                    problem = "names one question"
                else:
                    quality[key] = names if key == "duplicate_keys" else names[0]
            if problem:
                self.warnings.append(
                    XlsformWarning(
                        f"{self.file}: settings: {column}: {problem}; not kept: {text}",
                        SETTINGS,
                    )
                )
        return quality

    # -- final check ------------------------------------------------------------------------

    def _settle(self, form: dict[str, Any]) -> None:
        """Our validator has the last word: set aside whatever it rejects, with a warning."""
        from yntymak_cli.forms.loader import load_form_text

        for _ in range(10):
            loaded = load_form_text(dump_yaml(form), self.file)
            if loaded.ok:
                return
            moved = False
            for problem in loaded.errors:
                moved |= self._set_aside(form, loaded, problem)
            if not moved:
                break
        for problem in loaded.errors:
            self.warnings.append(
                XlsformWarning(
                    f"{self.file}: imported form still has a problem: {problem.message}", INVALID
                )
            )

    def _set_aside(self, form: dict[str, Any], loaded: Any, problem: Any) -> bool:
        for path, (line, _col) in loaded.positions.values.items():
            if (
                line != problem.line
                or not path
                or path[-1] not in (*SET_ASIDE_KEYS, "instance_name")
            ):
                continue
            node: Any = form
            try:
                for part in path[:-1]:
                    node = node[part]
            except (KeyError, IndexError, TypeError):
                continue
            if not isinstance(node, dict) or path[-1] not in node:
                continue
            value = node.pop(path[-1])
            if path == ("instance_name",):
                self.warnings.append(
                    XlsformWarning(
                        f"{self.file}: settings: instance_name not used: {problem.message}",
                        EXPRESSION,
                    )
                )
                return True
            node.setdefault("xlsform", {})[path[-1]] = (
                value if isinstance(value, str) else str(value)
            )
            if path[-1] == "calculation" and node.get("type") == "calculate":
                node["type"] = "unsupported"
                node["xlsform"]["type"] = "calculate"
            kind = DEFAULT if path[-1] == "default" else EXPRESSION
            self.warn(kind, f"{path[-1]} not used: {problem.message}", node)
            return True
        return False


def _walk(questions: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for q, _ in _walk_with_parents(questions):
        yield q


def _walk_with_parents(
    questions: list[dict[str, Any]], parents: tuple[dict[str, Any], ...] = ()
) -> Iterator[tuple[dict[str, Any], tuple[dict[str, Any], ...]]]:
    for q in questions:
        yield q, parents
        yield from _walk_with_parents(q.get("questions") or [], (*parents, q))


def _substitute(template: dict[str, Any], column: dict[str, Any]) -> dict[str, Any]:
    """pyxform's loop substitution: `%(label)s` / `%(name)s` in each text of a question."""
    label = column.get("label")
    by_lang = (
        {lang: {"name": column.get("name"), "label": text} for lang, text in label.items()}
        if isinstance(label, dict)
        else None
    )

    def fill(text: str, values: dict[str, Any]) -> str:
        try:
            return text % values
        except (KeyError, ValueError, TypeError):
            return text

    out = dict(template)
    for key, value in template.items():
        if key == ROW_KEY:
            continue
        if isinstance(value, str):
            out[key] = fill(value, column)
        elif isinstance(value, dict):
            out[key] = {
                k: fill(v, (by_lang or {}).get(k, column)) if isinstance(v, str) else v
                for k, v in value.items()
            }
    return out
