"""Our form -> an XLSForm workbook (survey, choices, settings) that pyxform compiles.

Nested groups and repeats become begin/end rows again; texts go to `label::Kyrgyz (ky)`
style columns; whatever an import kept under `xlsform:` (original types, expressions we
could not run, extra columns) goes back to its column, so a partner's form comes back
as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yntymak_cli.forms.model import (
    EXPRESSION_KEYS,
    INPUT_TYPES,
    SELECT_TYPES,
    TRANSLATED_KEYS,
    Form,
    LangText,
    Question,
)
from yntymak_cli.xlsform import languages
from yntymak_cli.xlsform.importer import (
    KEEP_GPS_BIND,
    LOOKALIKES_BIND,
    MEDIA_COLUMNS,
    NAMESPACE,
    QUALITY_SETTING,
    QUESTION_COLUMNS,
    SENSITIVE_BIND,
    SUMMARY_SETTING,
)

# Survey columns in the order they are written; kept `xlsform:` columns follow.
_SURVEY_ORDER = (
    "type",
    "name",
    *QUESTION_COLUMNS,
    f"bind::{SENSITIVE_BIND}",
    f"bind::{LOOKALIKES_BIND}",
    "body::accept",
    f"bind::{KEEP_GPS_BIND}",
)
_SHOWN = INPUT_TYPES | SELECT_TYPES | {"note"}


def export_xlsform(form: Form, out: str | Path) -> list[str]:
    """Write `form` as an .xlsx XLSForm; returns warnings about what XLSForm cannot hold."""
    from openpyxl import Workbook

    writer = _Writer(form)
    survey = writer.survey_rows()
    choices = writer.choice_rows()
    settings = writer.settings_row()

    workbook = Workbook()
    _sheet(workbook.active, "survey", survey, _SURVEY_ORDER)
    if choices:
        _sheet(workbook.create_sheet(), "choices", choices, ("list_name", "name", "label"))
    _sheet(workbook.create_sheet(), "settings", [settings], ())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(out)
    return writer.warnings


def _sheet(ws: Any, title: str, rows: list[dict[str, str]], order: tuple[str, ...]) -> None:
    """One sheet; headers in `order` (by their part before '::'), then as first used."""
    ws.title = title
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    rank = {name: i for i, name in enumerate(order)}
    first_use = {h: i for i, h in enumerate(seen)}
    headers = sorted(
        seen, key=lambda h: (rank.get(h, rank.get(h.split("::")[0], len(rank))), first_use[h])
    )
    ws.append(headers)
    for row in rows:
        ws.append([row.get(h) for h in headers])


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class _Writer:
    def __init__(self, form: Form) -> None:
        self.form = form
        self.warnings: list[str] = []
        self.langs = list(form.languages) or self._languages_in_texts()
        self.sensitive = False

    def _languages_in_texts(self) -> list[str]:
        found: dict[str, None] = {}
        values: list[Any] = [self.form.title]
        for q, _ in self.form.walk():
            values.extend(getattr(q, key) for key in TRANSLATED_KEYS)
        for items in self.form.choices.values():
            values.extend(c.label for c in items)
        for value in values:
            if isinstance(value, dict):
                found.update(dict.fromkeys(value))
        return list(found)

    def texts(self, row: dict[str, str], column: str, value: LangText | None) -> None:
        if value is None:
            return
        if not self.langs:
            text = value if isinstance(value, str) else next(iter(value.values()), "")
            if text:
                row[column] = text
            return
        for lang in self.langs:
            # A plain text in a translated form reads the same in every language.
            shown = value if isinstance(value, str) else value.get(lang)
            if shown:
                row[f"{column}::{languages.column_name(lang)}"] = shown

    # -- survey -------------------------------------------------------------------------

    def survey_rows(self) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        for q in self.form.questions:
            self._emit(q, rows)
        return rows

    def _emit(self, q: Question, rows: list[dict[str, str]]) -> None:
        row = self._row(q)
        rows.append(row)
        if q.base_type in ("group", "repeat"):
            for child in q.questions:
                self._emit(child, rows)
            rows.append({"type": f"end_{q.base_type}"})

    def _row(self, q: Question) -> dict[str, str]:
        kept = dict(q.xlsform or {})
        base = q.base_type
        if base in ("group", "repeat"):
            type_text = f"begin_{base}"
        elif base == "unsupported":
            type_text = str(kept.get("type") or "text")
        else:
            type_text = q.type
        kept.pop("type", None)
        row: dict[str, str] = {"type": type_text, "name": q.name}
        for column in TRANSLATED_KEYS:
            self.texts(row, column, getattr(q, column))
        media = any(str(k).split("::")[0] in MEDIA_COLUMNS for k in kept)
        if base in _SHOWN and q.label is None and q.hint is None and not media:
            # pyxform refuses a question with nothing to show; ours may lack a label.
            self.texts(row, "label", q.name)
            self.warnings.append(f"question '{q.name}' has no label; its name is used")
        if isinstance(q.required, str):
            row["required"] = q.required
        elif q.required:
            row["required"] = "yes"
        if q.read_only:
            row["read_only"] = "yes"
        for key in EXPRESSION_KEYS:
            value = getattr(q, key)
            if value is not None:
                row[key] = value
        if q.default is not None:
            row["default"] = q.default
        if q.appearance:
            row["appearance"] = q.appearance
        if base == "range":
            params = q.parameters or {}
            # Ours default to 0..10 step 1, XLSForm's to 1..10: always write all three.
            row["parameters"] = " ".join(
                f"{k}={params.get(k, d)}" for k, d in (("start", "0"), ("end", "10"), ("step", "1"))
            )
        if q.accept is not None:
            row["body::accept"] = q.accept
        if q.max_pixels is not None:
            row["parameters"] = f"max-pixels={q.max_pixels}"
        if q.keep_gps:
            row[f"bind::{KEEP_GPS_BIND}"] = "true()"
            self.sensitive = True  # the yntymak: namespace declaration is needed
        if q.sensitive:
            row[f"bind::{SENSITIVE_BIND}"] = "true()"
            self.sensitive = True
        if q.latin_lookalikes:
            row[f"bind::{LOOKALIKES_BIND}"] = "true()"
            self.sensitive = True  # the same yntymak: namespace declaration is needed
        for header, value in kept.items():  # what an import kept: back to its column
            if value is None:
                continue
            if header == "parameters" and "parameters" in row:
                row["parameters"] += f" {_cell(value)}"
            elif header not in row:
                row[header] = _cell(value)
        return row

    # -- choices ------------------------------------------------------------------------

    def choice_rows(self) -> list[dict[str, str]]:
        rows = []
        for list_name, items in self.form.choices.items():
            for choice in items:
                row = {"list_name": list_name, "name": choice.name}
                self.texts(row, "label", choice.label)
                for column, value in choice.columns().items():
                    if value is not None:
                        row[column] = _cell(value)
                rows.append(row)
        return rows

    # -- settings -----------------------------------------------------------------------

    def settings_row(self) -> dict[str, str]:
        from yntymak_cli.forms.model import text_in

        form = self.form
        row: dict[str, str] = {"form_id": form.id, "version": form.version}
        if form.title is not None:
            lang = form.language
            row["form_title"] = text_in(form.title, lang)
            if isinstance(form.title, dict) and len(form.title) > 1:
                self.warnings.append(
                    f"form title exported in '{lang}' only: XLSForm titles are not translated"
                )
        if self.langs and form.default_language in self.langs:
            row["default_language"] = languages.column_name(form.default_language)
        if form.instance_name:
            row["instance_name"] = form.instance_name
        if self.sensitive:
            row["namespaces"] = NAMESPACE
        if form.summary_by:
            row[SUMMARY_SETTING] = form.summary_by
        if form.quality is not None:  # our extension: settings columns pyxform leaves alone
            for key, value in form.quality.model_dump(exclude_defaults=True).items():
                if isinstance(value, list):
                    text = " ".join(value)
                elif isinstance(value, float):
                    text = f"{value:g}"
                else:
                    text = str(value)
                row[QUALITY_SETTING + key] = text
        return row
