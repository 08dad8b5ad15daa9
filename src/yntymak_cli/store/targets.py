"""HQ's targets (`hq_targets`): how many final submissions of a form HQ expects per
district or per enumerator, and the reads that count progress against them.

Written once for SQLite and PostgreSQL (SQLAlchemy Core over HqDb, as store/hq.py).
The counting itself (whose district a submission is) is quality/progress.py's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import sqlalchemy as sa

from yntymak_cli.store import hq_schema
from yntymak_cli.store.hqdb import HqDb

KINDS = ("district", "enumerator")


class Target(NamedTuple):
    kind: str  # "district" | "enumerator"
    name: str
    target: int
    set_at: str


class Done(NamedTuple):
    """One final submission as progress counts it."""

    enumerator: str
    device_id: str
    answers: str | None  # JSON text; None when the caller did not ask for answers


def replace(db: HqDb, form_id: str, kind: str, targets: Sequence[tuple[str, int]], at: str) -> None:
    """Set a form's targets of one kind: those held before are replaced, in one transaction."""
    assert kind in KINDS
    t = hq_schema.hq_targets
    with db.write() as conn:
        conn.execute(sa.delete(t).where(t.c.form_id == form_id, t.c.kind == kind))
        if targets:
            conn.execute(
                t.insert(),
                [
                    {"form_id": form_id, "kind": kind, "name": n, "target": v, "set_at": at}
                    for n, v in targets
                ],
            )


def of_form(db: HqDb, form_id: str) -> list[Target]:
    """A form's targets, districts first, each kind in name order."""
    t = hq_schema.hq_targets
    rows = db.conn.execute(
        sa.select(t.c.kind, t.c.name, t.c.target, t.c.set_at).where(t.c.form_id == form_id)
    ).all()
    return sorted((Target(*r) for r in rows), key=lambda x: (KINDS.index(x.kind), x.name))


def enrolled_districts(db: HqDb) -> dict[str, str | None]:
    """device_id -> the district HQ enrolled it with (None when none was given)."""
    d = hq_schema.hq_devices
    return {row[0]: row[1] for row in db.conn.execute(sa.select(d.c.device_id, d.c.district))}


def iter_done(db: HqDb, form_id: str, *, with_answers: bool) -> Iterator[Done]:
    """The form's final submissions (not void, not purged), streamed: answers are read
    only when a district question needs them."""
    s = hq_schema.submissions
    answers = s.c.answers if with_answers else sa.null().label("answers")
    query = sa.select(s.c.enumerator, s.c.device_id, answers).where(
        s.c.form_id == form_id, s.c.status == "final", s.c.purged_at.is_(None)
    )
    for row in db.stream(query):
        yield Done(row["enumerator"] or "", row["device_id"] or "", row["answers"])
