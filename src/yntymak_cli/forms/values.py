"""Typed answer values: parsing what was typed (or written in an answers file) per question type.

Pure functions. Errors carry a catalog key so the survey can show them in ky/ru/en.
Numbers, dates and times are read by one rule wherever they are typed (prompts, answers
files, defaults): see `read_numbers`, `read_number` and `read_date`. Stored values are
always ISO dates and times and numbers with a decimal point.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from yntymak_cli.forms.geo import GEOMETRY_TYPES, POINT_SEPARATOR
from yntymak_cli.forms.model import Form, Question
from yntymak_cli.i18n import t
from yntymak_cli.limits import MAX_GEO_POINTS, MAX_INT, MAX_TEXT_CHARS, MIN_INT

_INT_RE = re.compile(r"^[+-]?\d+$")
# 14:30, 14.30, 14:30:15 or 14.30.15 (one separator throughout).
_TIME_RE = re.compile(r"^(\d{1,2})([:.])(\d{2})(?:\2(\d{2}))?$")
# A date as ISO writes it (checked before fromisoformat, which also takes "2026-W01-1").
_ISO_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
# The local form: DD.MM.YYYY or D.M.YYYY.
_LOCAL_DATE_RE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
# A date and a time typed with a space (or ISO's T) between them, without an offset.
_DATE_TIME_RE = re.compile(r"^(\S+?)(?:\s+|T)(\d{1,2}[:.]\S*)$")

# One number: a sign, digits and at most one decimal mark (a point, or a comma between digits).
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:[.,]\d+)?|\.\d+)$")
# Spaces grouping thousands in one number: "1 234 567,5" (also the no-break spaces a
# spreadsheet in a Russian locale writes).
_GROUPED_RE = re.compile(r"^[+-]?\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d+)?$")
# What stands between the numbers of a geopoint: ";", a comma that is not between two
# digits, or whitespace.
_SEPARATOR_RE = re.compile(r"\s*(?:;|(?<!\d),|,(?!\d))\s*|\s+")
_DIGIT_COMMA_RE = re.compile(r"\d,\d")
# A comma, with any spaces around it: how `40.53,72.80` is split when every part holds a point.
_COMMA_RE = re.compile(r"\s*,\s*")
# The altitude and accuracy of a geopoint that may be one altitude grouped in thousands
# (`1 200`): 1-3 digits (not starting with 0), then exactly 3 digits, no decimal mark.
_THOUSANDS_HEAD_RE = re.compile(r"^[1-9]\d{0,2}$")
_THOUSANDS_GROUP_RE = re.compile(r"^\d{3}$")
# The highest altitude a typed `1 200` is taken for (Pobeda peak is 7439 m).
_MAX_GROUPED_ALTITUDE = 9000


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
    if len(raw) > MAX_TEXT_CHARS:  # HQ refuses longer answers (limits.py)
        raise InvalidValue("text_too_long", limit=f"{MAX_TEXT_CHARS:,}")
    if q.latin_lookalikes:
        return raw.translate(LATIN_LOOKALIKES)
    return raw


# Cyrillic letters drawn like Latin ones: on a Cyrillic keyboard a volunteer types `Р-017`
# for `P-017` and cannot see the difference. Questions with `latin_lookalikes: true` (ID codes)
# get the Latin letter, so the constraint checks and the stored value are the intended code.
LATIN_LOOKALIKES = str.maketrans(
    "АВЕКМНОРСТУХавекмнорстух",
    "ABEKMHOPCTYXabekmhopctyx",
)


def _encodable(text: str) -> bool:
    """False for a lone surrogate (JSON's "\\udcff"): no database or terminal can store it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class UnreadableNumbers(ValueError):
    """Text that is not numbers by the rule of `read_numbers`. `ambiguous` when a comma in
    it could be read two ways (the message then says how to write it)."""

    def __init__(self, text: str, ambiguous: bool) -> None:
        super().__init__(text)
        self.ambiguous = ambiguous


def read_numbers(text: str) -> list[Decimal]:
    """The numbers typed in `text`. One rule for every number a volunteer or a form writes
    (prompts, `--answers` files, form and XLSForm defaults), so that a decimal comma is
    never read as a separator and no answer is stored as something else than was meant:

    * A number is an optional sign, digits, and at most one decimal mark: a point, or a
      comma between two digits (the decimal comma of Kyrgyz and Russian). `40,53` is
      40.53, exactly as `40.53` is. No exponents, no `nan` or `inf`.
    * Numbers are separated by whitespace, by `;`, or by a comma that is not between two
      digits (`40.53, 72.80`), with any spaces around it. A comma between two digits never
      separates numbers.
    * One text uses one kind of separator: `40, 53 72, 80` (commas and spaces) is refused.
    * Except: when every part between commas already holds a decimal point, the commas
      can only separate the numbers: `40.53,72.80` is 40.53 and 72.8, as pasted from a
      map. If any part lacks a point the rule above holds: `40.53,72.80,1200,5` is refused.
    * What this rule cannot split into numbers is refused, as ambiguous when a comma
      between two digits is involved: `40,53,72,80` (four integers? two decimals?),
      `40,53,72.80` and `1.234,5` are refused, not guessed.
    * Integers separated only by commas (`40, 53, 72, 80`) are refused as ambiguous too:
      they are what `40,53 72,80` turns into when its decimal commas are taken for
      separators. Separated by spaces (`40 53 72 80`) they are read as written.

    So `40,53 72,80`, `40,53; 72,80`, `40.53, 72.80`, `40.53,72.80` and `40.53 72.80` are
    the same two numbers, 40.53 and 72.8. Where one number is asked for, see `read_number`
    for the spaces that group thousands; for a geopoint's altitude typed with one, see
    `_altitude_grouped`. Raises UnreadableNumbers.
    """
    stripped = text.strip()
    pointed = _COMMA_RE.split(stripped)
    if len(pointed) > 1 and all(_NUMBER_RE.match(p) and "." in p for p in pointed):
        return [Decimal(part) for part in pointed]
    parts = _SEPARATOR_RE.split(stripped)
    kinds = {m.group().strip() or " " for m in _SEPARATOR_RE.finditer(stripped)}
    ambiguous = bool(_DIGIT_COMMA_RE.search(stripped))
    if len(kinds) > 1:
        raise UnreadableNumbers(text, ambiguous=True)
    if not all(_NUMBER_RE.match(part) for part in parts):
        raise UnreadableNumbers(text, ambiguous=ambiguous)
    if kinds == {","} and not any(mark in part for part in parts for mark in ".,"):
        raise UnreadableNumbers(text, ambiguous=True)
    return [Decimal(part.replace(",", ".")) for part in parts]


def read_number(text: str) -> Decimal:
    """One number by the rule of `read_numbers`; spaces (also no-break spaces) may group
    thousands in groups of exactly three digits (`1 234 567,5`). Any other space means
    several numbers, so `12 5` is refused, not read as 125. A comma is never a thousands
    separator: `1,234` is 1.234. Raises UnreadableNumbers."""
    stripped = text.strip()
    if _GROUPED_RE.match(stripped):
        stripped = re.sub(r"[ \u00a0\u202f]", "", stripped)
    numbers = read_numbers(stripped)
    if len(numbers) != 1:
        raise UnreadableNumbers(text, ambiguous=True)
    return numbers[0]


def _integer(raw: Any) -> int:
    if isinstance(raw, bool):
        raise InvalidValue("invalid_integer")
    if isinstance(raw, int):
        return _in_range(raw)
    if isinstance(raw, float) and raw.is_integer():
        return _in_range(int(raw))
    text = str(raw).strip()
    if _GROUPED_RE.match(text):  # "1 234", as for decimals (read_number)
        text = re.sub(r"[ \u00a0\u202f]", "", text)
    if not _INT_RE.match(text):
        raise InvalidValue("invalid_integer")
    if len(text.lstrip("+-0")) > 19:  # beyond 64 bits; and int() of 5000 digits raises
        raise InvalidValue("integer_out_of_range")
    return _in_range(int(text))


def _in_range(value: int) -> int:
    # HQ refuses integers beyond 64 bits (limits.py): never store one it would refuse.
    if not MIN_INT <= value <= MAX_INT:
        raise InvalidValue("integer_out_of_range")
    return value


def _decimal(raw: Any) -> float:
    if isinstance(raw, bool):
        raise InvalidValue("invalid_decimal")
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        try:
            value = float(read_number(str(raw)))
        except UnreadableNumbers as exc:
            raise InvalidValue("ambiguous_number" if exc.ambiguous else "invalid_decimal") from None
    if not math.isfinite(value):
        raise InvalidValue("invalid_decimal")
    return value


def read_date(text: str) -> dt.date:
    """A date typed as ISO `YYYY-MM-DD` or in the local form `DD.MM.YYYY` / `D.M.YYYY`
    (day first, as Kyrgyz and Russian write it). Raises ValueError."""
    text = text.strip()
    if match := _ISO_DATE_RE.match(text):
        year, month, day = match[1], match[2], match[3]
    elif match := _LOCAL_DATE_RE.match(text):
        day, month, year = match[1], match[2], match[3]
    else:
        raise ValueError(text)
    return dt.date(int(year), int(month), int(day))


def _read_time(text: str) -> tuple[int, int, int | None]:
    """(hour, minute, second or None) of `14:30`, `14.30`, `14:30:15` or `14.30.15`."""
    match = _TIME_RE.match(text.strip())
    if not match:
        raise ValueError(text)
    hour, minute, second = int(match[1]), int(match[3]), match[4]
    if hour > 23 or minute > 59 or (second is not None and int(second) > 59):
        raise ValueError(text)
    return hour, minute, None if second is None else int(second)


def _date(raw: Any) -> str:
    if isinstance(raw, dt.datetime):
        return raw.date().isoformat()
    if isinstance(raw, dt.date):
        return raw.isoformat()
    try:
        return read_date(str(raw)).isoformat()
    except ValueError:
        raise InvalidValue("invalid_date") from None


def _time(raw: Any) -> str:
    try:
        hour, minute, second = _read_time(str(raw))
    except ValueError:
        raise InvalidValue("invalid_time") from None
    if second is None:
        return f"{hour:02d}:{minute:02d}"
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def _datetime(raw: Any) -> str:
    if isinstance(raw, dt.datetime):
        return raw.isoformat(timespec="seconds")
    text = str(raw).strip()
    # A date and a time as typed (`31.12.2026 14.30`, `2026-12-31 14:30`), no offset...
    if local := _DATE_TIME_RE.match(text):
        try:
            day = read_date(local[1])
            hour, minute, second = _read_time(local[2])
        except ValueError:
            pass
        else:
            moment = dt.datetime.combine(day, dt.time(hour, minute, second or 0))
            return moment.isoformat(timespec="seconds")
    # ...or ISO 8601 with seconds, fractions or an offset.
    text = text.replace(" ", "T", 1)
    if len(text) < 16 or not _ISO_DATE_RE.match(text[:10]):  # a bare date is not a datetime
        raise InvalidValue("invalid_datetime")
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue("invalid_datetime") from None
    return value.isoformat(timespec="seconds")


def _geopoint_number(item: Any) -> float:
    """One number of a geopoint given as a list (`[40.53, 72.8]` in an answers file)."""
    if isinstance(item, int | float) and not isinstance(item, bool):
        return float(item)
    if not isinstance(item, str):
        raise InvalidValue("invalid_geopoint")
    try:
        return float(read_number(item))
    except UnreadableNumbers as exc:
        raise _geopoint_refused(exc) from None


def _geopoint_refused(exc: UnreadableNumbers) -> InvalidValue:
    return InvalidValue("ambiguous_geopoint" if exc.ambiguous else "invalid_geopoint")


def _altitude_grouped(text: str) -> bool:
    """Whether the altitude and accuracy of a geopoint separated by whitespace may be one
    altitude grouped in thousands: `40,53 72,80 1 200` is altitude 1 and accuracy 200, or
    altitude 1200 typed as `read_number` takes it. Refused rather than guessed, whatever the
    decimal mark; `850 100` (850100 m) and `1200 5` are no such altitude and stay read."""
    parts = text.split()
    if len(parts) not in (4, 5) or not all(_NUMBER_RE.match(part) for part in parts):
        return False  # also when ";" or commas separate the numbers: then each is as written
    head, group = parts[2], parts[3]
    return (
        bool(_THOUSANDS_HEAD_RE.match(head) and _THOUSANDS_GROUP_RE.match(group))
        and int(head + group) <= _MAX_GROUPED_ALTITUDE
    )


def _geopoint(raw: Any) -> str:
    if isinstance(raw, list | tuple):
        numbers = [_geopoint_number(item) for item in raw]
        ambiguous = False
    else:
        text = str(raw)
        ambiguous = bool(_DIGIT_COMMA_RE.search(text))
        try:
            numbers = [float(n) for n in read_numbers(text)]
        except UnreadableNumbers as exc:
            raise _geopoint_refused(exc) from None
        if _altitude_grouped(text):
            raise InvalidValue("ambiguous_altitude")
    if not 2 <= len(numbers) <= 4:
        # `40,72` is one number, 40.72; maybe latitude 40 and longitude 72 were meant.
        raise InvalidValue("ambiguous_geopoint" if ambiguous else "invalid_geopoint")
    if not all(math.isfinite(n) for n in numbers):
        raise InvalidValue("invalid_geopoint")
    if not -90 <= numbers[0] <= 90:
        raise InvalidValue("invalid_latitude")
    if not -180 <= numbers[1] <= 180:
        raise InvalidValue("invalid_longitude")
    if len(numbers) == 4 and numbers[3] < 0:
        raise InvalidValue("invalid_accuracy")
    return " ".join(_coordinate_text(n) for n in numbers)


def _num_text(n: float) -> str:
    return str(int(n)) if n.is_integer() else repr(n)


def _coordinate_text(n: float) -> str:
    """A number of a point without an exponent (0.00001, not repr's 1e-05), so the stored
    text reads back by `read_numbers`: shown again as the prompt's default, or a geoshape
    answer copied from an export into an answers file."""
    text = _num_text(n)
    return format(Decimal(text), "f") if "e" in text else text


class InvalidPoint(InvalidValue):
    """A point of a geotrace or geoshape that is not a geopoint: "point 3: <why>"."""

    def __init__(self, n: int, reason: InvalidValue) -> None:
        super().__init__("invalid_geo_point", n=n, detail=reason.message("en"))
        self.n, self.reason = n, reason

    def message(self, lang: str | None) -> str:
        return t(self.key, lang, n=self.n, detail=self.reason.message(lang))


@dataclass(frozen=True)
class GeoLine:
    """A geotrace or geoshape as read from what was typed: its stored text, and whether
    the shape was closed here (its last point omitted, so the first one was added)."""

    text: str
    closed_here: bool = False


def _line_point(n: int, item: Any, key: str) -> str:
    """Point `n` (1-based) of a geotrace/geoshape: text "lat lon", or a list of numbers."""
    if not isinstance(item, str | list | tuple) or (
        isinstance(item, str) and POINT_SEPARATOR in item
    ):
        # [40.5, 72.8] (one point, not a list of points), or "40 72; 41 73" as one item
        raise InvalidValue(key)
    try:
        return _geopoint(item)
    except InvalidValue as exc:
        raise InvalidPoint(n, exc) from None


def read_geo_line(base_type: str, raw: Any) -> GeoLine:
    """A geotrace or geoshape: `lat lon[ alt acc]; lat lon; …` (XLSForm's text; each point
    read as a geopoint is, decimal commas included, so a comma never separates points), a
    list of points (each "lat lon" or a list of numbers), or the GeoJSON geometry the JSON
    export writes (a LineString, a Polygon of one ring). A trace needs 2 points, a shape
    3 distinct ones and is closed: when its last point is not its first, the first is added
    (`closed_here`). Stored as the points joined by ";" (ODK Collect's way; forms/geo.py).
    Raises InvalidValue."""
    shape = base_type == "geoshape"
    key = "invalid_geoshape" if shape else "invalid_geotrace"
    if isinstance(raw, dict):
        items: list[Any] = _geojson_points(base_type, raw)
    elif isinstance(raw, list | tuple):
        items = list(raw)
    elif isinstance(raw, str):
        if len(raw) > MAX_TEXT_CHARS:
            raise InvalidValue("text_too_long", limit=f"{MAX_TEXT_CHARS:,}")
        items = raw.split(POINT_SEPARATOR)
        if len(items) > 1 and not items[-1].strip():
            items.pop()  # "p1; p2;": ODK's functions take a trailing ";" too
    else:
        raise InvalidValue(key)
    if len(items) > MAX_GEO_POINTS:
        raise InvalidValue("too_many_points", limit=f"{MAX_GEO_POINTS:,}")
    points = [_line_point(n, item, key) for n, item in enumerate(items, start=1)]
    if not shape:
        if len(points) < 2:
            raise InvalidValue("geotrace_too_few")
        return GeoLine(POINT_SEPARATOR.join(points))
    closed = len(points) > 1 and points[0] == points[-1]
    corners = points[:-1] if closed else points
    if len({tuple(p.split()[:2]) for p in corners}) < 3:
        raise InvalidValue("geoshape_too_few")
    if not closed:
        points.append(points[0])
        if len(points) > MAX_GEO_POINTS:
            raise InvalidValue("too_many_points", limit=f"{MAX_GEO_POINTS:,}")
    return GeoLine(POINT_SEPARATOR.join(points), closed_here=not closed)


_GEOJSON_KEYS = frozenset({"type", "coordinates", "accuracy", "bbox"})


def _geojson_points(base_type: str, raw: dict[str, Any]) -> list[Any]:
    """The points of a GeoJSON LineString (geotrace) or one-ring Polygon (geoshape), as
    forms.geo.to_geometry(exact=True) writes them: [lat, lon(, alt(, acc))] lists for
    `_line_point`. Positions are [lon, lat(, alt)]; `accuracy` (optional) holds a number or
    null per point. Bounded before anything is walked."""
    kind = GEOMETRY_TYPES[base_type]
    refused = InvalidValue("invalid_geojson_line", kind=kind)
    coordinates = raw.get("coordinates")
    if (
        raw.get("type") != kind
        or not _GEOJSON_KEYS.issuperset(raw)
        or not isinstance(coordinates, list)
    ):
        raise refused
    if kind == "Polygon":
        if len(coordinates) != 1 or not isinstance(coordinates[0], list):
            raise refused  # holes (more rings) cannot be an XLSForm geoshape
        coordinates = coordinates[0]
    if len(coordinates) > MAX_GEO_POINTS:
        raise InvalidValue("too_many_points", limit=f"{MAX_GEO_POINTS:,}")
    accuracy = raw.get("accuracy")
    if accuracy is not None and (
        not isinstance(accuracy, list) or len(accuracy) != len(coordinates)
    ):
        raise refused
    points: list[Any] = []
    for n, position in enumerate(coordinates):
        if not isinstance(position, list) or not 2 <= len(position) <= 3:
            raise refused
        point = [position[1], position[0], *position[2:]]
        acc = accuracy[n] if accuracy is not None else None
        if acc is not None:
            if len(position) < 3:
                raise refused  # an accuracy is stored after an altitude
            point.append(acc)
        points.append(point)
    return points


def _geo_line(base_type: str) -> Callable[[Any], str]:
    return lambda raw: read_geo_line(base_type, raw).text


# An unknown choice's message lists the choices up to this many (a list may hold 100,000).
MAX_CHOICES_SHOWN = 20


def _choices_shown(form: Form, q: Question) -> str:
    return names_shown(list(form.choice_index(q.list_name)))


def names_shown(names: list[str]) -> str:
    """Choice names for a message, the first MAX_CHOICES_SHOWN and how many more."""
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
    value = _decimal(raw)
    low, high = min(start, end), max(start, end)
    steps = (value - start) / step
    shown = {"start": _num_text(start), "end": _num_text(end), "step": _num_text(step)}
    if not (low <= value <= high) or abs(steps - round(steps)) > 1e-9:
        raise InvalidValue("invalid_range", **shown)
    return int(value) if range_is_integer(q) else value


# The types whose values are read from the text alone, the form aside: numbers, dates,
# times, points and lines of points (see read_numbers, read_date and read_geo_line).
_READERS: dict[str, Callable[[Any], Any]] = {
    "integer": _integer,
    "decimal": _decimal,
    "date": _date,
    "time": _time,
    "datetime": _datetime,
    "geopoint": _geopoint,
    "geotrace": _geo_line("geotrace"),
    "geoshape": _geo_line("geoshape"),
}


def stored_text(base_type: str, text: str) -> str:
    """`text` as an answer of `base_type` is stored (`05.10.2026` -> `2026-10-05`,
    `40,53 72,80` -> `40.53 72.8`), for a default imported from an XLSForm; `text`
    unchanged for other types or when it is not such a value (validation says why)."""
    reader = _READERS.get(base_type)
    if reader is None:
        return text
    try:
        value = reader(text)
    except InvalidValue:
        return text
    return _num_text(value) if isinstance(value, float) else str(value)


def _media(form: Form, q: Question, raw: Any) -> str:
    """A media answer as stored (`NAME sha256:HEX`). A path given in an answers file or at
    the prompt is turned into this by collect/media.py (it reads and stores the file)
    before the engine sees it; the engine never touches files."""
    from yntymak_cli.forms.media import parse_ref

    ref = parse_ref(raw)
    if ref is None:
        raise InvalidValue("media_not_stored")
    return ref.text


def _form_free(reader: Callable[[Any], Any]) -> Callable[[Form, Question, Any], Any]:
    return lambda form, q, raw: reader(raw)


_PARSERS: dict[str, Callable[[Form, Question, Any], Any]] = {
    "text": _text,
    **{base: _form_free(reader) for base, reader in _READERS.items()},
    "select_one": _select_one,
    "select_multiple": _select_multiple,
    "acknowledge": _acknowledge,
    "range": _range,
    **dict.fromkeys(("image", "audio", "video", "file"), _media),
}
