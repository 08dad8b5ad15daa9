"""HQ's merge rules, tested on the pure `plan_merge` with a dict model of HQ's tables.

No SQLite here: `_apply` writes a plan into two dicts the way `store.hq.apply_merge` writes
it into `submissions` and `revisions`, so the rules are checked the way the engine is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from yntymak_cli.canonical import canonical_text
from yntymak_cli.store.hq import HeldSubmission, RevisionRow, SubmissionRow, TimingRow
from yntymak_cli.sync.merge import Existing, Incoming, MergePlan, plan_merge

A, B = "dev-a", "dev-b"
FAST = settings(max_examples=200, deadline=None)


@dataclass
class Hq:
    """HQ's `submissions` and `revisions` tables as dicts."""

    subs: dict[str, SubmissionRow] = field(default_factory=dict)
    revs: dict[tuple[str, int], RevisionRow] = field(default_factory=dict)
    timings: dict[str, TimingRow] = field(default_factory=dict)

    def existing(self, records: list[dict[str, Any]]) -> Existing:
        uuids = {r["uuid"] for r in records}
        held = {
            u: HeldSubmission(
                s.uuid, s.revision, s.status, s.device_id, s.updated_at, s.void_reason, s.voided_at
            )
            for u, s in self.subs.items()
            if u in uuids
        }
        return Existing(held, {k: r.hash for k, r in self.revs.items() if k[0] in uuids})

    def apply(self, plan: MergePlan) -> None:
        for row in plan.inserts:
            assert row.uuid not in self.subs
            self.subs[row.uuid] = row
        for row in plan.updates:
            assert row.uuid in self.subs
            self.subs[row.uuid] = row
        for v in plan.voids:
            self.subs[v.uuid] = self.subs[v.uuid]._replace(
                status=v.status, void_reason=v.void_reason, voided_at=v.voided_at,
                updated_at=v.updated_at,
            )  # fmt: skip
        for rev in plan.revisions:
            assert (rev.uuid, rev.revision) not in self.revs
            self.revs[(rev.uuid, rev.revision)] = rev
        for timing in plan.timings:  # store.hq.apply_merge's upsert: the lowest revision's
            held = self.timings.get(timing.uuid)
            if held is None or timing.revision < held.revision:
                self.timings[timing.uuid] = timing

    def plan(self, records: list[dict[str, Any]], refused: dict | None = None) -> MergePlan:
        refused = refused or {}
        incoming = [
            Incoming(
                r,
                None if r["answers"] is None else canonical_text(r["answers"]),
                refused.get((r["uuid"], r["revision"])),
            )
            for r in records
        ]
        return plan_merge(self.existing(records), incoming)

    def import_(self, records: list[dict[str, Any]], refused: dict | None = None) -> MergePlan:
        plan = self.plan(records, refused)
        self.apply(plan)
        return plan


def record(
    uuid: str,
    revision: int,
    *,
    device: str = A,
    void: bool = False,
    purged: bool = False,
    variant: str = "",
) -> dict[str, Any]:
    """A record as a device sends it; timestamps grow with the revision, a void comes last."""
    answers = {"village": f"{uuid}-{revision}{variant}"}
    digest = hashlib.sha256(canonical_text([uuid, revision, answers]).encode()).hexdigest()
    return {
        "uuid": uuid,
        "revision": revision,
        "form_id": "f",
        "form_version": "1",
        "form_hash": "0" * 64,
        "status": "void" if void else "final",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": f"2026-02-01T00:00:00Z{revision:03d}" if void else f"2026-01-{revision:02d}",
        "submission_time": f"2026-01-{revision:02d}",
        "enumerator": "aida",
        "device_id": device,
        "instance_name": None,
        "void_reason": "duplicate" if void else None,
        "voided_at": "2026-02-01T00:00:00Z" if void else None,
        "answers": None if purged else answers,
        "paradata": {"n": revision},
        "hash": digest,
    }


# A device's history: per uuid, revisions 1..k and maybe a void of revision k.
histories = st.dictionaries(
    st.sampled_from(["u1", "u2", "u3", "u4", "u5"]),
    st.tuples(st.integers(1, 4), st.booleans()),
    min_size=1,
)


def _records(history: dict[str, tuple[int, bool]]) -> list[dict[str, Any]]:
    out = []
    for uuid, (k, voided) in history.items():
        out.extend(record(uuid, rev) for rev in range(1, k + 1))
        if voided:
            out.append(record(uuid, k, void=True))
    return out


@st.composite
def bundles(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """A device's records shuffled into 1-4 bundles, each (uuid, revision) once per bundle."""
    records = draw(st.permutations(_records(draw(histories))))
    n = draw(st.integers(1, 4))
    out: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for r in records:
        out[draw(st.integers(0, n - 1))].append(r)
    return [list({(r["uuid"], r["revision"]): r for r in b}.values()) for b in out]


def _writes(plan: MergePlan) -> tuple:
    return plan.inserts, plan.updates, plan.voids, plan.revisions, plan.timings


@FAST
@given(bundles(), st.data())
def test_any_order_of_bundles_gives_the_same_tables(
    parts: list[list[dict[str, Any]]], data: st.DataObject
) -> None:
    one, other = Hq(), Hq()
    for b in parts:
        one.import_(b)
    for b in data.draw(st.permutations(parts)):
        other.import_(b)
    assert one.subs == other.subs
    assert one.revs == other.revs
    assert one.timings == other.timings


@FAST
@given(bundles())
def test_the_same_bundle_twice_changes_nothing_the_second_time(
    parts: list[list[dict[str, Any]]],
) -> None:
    hq = Hq()
    for b in parts:
        first = hq.import_(b)
        subs, revs = dict(hq.subs), dict(hq.revs)
        again = hq.import_(b)
        assert _writes(again) == ((), (), (), (), ())
        assert (hq.subs, hq.revs) == (subs, revs)
        # What was accepted is unchanged now; what was refused is refused for the same reason.
        for o1, o2 in zip(first.outcomes, again.outcomes, strict=True):
            assert (o1.kind == "refused") == (o2.kind == "refused")
            assert o2.kind in ("unchanged", "refused")
            assert o1.reason == o2.reason


@FAST
@given(bundles())
def test_the_highest_revision_wins_and_every_revision_is_kept(
    parts: list[list[dict[str, Any]]],
) -> None:
    hq = Hq()
    for b in parts:
        hq.import_(b)
    sent = [r for b in parts for r in b]
    for uuid in {r["uuid"] for r in sent}:
        mine = [r for r in sent if r["uuid"] == uuid]
        top = max(r["revision"] for r in mine)
        row = hq.subs[uuid]
        assert row.revision == top
        assert row.answers == canonical_text({"village": f"{uuid}-{top}"})
        assert row.status == ("void" if any(r["status"] == "void" for r in mine) else "final")
        assert {k[1] for k in hq.revs if k[0] == uuid} == {r["revision"] for r in mine}
        # The interview's timing is its first revision's, whatever order they came in.
        assert hq.timings[uuid].revision == min(r["revision"] for r in mine)


def test_a_lower_revision_arriving_late_is_history_only() -> None:
    hq = Hq()
    hq.import_([record("u", 2)])
    plan = hq.import_([record("u", 1)])
    assert [o.kind for o in plan.outcomes] == ["updated"]
    assert plan.inserts == plan.updates == plan.voids == ()
    assert [r.revision for r in plan.revisions] == [1]
    assert [t.revision for t in plan.timings] == [1]  # the interview: revision 1 is timed
    assert hq.subs["u"].revision == 2


def test_a_void_of_a_held_revision_changes_only_the_void_fields() -> None:
    hq = Hq()
    hq.import_([record("u", 1)])
    before = hq.subs["u"]
    plan = hq.import_([record("u", 1, void=True, purged=True)])  # answers purged on the device
    assert [o.kind for o in plan.outcomes] == ["updated"]
    assert plan.updates == plan.revisions == () and len(plan.voids) == 1
    after = hq.subs["u"]
    assert (after.status, after.void_reason, after.answers) == (
        "void",
        "duplicate",
        before.answers,
    )


def test_a_void_is_final_a_higher_revision_does_not_revive_it() -> None:
    hq = Hq()
    hq.import_([record("u", 1, void=True)])
    plan = hq.import_([record("u", 2)])
    assert [o.kind for o in plan.outcomes] == ["updated"] and len(plan.updates) == 1
    row = hq.subs["u"]
    assert (row.revision, row.status, row.void_reason) == (2, "void", "duplicate")
    assert row.updated_at == record("u", 1, void=True)["updated_at"]  # the later of the two


def test_a_purged_record_of_a_revision_hq_lacks_is_refused() -> None:
    hq = Hq()
    plan = hq.import_([record("u", 1, void=True, purged=True)])
    assert [o.kind for o in plan.outcomes] == ["refused"]
    assert "without its answers" in (plan.outcomes[0].reason or "")
    assert hq.subs == {} and hq.revs == {}


def test_a_held_revision_with_other_content_is_refused() -> None:
    hq = Hq()
    hq.import_([record("u", 1)])
    before = dict(hq.subs), dict(hq.revs)
    plan = hq.import_([record("u", 1, variant="x")])
    assert [o.kind for o in plan.outcomes] == ["refused"]
    assert "differs from the one HQ already holds" in (plan.outcomes[0].reason or "")
    assert _writes(plan) == ((), (), (), (), ())
    assert (hq.subs, hq.revs) == before


@FAST
@given(histories, histories)
def test_a_uuid_held_from_another_device_is_refused(
    mine: dict[str, tuple[int, bool]], theirs: dict[str, tuple[int, bool]]
) -> None:
    hq = Hq()
    hq.import_(_records(mine))
    before = dict(hq.subs), dict(hq.revs)
    other = [{**r, "device_id": B} for r in _records(theirs)]
    plan = hq.import_(other)
    for o in plan.outcomes:
        if o.uuid in mine:
            assert o.kind == "refused" and A in (o.reason or "")
        else:
            assert o.kind != "refused"
    for uuid in mine:  # the first device's rows and revisions are untouched
        assert hq.subs[uuid] == before[0][uuid]
    assert {k: v for k, v in hq.revs.items() if k[0] in mine} == {
        k: v for k, v in before[1].items() if k[0] in mine
    }


@FAST
@given(histories, st.data())
def test_a_record_refused_before_the_merge_stays_refused_alone(
    history: dict[str, tuple[int, bool]], data: st.DataObject
) -> None:
    records = list({(r["uuid"], r["revision"]): r for r in _records(history)}.values())
    keys = [(r["uuid"], r["revision"]) for r in records]
    bad = data.draw(st.sampled_from(keys))
    plan = Hq().plan(records, refused={bad: "form differs"})
    refused = [(o.uuid, o.revision, o.reason) for o in plan.refusals]
    assert (bad[0], bad[1], "form differs") in refused
    assert bad not in {(r.uuid, r.revision) for r in plan.revisions}
    assert len(plan.outcomes) == len(records)
