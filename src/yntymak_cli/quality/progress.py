"""Progress against targets: final submissions done per district and per enumerator.

One tally serves `hq status --form` (streamed from HQ's database) and the export's summary
sheet (fed the records as they are written). A submission's district is
quality/district.py's: the answer to the form's district question, else the district its
laptop was enrolled with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from yntymak_cli.quality.district import answers_object, district_by, district_of
from yntymak_cli.store import targets as targets_store
from yntymak_cli.store.hqdb import HqDb


@dataclass(frozen=True)
class Targets:
    """A form's targets and what telling a submission's district needs."""

    form_id: str
    district_question: str | None  # the newest version's `quality.district_by`
    enrolled: Mapping[str, str | None] = field(default_factory=dict)  # device_id -> district
    districts: Mapping[str, int] = field(default_factory=dict)
    enumerators: Mapping[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.districts and not self.enumerators


@dataclass(frozen=True)
class Row:
    name: str  # "" for submissions without a district (or enumerator)
    done: int
    target: int | None  # None: no target set for this name
    percent: float | None  # done / target, one decimal; None without a target


@dataclass(frozen=True)
class Progress:
    form_id: str
    districts: tuple[Row, ...]
    enumerators: tuple[Row, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "form": self.form_id,
            "districts": [_row_json("district", r) for r in self.districts],
            "enumerators": [_row_json("enumerator", r) for r in self.enumerators],
        }


def _row_json(kind: str, row: Row) -> dict[str, Any]:
    return {kind: row.name, "done": row.done, "target": row.target, "percent": row.percent}


def percent(done: int, target: int) -> float:
    """done / target in percent, one decimal; a target of 0 is met."""
    return 100.0 if target == 0 else round(done * 100 / target, 1)


def ordered(done: Mapping[str, int], targets: Mapping[str, int]) -> tuple[Row, ...]:
    """Names with a target first, furthest behind first (lowest percent, then the most
    still to do, then by name), those done there included; then names with submissions
    but no target, by name."""
    with_target = [
        Row(n, done.get(n, 0), v, percent(done.get(n, 0), v)) for n, v in targets.items()
    ]
    with_target.sort(key=lambda r: (r.percent, r.done - (r.target or 0), r.name))
    rest = sorted((Row(n, c, None, None) for n, c in done.items() if n not in targets),
                  key=lambda r: r.name)  # fmt: skip
    return (*with_target, *rest)


class Tally:
    """Counts final submissions per district and enumerator; holds counters, never records."""

    def __init__(self, targets: Targets) -> None:
        self.targets = targets
        self.by_district: Counter[str] = Counter()
        self.by_enumerator: Counter[str] = Counter()

    def add(self, enumerator: str, device_id: str, answers: Mapping[str, Any] | None) -> None:
        t = self.targets
        district = district_of(t.district_question, answers or {}, t.enrolled.get(device_id))
        self.by_district[district] += 1
        self.by_enumerator[(enumerator or "").strip()] += 1

    def progress(self) -> Progress:
        t = self.targets
        return Progress(
            t.form_id,
            ordered(self.by_district, t.districts),
            ordered(self.by_enumerator, t.enumerators),
        )


def load_targets(db: HqDb, form_id: str) -> Targets:
    """The form's targets at HQ (empty ones when none are set)."""
    versions = db.form_versions(form_id)
    question = district_by(versions[0]) if versions else None
    found = targets_store.of_form(db, form_id)
    return Targets(
        form_id,
        question,
        targets_store.enrolled_districts(db),
        {x.name: x.target for x in found if x.kind == "district"},
        {x.name: x.target for x in found if x.kind == "enumerator"},
    )


def export_targets(db: HqDb, form_id: str) -> Targets | None:
    """What `hq export --summary` needs for its progress tables; None without targets."""
    targets = load_targets(db, form_id)
    return None if targets.empty else targets


def progress(db: HqDb, form_id: str) -> Progress:
    """Done / target / percent of a form at HQ, from its final submissions (streamed)."""
    from yntymak_cli.quality.targets import check_form

    check_form(db, form_id)
    tally = Tally(load_targets(db, form_id))
    need_answers = tally.targets.district_question is not None
    for done in targets_store.iter_done(db, form_id, with_answers=need_answers):
        tally.add(done.enumerator, done.device_id, answers_object(done.answers))
    return tally.progress()
