"""Stored geo answers (geopoint, geotrace, geoshape): their canonical text, read back.

A geopoint is stored as `lat lon[ alt[ acc]]`, its numbers as decimals without an
exponent (`40.53 72.8`, `0.00001`; values stored before 2026-11-30 may hold one, `1e-05`,
and still read). A geotrace or geoshape is its points in that form joined by `;`
without spaces, as ODK Collect writes them (`40.53 72.8;40.54 72.81`); a geoshape's last
point repeats its first (closed). forms/values.py makes that text from what was typed;
this module reads it back strictly (HQ checks what a device sends with it, the GeoJSON
and JSON exports turn it into geometry), so a value that does not read is refused, never
guessed. Pure functions.
"""

from __future__ import annotations

import math
import re
from typing import Any

from yntymak_cli.i18n import t
from yntymak_cli.limits import MAX_GEO_POINTS, MAX_TEXT_CHARS

GEO_TYPES = frozenset({"geopoint", "geotrace", "geoshape"})
LINE_TYPES = frozenset({"geotrace", "geoshape"})  # answers holding several points
POINT_SEPARATOR = ";"  # between the points of a stored geotrace/geoshape (ODK's)

# A number as repr(float) writes it, or an integer: no spaces, signs other than "-",
# underscores or "nan"/"inf" (float() would take those).
_NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?(?:e[+-]\d+)?$")

Point = tuple[float, ...]  # (lat, lon) or (lat, lon, alt) or (lat, lon, alt, acc)
GEOMETRY_TYPES = {"geopoint": "Point", "geotrace": "LineString", "geoshape": "Polygon"}


class BadGeo(ValueError):
    """Stored geo text that is not in the canonical form. Worded in English from a
    `refusal_geo_*` catalog key: HQ's refusal reasons are English (sync/reasons.py)."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(t(key, "en", **params))


def read_point(text: str) -> Point:
    """The numbers of one canonical point; raises BadGeo."""
    parts = text.split(" ")
    if not 2 <= len(parts) <= 4 or not all(_NUMBER_RE.match(p) for p in parts):
        raise BadGeo("refusal_geo_point")
    numbers = tuple(float(p) for p in parts)
    if (
        not all(math.isfinite(n) for n in numbers)
        or not -90 <= numbers[0] <= 90
        or not -180 <= numbers[1] <= 180
        or (len(numbers) == 4 and numbers[3] < 0)
    ):
        raise BadGeo("refusal_geo_range")
    return numbers


def read_points(base_type: str, text: str) -> list[Point]:
    """The points of a stored geopoint (one), geotrace (2 or more) or geoshape (closed,
    at least 3 distinct points); raises BadGeo. Bounded before any splitting: at most
    MAX_TEXT_CHARS characters and MAX_GEO_POINTS points."""
    if len(text) > MAX_TEXT_CHARS:
        raise BadGeo("refusal_answer_too_long", n=len(text), limit=MAX_TEXT_CHARS)
    if base_type == "geopoint":
        return [read_point(text)]
    if text.count(POINT_SEPARATOR) >= MAX_GEO_POINTS:
        raise BadGeo("refusal_geo_too_many", limit=MAX_GEO_POINTS)
    texts = text.split(POINT_SEPARATOR)
    points = [read_point(t) for t in texts]
    if base_type == "geotrace":
        if len(points) < 2:
            raise BadGeo("refusal_geo_trace_few")
        return points
    if len(points) < 2 or texts[0] != texts[-1]:
        raise BadGeo("refusal_geo_not_closed")
    if len({p[:2] for p in points[:-1]}) < 3:
        raise BadGeo("refusal_geo_shape_few")
    return points


def to_geometry(base_type: str, points: list[Point], *, exact: bool = False) -> dict[str, Any]:
    """GeoJSON geometry (RFC 7946) of an answer's points: positions [lon, lat(, alt)].

    For a GIS (`exact=False`) every position has the same length: the altitude only when
    every point has one. `exact=True` (the JSON export, whose answers read back as an
    answers file) keeps each point whole: its altitude when it has one, and the points'
    accuracies, which a position cannot hold, in a foreign member `accuracy` (a number or
    null per point) when any point has one."""
    kind = GEOMETRY_TYPES[base_type]
    if exact:
        positions = [[p[1], p[0], *p[2:3]] for p in points]
    else:
        size = 3 if all(len(p) >= 3 for p in points) else 2
        positions = [[p[1], p[0], *p[2:size]] for p in points]
    geometry: dict[str, Any] = {"type": kind}
    if kind == "Point":
        geometry["coordinates"] = positions[0]
    else:
        geometry["coordinates"] = [positions] if kind == "Polygon" else positions
    if exact and any(len(p) == 4 for p in points):
        accuracy = [p[3] if len(p) == 4 else None for p in points]
        geometry["accuracy"] = accuracy[0] if kind == "Point" else accuracy
    return geometry
