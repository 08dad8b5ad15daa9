"""Typed answer values: parsing what was typed (or written in an answers file) per question type.

Pure functions. Errors carry a catalog key so the survey can show them in ky/ru/en.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from yntymak_cli.forms.model import Form, Question
from yntymak_cli.i18n import t

_INT_RE = re.compile(r"^[+-]?\d+$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


class InvalidValue(ValueError):
    """A value that does not fit its question's type. `key` is a message-catalog id."""

    def __init__(self, key: str, **params: Any) -> None:
        self.key = key
        self.params = params
        super().__init__(t(key, "en", **params))

    def message(self, lang: str | None) -> str:
        return t(self.key, lang, **self.params)


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def parse_value(form: Form, q: Question, raw: Any) -> Any:
    """The stored value for `raw`, or None when empty; raises InvalidValue."""
    if is_empty(raw):
        return None
    base = q.base_type
    parser = _PARSERS.get(base)
    if parser is None:  # metadata, calculate, unsupported: kept as given
        return raw if isinstance(raw, int | float | str) and not isinstance(raw, bool) else str(raw)
    return parser(form, q, raw)


def _text(form: Form, q: Question, raw: Any) -> str:
    # A JSON integer is exact, so it is kept as its digits. A JSON float is not: NaN would be
    # stored as "nan", 1.10 as "1.1", 1e3 as "1000.0"; the volunteer quotes it. (YAML answers
    # files keep every scalar as written, so this only concerns JSON.)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, float):
        raise InvalidValue("text_not_number")
    if not isinstance(raw, str):
        raise InvalidValue("invalid_text")
    if not _encodable(raw):
        raise InvalidValue("invalid_unicode")
    return raw


def _encodable(text: str) -> bool:
    """False for a lone surrogate (JSON's "\\udcff"): no database or terminal can store it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _integer(form: Form, q: Question, raw: Any) -> int:
    if isinstance(raw, bool):
        raise InvalidValue("invalid_integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    text = str(raw).strip().replace(" ", "")
    if not _INT_RE.match(text):
        raise InvalidValue("invalid_integer")
    return int(text)


def _decimal(form: Form, q: Question, raw: Any) -> float:
    if isinstance(raw, bool):
        raise InvalidValue("invalid_decimal")
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        # Kyrgyz and Russian write a decimal comma; accept both.
        text = str(raw).strip().replace(" ", "").replace(",", ".")
        try:
            value = float(Decimal(text))
        except (InvalidOperation, ValueError):
            raise InvalidValue("invalid_decimal") from None
    if not math.isfinite(value):
        raise InvalidValue("invalid_decimal")
    return value


def _date(form: Form, q: Question, raw: Any) -> str:
    if isinstance(raw, dt.datetime):
        return raw.date().isoformat()
    if isinstance(raw, dt.date):
        return raw.isoformat()
    text = str(raw).strip()
    try:
        if len(text) != 10:
            raise ValueError
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise InvalidValue("invalid_date") from None


def _time(form: Form, q: Question, raw: Any) -> str:
    match = _TIME_RE.match(str(raw).strip())
    if not match:
        raise InvalidValue("invalid_time")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise InvalidValue("invalid_time")
    if match[3] is None:
        return f"{hour:02d}:{minute:02d}"
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def _datetime(form: Form, q: Question, raw: Any) -> str:
    if isinstance(raw, dt.datetime):
        return raw.isoformat(timespec="seconds")
    text = str(raw).strip().replace(" ", "T", 1)
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue("invalid_datetime") from None
    if len(text) < 16:  # a bare date is not a datetime
        raise InvalidValue("invalid_datetime")
    return value.isoformat(timespec="seconds")


def _geopoint(form: Form, q: Question, raw: Any) -> str:
    if isinstance(raw, list | tuple):
        parts = [str(p) for p in raw]
    else:
        parts = str(raw).replace(",", " ").split()
    if not 2 <= len(parts) <= 4:
        raise InvalidValue("invalid_geopoint")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise InvalidValue("invalid_geopoint") from None
    if not all(math.isfinite(n) for n in numbers):
        raise InvalidValue("invalid_geopoint")
    if not -90 <= numbers[0] <= 90:
        raise InvalidValue("invalid_latitude")
    if not -180 <= numbers[1] <= 180:
        raise InvalidValue("invalid_longitude")
    if len(numbers) == 4 and numbers[3] < 0:
        raise InvalidValue("invalid_accuracy")
    return " ".join(_num_text(n) for n in numbers)


def _num_text(n: float) -> str:
    return str(int(n)) if n.is_integer() else repr(n)


# An unknown choice's message lists the choices up to this many (a list may hold 100,000).
MAX_CHOICES_SHOWN = 20


def _choices_shown(form: Form, q: Question) -> str:
    names = form.choice_index(q.list_name)
    shown = ", ".join(itertools.islice(names, MAX_CHOICES_SHOWN))
    more = len(names) - MAX_CHOICES_SHOWN
    return f"{shown}, … (+{more})" if more > 0 else shown


def _select_one(form: Form, q: Question, raw: Any) -> str:
    if isinstance(raw, list | dict | bool):
        raise InvalidValue("invalid_choice", value=raw, choices=_choices_shown(form, q))
    value = str(raw)
    if value not in form.choice_index(q.list_name):
        raise InvalidValue("invalid_choice", value=value, choices=_choices_shown(form, q))
    return value


def _select_multiple(form: Form, q: Question, raw: Any) -> list[str] | None:
    if isinstance(raw, str):
        items = raw.split()
    elif isinstance(raw, list):
        items = raw
    else:
        raise InvalidValue("invalid_choices_list")
    names = form.choice_index(q.list_name)
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, list | dict | bool) or item is None:
            raise InvalidValue("invalid_choices_list")
        value = str(item)
        if value not in names:
            raise InvalidValue("invalid_choice", value=value, choices=_choices_shown(form, q))
        if value in seen:
            raise InvalidValue("duplicate_choice", value=value)
        seen.add(value)
        out.append(value)
    return out or None


def _acknowledge(form: Form, q: Question, raw: Any) -> str:
    if raw is True or str(raw).strip().lower() in {"ok", "yes", "true", "1"}:
        return "OK"
    raise InvalidValue("invalid_acknowledge")


def range_bounds(q: Question) -> tuple[float, float, float]:
    params = q.parameters or {}
    return (
        float(params.get("start", 0)),
        float(params.get("end", 10)),
        float(params.get("step", 1)),
    )


def range_is_integer(q: Question) -> bool:
    return all(v.is_integer() for v in range_bounds(q))


def _range(form: Form, q: Question, raw: Any) -> int | float:
    start, end, step = range_bounds(q)
    value = _decimal(form, q, raw)
    low, high = min(start, end), max(start, end)
    steps = (value - start) / step
    shown = {"start": _num_text(start), "end": _num_text(end), "step": _num_text(step)}
    if not (low <= value <= high) or abs(steps - round(steps)) > 1e-9:
        raise InvalidValue("invalid_range", **shown)
    return int(value) if range_is_integer(q) else value


_PARSERS = {
    "text": _text,
    "integer": _integer,
    "decimal": _decimal,
    "date": _date,
    "time": _time,
    "datetime": _datetime,
    "geopoint": _geopoint,
    "select_one": _select_one,
    "select_multiple": _select_multiple,
    "acknowledge": _acknowledge,
    "range": _range,
}
