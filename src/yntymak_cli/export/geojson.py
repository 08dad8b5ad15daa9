"""GeoJSON export (RFC 7946): one Feature per geopoint, geotrace and geoshape answer.

Streamed like the JSON export: features are written as the records pass, never held.
A geopoint is a Point, a geotrace a LineString, a geoshape a Polygon of one ring (closed,
as stored). Positions are [lon, lat], GeoJSON's order, with the altitude as a third
number only when every point of the answer has one (a position has no accuracy).
Properties: `_uuid`, `_id` (when the record has one), `question` (the answer's path,
`incidents[2]/where` inside a repeat, 1-based as in messages) and the submission's
`_submission_time`, `_enumerator` and `_form_version`. The collection also carries
`form_id` (a foreign member, which readers ignore) so a re-export recognises the file.

A stored value that does not read as points (an older or hand-edited record) is left
out and counted; the other formats keep it as text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yntymak_cli.export.layout import Layout
from yntymak_cli.files import atomic_path
from yntymak_cli.forms.geo import GEO_TYPES, BadGeo, read_points, to_geometry

# default=str: an odd metadata value (never from the store) as text rather than a crash.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=str)


@dataclass
class GeojsonCount:
    submissions: int = 0
    features: int = 0
    unread: int = 0  # geo answers left out: their text does not read as points


class _Answers:
    """The geo answers of a record, found through its repeats: (path, type, value)."""

    def __init__(self, layout: Layout) -> None:
        self.geo = {
            name: info.question.base_type
            for name, info in layout.questions.items()
            if info.question.base_type in GEO_TYPES
        }
        self.repeats = layout.repeats

    def __call__(self, answers: Any, prefix: str = "") -> Iterator[tuple[str, str, Any]]:
        if answers.__class__ is not dict:  # a foreign record's odd shape
            return
        for key, value in answers.items():
            base = self.geo.get(key)
            if base is not None:
                if value is not None:
                    yield prefix + key, base, value
            elif key in self.repeats and value.__class__ is list:
                for i, instance in enumerate(value, start=1):
                    yield from self(instance, f"{prefix}{key}[{i}]/")


def write_geojson(
    out: Path,
    layout: Layout,
    records: Iterable[dict[str, Any]],
    progress: Callable[[int], None] | None = None,
    progress_every: int = 1000,
) -> GeojsonCount:
    """Write the FeatureCollection to `out` (atomically: files.atomic_path)."""
    found = _Answers(layout)
    count = GeojsonCount()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        head = {"type": "FeatureCollection", "form_id": layout.form_id}
        # The head is a complete object; reopen it to stream the features list.
        f.write(_ENCODER.encode(head)[:-1] + ', "features": [')
        for record in records:
            meta = {"_uuid": record.get("uuid")}
            if record.get("id") is not None:
                meta["_id"] = record.get("id")
            for path, base, value in found(record.get("answers")):
                try:
                    points = read_points(base, value) if value.__class__ is str else None
                except BadGeo:
                    points = None
                if points is None:
                    count.unread += 1
                    continue
                properties = {
                    **meta,
                    "question": path,
                    "_submission_time": record.get("submission_time"),
                    "_enumerator": record.get("enumerator"),
                    "_form_version": record.get("form_version"),
                }
                feature = {
                    "type": "Feature",
                    "geometry": to_geometry(base, points),
                    "properties": properties,
                }
                f.write(("\n" if count.features == 0 else ",\n") + _ENCODER.encode(feature))
                count.features += 1
            count.submissions += 1
            if progress is not None and count.submissions % progress_every == 0:
                progress(count.submissions)
        f.write("\n]}\n")
    return count
