"""Pure implementations of ODK XPath functions, matching JavaRosa (ODK Collect).

Callers convert XPath values first (``to_string``, ``to_number``, ``to_bool`` in
``forms.expressions``) and pass plain Python values; bad input raises ``InputError`` (a
``ValueError``) with an English message naming the function, which the caller turns into
its own error type. This module
imports only the standard library so the expression module can import it.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import math
import random
import re
import secrets
from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


class InputError(ValueError):
    """A value this function cannot take (the message names the function): a form or
    data problem, not a bug."""


# (min_args, max_args) as JavaRosa checks them; -1 means any number.
ARITY: dict[str, tuple[int, int]] = {
    "substring-before": (2, 2),
    "substring-after": (2, 2),
    "translate": (3, 3),
    "decimal-time": (1, 1),
    "checklist": (2, -1),
    "weighted-checklist": (2, -1),  # also needs an even count: min, max, then pairs
    "distance": (1, 1),
    "area": (1, 1),
    "enclosed-area": (1, 1),  # JavaRosa's older name for area()
    "digest": (2, 3),
    "base64-decode": (1, 1),
    "randomize": (1, 2),
    "random": (0, 0),
}

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def _java_trim(text: str) -> str:
    """Java's String.trim(): drops every char up to U+0020, not just whitespace."""
    return text.strip("".join(map(chr, range(33))))


def _java_cast(value: float, low: int, high: int) -> int:
    """Java's (int)/(long) cast of a double: NaN -> 0, out of range clamps, else truncates."""
    if math.isnan(value):
        return 0
    if value >= high:
        return high
    if value <= low:
        return low
    return int(value)


# --------------------------------------------------------------------------- strings


def substring_before(text: str, sep: str) -> str:
    """XPath 1.0: the part of ``text`` before the first ``sep``; '' if absent or ``sep`` is ''."""
    pos = text.find(sep)
    return text[:pos] if pos >= 0 else ""


def substring_after(text: str, sep: str) -> str:
    """XPath 1.0: the part of ``text`` after the first ``sep``; '' if absent,
    all of ``text`` if ``sep`` is ''."""
    pos = text.find(sep)
    return text[pos + len(sep) :] if pos >= 0 else ""


def translate(text: str, source: str, target: str) -> str:
    """XPath 1.0: each char of ``text`` found in ``source`` becomes the char at the same
    position in ``target``, or is dropped when ``target`` is shorter; first mapping wins."""
    table: dict[int, int | None] = {}
    for i, char in enumerate(source):
        table.setdefault(ord(char), ord(target[i]) if i < len(target) else None)
    return text.translate(table)


# --------------------------------------------------------------------------- time

_TIME_RE = re.compile(
    r"(?:(\d{4})-(\d{2})-(\d{2})T)?"  # a dateTime's date, which JavaRosa also accepts
    r"(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d+))?)?"
    r"(Z|([+-])(\d{2})(?::?(\d{2}))?)?"
)


def _offset(match: re.Match[str]) -> datetime.timezone | None:
    if match[8] is None:
        return None
    if match[8] == "Z":
        return datetime.timezone.utc
    hours, minutes = int(match[10]), int(match[11] or 0)
    if hours > 23 or minutes > 59:
        raise InputError(f"decimal-time(): '{match[0]}' has an invalid time zone offset")
    sign = -1 if match[9] == "-" else 1
    return datetime.timezone(sign * datetime.timedelta(hours=hours, minutes=minutes))


def _parse_time(text: str) -> datetime.datetime:
    """A time, dateTime or date string as a datetime; aware when the text has an offset."""
    match = _TIME_RE.fullmatch(text.strip()) or _TIME_RE.fullmatch(text.strip() + "T00:00")
    if match is None:
        raise InputError(f"decimal-time(): '{text}' is not a time")
    day = (int(match[1]), int(match[2]), int(match[3])) if match[1] else (1970, 1, 1)
    micro = int((match[7] or "0")[:6].ljust(6, "0"))
    try:  # 24:00, 06:60, 2026-02-30 and the like are refused, as JavaRosa's check() does
        return datetime.datetime(
            *day, int(match[4]), int(match[5]), int(match[6] or 0), micro, tzinfo=_offset(match)
        )
    except ValueError:
        raise InputError(f"decimal-time(): '{text}' is not a valid time") from None


def decimal_time(value: str | float, tz: datetime.tzinfo | None = None) -> float:
    """ODK decimal-time(): the time of day as a fraction of a day (noon -> 0.5).

    A time with an offset ('06:00:00.000-07:00') is first moved into ``tz``, the
    device's zone in ODK Collect; with ``tz=None`` the clock time as written is used,
    like the rest of this engine treats offsets. A number keeps its fractional part.
    Empty text or NaN gives NaN; unparseable text and out-of-range numbers raise.
    """
    if isinstance(value, str):
        if value.strip() == "":
            return math.nan  # JavaRosa returns '' here; NaN renders the same and stays a number
        moment = _parse_time(value)
        if tz is not None and moment.tzinfo is not None:
            moment = moment.astimezone(tz)
        since_midnight = moment - moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return since_midnight.total_seconds() / 86400
    if math.isnan(value):
        return math.nan
    if math.isinf(value) or not _INT_MIN <= value <= _INT_MAX:
        raise InputError(f"decimal-time(): {value} is out of range for a date")
    return value - math.floor(value)


# --------------------------------------------------------------------------- checklists


def checklist(min_count: float, max_count: float, *flags: bool) -> bool:
    """ODK checklist(): whether the number of true ``flags`` lies in [min, max];
    a negative bound means no bound. Bounds are truncated to integers as JavaRosa does."""
    low = _java_cast(min_count, _INT_MIN, _INT_MAX)
    high = _java_cast(max_count, _INT_MIN, _INT_MAX)
    count = sum(1 for flag in flags if flag)
    return (low < 0 or count >= low) and (high < 0 or count <= high)


def weighted_checklist(min_sum: float, max_sum: float, *pairs: bool | float) -> bool:
    """ODK weighted-checklist(min, max, flag1, weight1, ...): whether the summed weights
    of the true flags lie in [min, max]. Unlike checklist(), -1 is an ordinary bound."""
    if len(pairs) % 2:
        raise InputError("weighted-checklist() needs a weight after every true/false value")
    total = 0.0
    for flag, weight in zip(pairs[::2], pairs[1::2], strict=True):
        if flag:
            total += float(weight)
    return min_sum <= total <= max_sum


# --------------------------------------------------------------------------- geo

# JavaRosa's GeoUtils: a sphere with the equatorial radius, in metres.
EARTH_RADIUS_M = 6_378_100.0
_EARTH_CIRCUMFERENCE_M = 2 * EARTH_RADIUS_M * math.pi

# The grammar of Java's Double.parseDouble(), which reads each coordinate.
_JAVA_DOUBLE_RE = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+)[fFdD]?)"
)

LatLon = tuple[float, float]


def _java_double(token: str) -> float | None:
    text = _java_trim(token)
    if not _JAVA_DOUBLE_RE.fullmatch(text):
        return None
    if text[-1] in "fFdD":  # Java's float/double type suffix
        text = text[:-1]
    if "x" in text or "X" in text:
        return float.fromhex(text)
    return float(text)


def _not_gps(name: str, value: str) -> InputError:
    return InputError(
        f"{name}() received a value that does not represent GPS coordinates: '{value}'"
    )


def _geopoint(name: str, text: str) -> LatLon:
    """'lat lon [alt [acc]]'; missing parts are 0, so '' is (0, 0) as in JavaRosa."""
    tokens = [t for t in text.split(" ") if t]
    if len(tokens) > 4:
        raise _not_gps(name, text)
    parts = [0.0, 0.0]
    for i, token in enumerate(tokens[:2]):
        number = _java_double(token)
        if number is None:
            raise _not_gps(name, text)
        parts[i] = number
    if any(_java_double(t) is None for t in tokens[2:]):
        raise _not_gps(name, text)
    return parts[0], parts[1]


def _java_split_semicolons(text: str) -> list[str]:
    """Java's split(';'): trailing empty parts dropped, but '' alone stays ['']."""
    parts = text.split(";")
    if len(parts) > 1:
        while parts and parts[-1] == "":
            parts.pop()
    return parts


def _points(name: str, value: str | Sequence[str]) -> list[LatLon]:
    """One value is a geoshape/geotrace ('p1; p2; ...'); two or more are geopoints each."""
    items = [value] if isinstance(value, str) else list(value)
    if len(items) == 1:
        return [_geopoint(name, _java_trim(part)) for part in _java_split_semicolons(items[0])]
    return [_geopoint(name, item) for item in items]


def _segment_m(a: LatLon, b: LatLon) -> float:
    """Great-circle distance by the spherical law of cosines, as GeoUtils computes it."""
    phi1, phi2 = math.radians(a[0]), math.radians(b[0])
    cos_angle = math.sin(phi1) * math.sin(phi2) + math.cos(phi1) * math.cos(phi2) * math.cos(
        math.radians(a[1] - b[1])
    )
    # Clamped: for a repeated point rounding can give 1.0000000000000002, where Java's acos
    # returns NaN and blanks the whole distance; which points hit that depends on libm.
    return math.acos(max(-1.0, min(1.0, cos_angle))) * EARTH_RADIUS_M


def distance(value: str | Sequence[str]) -> float:
    """ODK distance(): metres along a geotrace/geoshape string, or along a list of
    geopoints (a nodeset in a repeat); fewer than two points give 0."""
    points = _points("distance", value)
    return sum((_segment_m(a, b) for a, b in zip(points[:-1], points[1:], strict=True)), 0.0)


def area(value: str | Sequence[str]) -> float:
    """ODK area(): square metres enclosed by a geoshape string or a list of geopoints,
    projected flat around the first point as GeoUtils does; fewer than three points give 0."""
    points = _points("area", value)
    if len(points) < 3:
        return 0.0
    lat0, lon0 = points[0]
    ys = [(lat - lat0) * _EARTH_CIRCUMFERENCE_M / 360.0 for lat, _ in points[1:]]
    xs = [
        (lon - lon0) * _EARTH_CIRCUMFERENCE_M * math.cos(math.radians(lat)) / 360.0
        for lat, lon in points[1:]
    ]
    total = 0.0
    for i in range(1, len(xs)):
        total += (ys[i - 1] * xs[i] - xs[i - 1] * ys[i]) / 2
    return abs(total)


# --------------------------------------------------------------------------- encodings

_DIGESTS = {
    "MD5": "md5",
    "SHA1": "sha1",
    "SHA256": "sha256",
    "SHA384": "sha384",
    "SHA512": "sha512",
}
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {ord(c): i for i, c in enumerate(_B64_ALPHABET)} | {ord("="): 0}


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")  # a lone surrogate becomes '?', as in Java


def digest(data: str, algorithm: str, encoding: str = "base64") -> str:
    """ODK digest(): the hash of ``data``'s UTF-8 bytes as base64 or lowercase hex.

    ``algorithm`` is MD5, SHA-1, SHA-256, SHA-384 or SHA-512, any case, dashes optional
    ('sha256' works too, as in JavaRosa); ``encoding`` is 'base64' or 'hex', any case.
    """
    name = _DIGESTS.get(algorithm.upper().replace("-", ""))
    if name is None:
        raise InputError(
            f"digest(): unsupported algorithm '{algorithm}'; use MD5, SHA-1, SHA-256, "
            "SHA-384 or SHA-512"
        )
    form = encoding.upper()
    if form not in ("BASE64", "HEX"):
        raise InputError(f"digest(): unsupported encoding '{encoding}'; use 'base64' or 'hex'")
    raw = hashlib.new(name, _utf8(data)).digest()
    # Standard padded base64 and lowercase hex are exactly what JavaRosa writes.
    return raw.hex() if form == "HEX" else base64.b64encode(raw).decode("ascii")


def _b64_length(data: bytes, valid: int) -> int:
    """Decoded length the way JavaRosa's decoder counts it: padding is every '=' in the
    run of 'A', '=' and non-alphabet bytes at the end (never the first byte)."""
    pad = 0
    for byte in reversed(data[1:]):
        if _B64_VALUE.get(byte, -1) > 0:
            break
        pad += byte == ord("=")
    return (valid * 6 >> 3) - pad


def base64_decode(text: str) -> str:
    """ODK base64-decode(): the UTF-8 text encoded in ``text``.

    As in JavaRosa, characters outside the base64 alphabet are skipped, a wrong
    length gives '', and bytes that are not UTF-8 become U+FFFD.
    """
    data = _utf8(text)
    values = [_B64_VALUE[b] for b in data if b in _B64_VALUE]
    if len(values) % 4:
        return ""
    length = _b64_length(data, len(values))
    if length < 0:  # only padding: JavaRosa fails with NegativeArraySizeException
        raise InputError(f"base64-decode(): '{text}' is not base64")
    out = bytearray()
    for k in range(0, len(values), 4):
        group = values[k] << 18 | values[k + 1] << 12 | values[k + 2] << 6 | values[k + 3]
        out += group.to_bytes(3, "big")
    return bytes(out[:length]).decode("utf-8", "replace")


# --------------------------------------------------------------------------- randomness

_PM_MODULUS = 2147483647  # 2**31 - 1
_PM_MULTIPLIER = 16807


def randomize_seed(seed: float) -> int:
    """The integer JavaRosa seeds with: the XPath number cast to a Java long
    (truncated toward zero, NaN -> 0, clamped at the long range)."""
    return _java_cast(seed, _LONG_MIN, _LONG_MAX)


def park_miller(seed: int) -> Iterator[float]:
    """JavaRosa's ParkMiller.nextDouble() stream for a long ``seed``, in [0, 1).

    JavaRosa works in doubles: the long becomes a double, is reduced with fmod,
    and a non-positive start is moved up by MODULUS - 1.
    """
    state = math.fmod(float(seed), _PM_MODULUS)
    if state <= 0:
        state += _PM_MODULUS - 1
    while True:
        state = math.fmod(state * _PM_MULTIPLIER, _PM_MODULUS)
        yield (int(state) - 1) / (_PM_MODULUS - 1)


def _fisher_yates(items: Sequence[T], doubles: Iterator[float]) -> list[T]:
    """JavaRosa's out-of-place ("inside-out") Fisher-Yates, driven by a stream of doubles."""
    out: list[T] = []
    for i, item in enumerate(items):
        j = int(next(doubles) * (i + 1))
        out.append(item)
        if j != i:
            out[i], out[j] = out[j], item
    return out


def _system_doubles() -> Iterator[float]:
    rng = random.SystemRandom()
    while True:
        yield rng.random()


def randomize(items: Sequence[T], seed: float | None = None) -> list[T]:
    """ODK randomize(): a shuffled copy of ``items``.

    With a seed (an XPath number) the order is exactly ODK Collect's for that seed:
    Park-Miller driving JavaRosa's Fisher-Yates. Without one it differs on every call.
    """
    if seed is None:
        return _fisher_yates(items, _system_doubles())
    return _fisher_yates(items, park_miller(randomize_seed(seed)))


def random_value(seed: str | None = None) -> float:
    """ODK random(): a float in [0, 1).

    ODK Collect draws a fresh number on every evaluation, so a calculation can change
    when it is recomputed. Passing a ``seed`` (say the submission's instanceID plus the
    question name) makes the value reproducible for that submission: it is taken from
    SHA-256 of the seed's UTF-8 bytes. Without a seed it comes from the OS's CSPRNG.
    """
    if seed is None:
        return secrets.randbits(53) / 2**53
    head = hashlib.sha256(_utf8(seed)).digest()[:8]
    return (int.from_bytes(head, "big") >> 11) / 2**53
