"""Stored answer values -> typed cell values (numbers, dates, text) shared by xlsx and CSV.

Each converter takes one stored value (see docs/design.md, "Values") and returns what
a spreadsheet cell should hold: int, float, str, datetime.date, datetime.datetime or
None. Converters never raise: a value that does not fit its question's type (an
older form version, a hand-edited record) is kept as text rather than dropped.
These run once per cell, so they are written for speed (class checks, no isinstance
chains on the common path).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

Converter = Callable[[Any], Any]

# Excel keeps 15 significant digits: longer integers (phone or ID numbers typed into an
# integer question) would lose their last digits, so they are written as text.
_BIG_INT = 10**15

# A value of a shape no question stores (a dict, nested lists: a hand-edited or foreign
# record) is written as its JSON text, cut to this many characters ending in "…" (the
# JSON export keeps it whole), with containers deeper than ODD_DEPTH_MAX shown as "…".
ODD_TEXT_MAX = 1000
ODD_DEPTH_MAX = 32
_SCALARS = (str, int, float, bool, type(None))

# Control characters XML 1.0 (and so xlsx) cannot hold; tab, LF and CR are fine.
ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
EXCEL_TEXT_MAX = 32767  # characters per cell


def xml_safe(text: str) -> str:
    """Text an xlsx cell can hold: control characters become U+FFFD, so the loss shows."""
    return ILLEGAL_XML.sub("\ufffd", text)


def plain(value: Any) -> Any:
    """Any stored value as a cell value, keeping numbers numbers and text text."""
    cls = value.__class__
    if value is None or cls is str:
        return value
    if cls is int:
        return value if -_BIG_INT < value < _BIG_INT else int_text(value)
    if cls is float:
        # NaN and infinities have no cell representation (value - value is NaN for them).
        return value if value - value == 0 else str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):  # int subclasses (IntEnum...)
        return plain(int(value))
    if isinstance(value, float):
        return plain(float(value))
    if isinstance(value, list | tuple):
        if all(isinstance(v, _SCALARS) for v in value):
            return " ".join(str(plain(v)) for v in value)
        return odd_text(value)
    if isinstance(value, dict):
        return odd_text(value)
    return str(value)


def int_text(value: int) -> str:
    """An int in decimal digits, however many (str() refuses more than 4,300)."""
    try:
        return str(value)
    except ValueError:
        import decimal

        return str(decimal.Decimal(value))  # exact, and not subject to that limit


def odd_text(value: Any) -> str:
    """The JSON text of a value no question stores, for one cell: never raises, never
    longer than ODD_TEXT_MAX characters, and starts with { or [ so it is never a formula."""
    text = json.dumps(json_safe(value, ODD_DEPTH_MAX), ensure_ascii=False)
    return text if len(text) <= ODD_TEXT_MAX else text[: ODD_TEXT_MAX - 1] + "…"


def json_safe(value: Any, depth: int) -> Any:
    """A copy of `value` that json.dumps encodes as valid JSON whatever it holds: ints
    too long for str() become digit strings, NaN and infinities the strings "nan" and
    "inf", other objects their str(), and containers nested deeper than `depth` "…"
    (which also bounds the recursion)."""
    cls = value.__class__
    if value is None or cls is str or cls is bool:
        return value
    if isinstance(value, int):
        return int(value) if value.bit_length() < 13_000 else int_text(value)  # ~3,900 digits
    if isinstance(value, float):
        return float(value) if value - value == 0 else str(value)
    if isinstance(value, dict | list | tuple):
        if depth <= 0:
            return "…"
        if isinstance(value, dict):
            return {str(k): json_safe(v, depth - 1) for k, v in value.items()}
        return [json_safe(v, depth - 1) for v in value]
    return str(value)


def to_date(value: Any) -> Any:
    """ "YYYY-MM-DD" -> date; anything else is kept (as text)."""
    if value.__class__ is str:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            return value
        # Excel's calendar starts in 1900; earlier dates would show as ####.
        return day if day.year >= 1900 else value
    return plain(value)


def to_datetime(value: Any) -> Any:
    """ISO 8601 -> naive datetime at the wall-clock time that was recorded.

    Excel has no time zones: an offset (or Z) is dropped, keeping the local time the
    device showed (or UTC for `Z` timestamps such as `_submission_time`).
    """
    if value.__class__ is str:
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if moment.year < 1900:
            return value
        return moment.replace(tzinfo=None) if moment.tzinfo else moment
    return plain(value)


def choice_label(labels: Mapping[str, str]) -> Converter:
    """select_one value -> its label (unknown names are kept as they are); also any text
    value to its translation (calculated yes/no, a status)."""

    def convert(value: Any) -> Any:
        if value.__class__ is str:
            return labels.get(value, value)
        return plain(value)

    return convert


def _selected(value: Any) -> Sequence[Any] | None:
    if value is None or value == "" or value == []:
        return None
    if value.__class__ is list:
        return value
    if isinstance(value, str):  # a space-separated list, as ODK stores it
        return value.split()
    if isinstance(value, tuple):
        return list(value)
    return [value]


# Labels hold spaces ("Land dispute"), so a cell of several is joined with "; " to stay
# readable and splittable; names (no spaces) are joined by spaces, as ODK stores them.
LABELS_SEPARATOR = "; "


def multi_joined(labels: Mapping[str, str] | None) -> Converter:
    """select_multiple value -> selected names joined by spaces (like Kobo), or labels
    joined by "; "."""

    def convert(value: Any) -> Any:
        selected = _selected(value)
        if selected is None:
            return None
        try:
            if labels is None:
                return " ".join(selected)
            return LABELS_SEPARATOR.join([labels.get(v, v) for v in selected])
        except TypeError:  # not all names: numbers joined as text, objects as JSON
            return plain(value)

    return convert


def multi_flags(choices: Iterable[str]) -> list[Converter]:
    """select_multiple value -> 1/0 for each choice; blank when nothing was answered.

    The converters share a one-entry cache of the selected names as a set, so a row
    costs one set, not a scan of the answer per choice (150,000 choices with thousands
    selected would take minutes).
    """
    last: list[Any] = [None, None]

    def chosen(value: Any) -> set[Any] | None:
        if value is last[0]:
            return last[1]
        selected = _selected(value)
        names = None if selected is None else {v for v in selected if v.__class__ is str}
        last[0], last[1] = value, names
        return names

    def flag(choice: str) -> Converter:
        def convert(value: Any) -> Any:
            names = chosen(value)
            return None if names is None else 1 if choice in names else 0

        return convert

    return [flag(choice) for choice in choices]


GEO_PARTS = ("latitude", "longitude", "altitude", "precision")


def geo_parts() -> list[Converter]:
    """geopoint "lat lon [alt acc]" -> its four numbers (blank when absent).

    The four converters share a one-entry cache, so each value is split once.
    """
    last: list[Any] = [None, (None, None, None, None)]

    def numbers(value: Any) -> tuple[Any, ...]:
        if value is last[0]:
            return last[1]
        parsed: list[Any] = []
        if value.__class__ is str:
            for part in value.split()[:4]:
                try:
                    number = float(part)
                except ValueError:
                    number = None
                parsed.append(number if number is not None and number - number == 0 else None)
        parsed += [None] * (4 - len(parsed))
        last[0], last[1] = value, tuple(parsed)
        return last[1]

    def part(index: int) -> Converter:
        return lambda value: numbers(value)[index]

    return [part(i) for i in range(4)]


def converter_for(base_type: str, labels: Mapping[str, str] | None) -> Converter:
    """The converter of a single-column question of this type.

    `labels` maps choice names to what to show (labels in a language), or is None to
    show choice names.
    """
    if base_type in ("date", "today"):
        return to_date
    if base_type == "datetime":
        return to_datetime
    # start/end: the text recorded, with its UTC offset (formpack's way): an Excel date
    # has no zone, and these say when and where in the day the interview happened.
    if base_type == "select_one" and labels is not None:
        return choice_label(labels)
    # text, numbers, time (kept as text), calculate, metadata: stored type as is.
    return plain
