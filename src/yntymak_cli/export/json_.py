"""Streaming JSON / JSON Lines export: answers in their stored types (answers-file shape).

`json`: one document written incrementally,
`{"format_version": 1, "form_id", "versions", "submissions": [...]}`;
`jsonl`: one submission object per line. Each submission carries its metadata and
`answers` nested, so a question named like a metadata field (`enumerator`) cannot
clash, and `answers` can be fed back as an answers file. geotrace and geoshape answers
are GeoJSON geometry (a LineString, a Polygon of one ring; positions [lon, lat(, alt)],
accuracies in a foreign member `accuracy`), which an answers file reads back exactly.
`validation_status` is HQ's review of the current revision as KoboToolbox's value
(validation_status_approved, validation_status_not_approved, validation_status_on_hold;
null while pending; never translated, as `status` stays `final` with --lang) and
`review_comment` its comment (or null).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from yntymak_cli.export.cells import json_safe
from yntymak_cli.export.layout import Layout
from yntymak_cli.files import atomic_path
from yntymak_cli.forms.geo import LINE_TYPES, BadGeo, read_points, to_geometry
from yntymak_cli.store.reviews import KOBO_VALIDATION

JSON_FORMAT_VERSION = 1
SUBMISSION_FIELDS = (
    "id",  # the store's stable integer (KoboToolbox's _id); null for a draft
    "uuid",
    "revision",
    "form_version",
    "status",
    "submission_time",
    "enumerator",
    "device_id",
    "instance_name",
    "void_reason",  # why a void submission (--include-void) was voided; null otherwise
    "validation_status",  # HQ's review: KoboToolbox's value; null while pending
    "review_comment",  # the comment of the decision giving that status; null if none
)


class AnswersView:
    """Applies --lang (choice labels) and --no-sensitive (keys removed) to answers."""

    def __init__(self, layout: Layout) -> None:
        self.dropped = layout.dropped
        self.repeats = layout.repeats
        self.labels: dict[str, dict[str, str]] = {}
        # Per definition (form hash): each record is shown with the labels it was collected
        # with, so a later version cannot relabel answers collected with an earlier one.
        self.by_form: dict[str, dict[str, dict[str, str]]] = {}
        self._mixed: dict[tuple[str, str], dict[str, str]] = {}
        if layout.lang:
            for name, info in layout.questions.items():
                if info.question.list_name:
                    self.labels[name] = info.choices
                    self.by_form[name] = info.by_form
        # geotrace/geoshape answers are written as GeoJSON geometry (read back as answers).
        self.lines = {
            name: info.question.base_type
            for name, info in layout.questions.items()
            if info.question.base_type in LINE_TYPES and name not in self.dropped
        }
        self.identity = not self.dropped and not self.labels and not self.lines

    def __call__(self, answers: dict[str, Any], form_hash: Any = None) -> dict[str, Any]:
        if self.identity or answers.__class__ is not dict:
            return answers
        out: dict[str, Any] = {}
        for key, value in answers.items():
            if key in self.dropped:
                continue
            if key in self.repeats and isinstance(value, list):
                value = [self(v, form_hash) if isinstance(v, dict) else v for v in value]
            elif key in self.lines:
                value = _geometry(self.lines[key], value)
            elif key in self.labels:
                labels = self.labels[key]
                if form_hash.__class__ is str and form_hash in self.by_form[key]:
                    mixed = self._mixed.get((key, form_hash))
                    if mixed is None:
                        mixed = {**labels, **self.by_form[key][form_hash]}
                        self._mixed[(key, form_hash)] = mixed
                    labels = mixed
                if isinstance(value, list):
                    value = [labels.get(v, v) if isinstance(v, str) else v for v in value]
                elif isinstance(value, str):
                    value = labels.get(value, value)
            out[key] = value
        return out


def _geometry(base_type: str, value: Any) -> Any:
    """A stored geotrace/geoshape as exact GeoJSON geometry; text that does not read as
    points (an older or foreign record) stays as it is."""
    if value.__class__ is not str:
        return value
    try:
        return to_geometry(base_type, read_points(base_type, value), exact=True)
    except BadGeo:
        return value


def submission(record: dict[str, Any], view: AnswersView) -> dict[str, Any]:
    item: dict[str, Any] = {"form_id": record.get("form_id")}
    for name in SUBMISSION_FIELDS:
        item[name] = record.get(name)
    review = record.get("review_status")
    item["validation_status"] = None if review is None else KOBO_VALIDATION.get(review, review)
    item["review_comment"] = record.get("review_comment")
    item["answers"] = view(record.get("answers") or {}, record.get("form_hash"))
    return item


# ensure_ascii=False: Kyrgyz and Russian stay readable; default=str: an odd object
# (never from the store) as text rather than a crash.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=str)
# Nesting kept in full when a submission must be tamed (see _encode); deeper is "…".
JSON_DEPTH_MAX = 400


def _encode(item: dict[str, Any]) -> str:
    try:
        return _ENCODER.encode(item)
    except (ValueError, RecursionError):
        # NaN or an infinity (JSON has none: it would write an invalid file), an int
        # too long for str(), or nesting deeper than the encoder's recursion allows.
        return _ENCODER.encode(json_safe(item, JSON_DEPTH_MAX))


def write_json(
    out: Path,
    layout: Layout,
    records: Iterable[dict[str, Any]],
    lines: bool,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 1000,
) -> int:
    """Write `records` to `out` (via a temporary file, fsynced and renamed by
    files.atomic_path, so a failure leaves nothing)."""
    view = AnswersView(layout)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with atomic_path(out) as tmp:
        with tmp.open("w", encoding="utf-8", newline="\n") as f:
            if not lines:
                head = {
                    "format_version": JSON_FORMAT_VERSION,
                    "form_id": layout.form_id,
                    "versions": layout.versions,
                }
                # The head is a complete object; reopen it to stream the submissions list.
                f.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "submissions": [')
            for record in records:
                text = _encode(submission(record, view))
                if lines:
                    f.write(text + "\n")
                else:
                    f.write(("\n" if n == 0 else ",\n") + text)
                n += 1
                if progress is not None and n % progress_every == 0:
                    progress(n)
            if not lines:
                f.write("\n]}\n")
    return n
