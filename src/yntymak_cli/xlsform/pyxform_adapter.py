"""The one module that touches pyxform: its reader, its intermediate dict and its tables.

pyxform's stable API is `convert()`. The importer also needs what pyxform keeps inside:
the workbook reader (DefinitionData), `workbook_to_json`'s intermediate dict, header
parsing, `aliases._type_alias_map`, `QUESTION_TYPE_DICT`. None of that is promised
between releases, so pyproject.toml pins the tested range (pyxform>=4,<5) and a new
pyxform is adapted here, not across the importer. pyxform is imported lazily: the CLI
starts without it.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from pathlib import Path
from typing import Any

# pyxform's select keywords (pyxform.constants), as the importer tells them apart.
SELECT_ONE = "select one"
SELECT_ALL_THAT_APPLY = "select all that apply"
SELECT_ONE_EXTERNAL = "select one external"
RANK = "rank"


def read_workbook(path: Path) -> Any:
    """The workbook as pyxform reads it (DefinitionData: survey rows, headers, sheets).

    Raises whatever pyxform raises for a file that is not an XLSForm; see error_text().
    """
    from pyxform.xls2json_backends import get_xlsform

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl chatter about Excel extensions
        return get_xlsform(xlsform=str(path))


def check_converts(workbook: Any) -> None:
    """Run pyxform's whole conversion: it decides whether the file is an XLSForm at all."""
    from pyxform.xls2xform import convert

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert(xlsform=_as_dict(copy.deepcopy(workbook)), validate=False)


def error_text(exc: BaseException) -> str:
    """pyxform's message on one line; other exceptions (its internals) also say their type."""
    from pyxform.errors import PyXFormError

    text = " ".join(str(exc).split())
    if not isinstance(exc, PyXFormError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:500] or type(exc).__name__


def survey_rows(workbook: Any) -> list[dict[str, Any]]:
    """The survey rows as written (index = spreadsheet row - 2)."""
    return list(workbook.survey or [])


def survey_headers(workbook: Any) -> list[str]:
    return list((workbook.survey_header or [{}])[0])


def intermediate_dict(workbook: Any, row_key: str | None = None) -> dict[str, Any]:
    """pyxform's intermediate JSON dict (`children`, `bind`, `control`, ...).

    With `row_key`, each non-empty survey row carries its spreadsheet row number under that
    key, which pyxform passes through to the row's element (a survey without rows has none
    to number). Raises whatever pyxform raises.
    """
    from pyxform.xls2json import workbook_to_json

    book = copy.deepcopy(workbook)
    if row_key is not None and book.survey and book.survey_header:
        book.survey = [
            {**row, row_key: str(i + 2)} if row else row for i, row in enumerate(book.survey)
        ]
        book.survey_header = [{**book.survey_header[0], row_key: None}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data: dict[str, Any] = workbook_to_json(
            workbook_dict=book, fallback_form_name=book.fallback_form_name, warnings=[]
        )
    return data


def header_tokens(header: str, double_colon: bool) -> tuple[str, ...]:
    """pyxform's reading of a survey header, e.g. `image::English` -> (media, image, ...)."""
    from pyxform import aliases
    from pyxform.parsing.sheet_headers import process_header
    from pyxform.question import MultipleChoiceQuestion

    columns = set(MultipleChoiceQuestion.get_slot_names())
    _, tokens = process_header(header, double_colon, aliases.survey_header, columns)
    return tuple(tokens)


def select_aliases() -> dict[str, str]:
    """Every way to write a select type (`select_one`, `select1`, ...) -> pyxform's keyword."""
    from pyxform import aliases

    out: dict[str, str] = dict(aliases.select)
    out.update({v: v for v in aliases.select.values()})
    return out


def type_alias(written: str) -> str | None:
    """The type pyxform reads `written` as (`image` -> `photo`), or None if not an alias."""
    from pyxform import aliases

    found = aliases._type_alias_map.get(written)
    return None if found is None else str(found)


def type_spec(type_text: str) -> dict[str, Any] | None:
    """pyxform's entry for a type name: its `bind` and `control` (QUESTION_TYPE_DICT)."""
    from pyxform.question_type_dictionary import QUESTION_TYPE_DICT

    spec = QUESTION_TYPE_DICT.get(type_text)
    return spec if isinstance(spec, dict) else None


def default_is_dynamic(text: str, type_text: Any) -> bool:
    """pyxform's test whether a default is an expression rather than a fixed value."""
    from pyxform.utils import default_is_dynamic as dynamic

    return bool(dynamic(text, type_text))


def parse_parameters(text: str, row: int) -> dict[str, Any]:
    """A `parameters` cell (`start=1 end=5`) as pyxform reads it."""
    from pyxform.parsing.parameters import parse

    return dict(parse(text, row))


def external_choices(workbook: Any, default_language: str) -> dict[str, list[dict[str, Any]]]:
    """The external_choices sheet, de-aliased like pyxform's choices: list name -> rows."""
    sheet = getattr(workbook, "external_choices", None)
    out: dict[str, list[dict[str, Any]]] = {}
    if not sheet:
        return out
    from pyxform import aliases, constants
    from pyxform.parsing.sheet_headers import dealias_and_group_headers
    from pyxform.question import Option

    grouped = dealias_and_group_headers(
        sheet_name=constants.EXTERNAL_CHOICES,
        sheet_data=copy.deepcopy(sheet),
        sheet_header=workbook.external_choices_header,
        header_aliases=aliases.list_header,
        header_columns=set(Option.get_slot_names()),
        default_language=default_language,
    )
    for row in grouped.data:
        row = dict(row)
        name = row.pop(constants.LIST_NAME_S, None)
        if name is not None:
            out.setdefault(str(name), []).append(row)
    return out


def _as_dict(workbook: Any) -> dict[str, Any]:
    """pyxform's DefinitionData as the dict `convert()` accepts (read the file only once)."""
    return {f.name: getattr(workbook, f.name) for f in dataclasses.fields(workbook)}
