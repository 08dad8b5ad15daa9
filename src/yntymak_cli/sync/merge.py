"""HQ's merge policy as a pure function: what HQ holds + a bundle's records -> a plan.

`plan_merge(existing, incoming)` reads no database and writes nothing; `store.hq.apply_merge`
writes the plan inside the import's one transaction. The rules:

- `submissions` holds the highest revision known of each uuid, `revisions` every revision
  received; a lower revision arriving late is kept as history only;
- a void is final: a known revision arriving as void voids the submission, and a later
  revision does not revive it (its answers replace the row's, the void fields stay);
- a revision HQ holds already is unchanged (replays, re-sends) unless it arrives as a void;
  one that reuses a held (uuid, revision) with other content is refused;
- a uuid HQ holds from another device is refused (the first device to send it owns it);
- a record without answers (purged on the device) is refused unless HQ holds its revision;
- a record refused before the merge (verification, a conflicting form) stays refused.

Applied to the same records in any order, the plans give the same rows, as long as a
device's timestamps grow with its revisions; the same bundle twice changes nothing.
Refusal reasons are English on purpose (stored at HQ, carried by receipts; shown in the
reader's language by sync.reasons).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from yntymak_cli.canonical import canonical_text
from yntymak_cli.i18n import t
from yntymak_cli.quality.paradata import stored, timing
from yntymak_cli.store.hq import (
    HeldSubmission,
    RevisionRow,
    SubmissionRow,
    TimingRow,
    VoidUpdate,
)

Kind = Literal["new", "updated", "unchanged", "refused"]


@dataclass(frozen=True)
class Existing:
    """What HQ holds for a bundle's uuids: their submission rows and revision hashes."""

    submissions: Mapping[str, HeldSubmission] = field(default_factory=dict)
    revisions: Mapping[tuple[str, int], str] = field(default_factory=dict)  # -> hash


@dataclass(frozen=True, slots=True)
class Incoming:
    """One record of a bundle (the record shape of docs/design.md), verified.

    `answers_json` is the canonical JSON of its answers (None when purged); `refused` a
    reason found before the merge (verification, a conflicting form definition).
    """

    record: Mapping[str, Any]
    answers_json: str | None
    refused: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.record["uuid"], self.record["revision"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one incoming record: new, updated, unchanged, or refused (reason)."""

    uuid: str
    revision: int
    kind: Kind
    reason: str | None = None


@dataclass(frozen=True)
class MergePlan:
    """Rows to write, and one outcome per incoming record in bundle order."""

    inserts: tuple[SubmissionRow, ...]  # submissions HQ did not hold
    updates: tuple[SubmissionRow, ...]  # held submissions replaced by a higher revision
    voids: tuple[VoidUpdate, ...]  # held submissions voided (only the void fields change)
    revisions: tuple[RevisionRow, ...]  # revisions HQ did not hold
    outcomes: tuple[Outcome, ...]
    # The interview timing of each submission whose first revision (the lowest) is new
    # here: what `hq checks` reads instead of paradata. Written as an upsert that keeps
    # the lowest revision's (a held submission has no row if imported before timings).
    timings: tuple[TimingRow, ...] = ()

    def count(self, kind: Kind) -> int:
        return sum(1 for o in self.outcomes if o.kind == kind)

    @property
    def refusals(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.kind == "refused")

    @property
    def accepted(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.kind != "refused")


def plan_merge(existing: Existing, incoming: Sequence[Incoming]) -> MergePlan:
    """The plan that merges `incoming` (one bundle's records) into `existing`."""
    held = existing.submissions
    revs: dict[tuple[str, int], str] = dict(existing.revisions)
    subs: dict[str, dict[str, Any]] = {}  # working copies of the rows touched
    inserts: dict[str, dict[str, Any]] = {}  # submissions HQ did not have
    updates: dict[str, dict[str, Any]] = {}  # held submissions whose row changes
    new_revisions: list[RevisionRow] = []
    outcomes: list[Outcome] = []
    timings: dict[str, TimingRow] = {}
    firsts: dict[str, int] = {}  # the lowest revision of each submission HQ holds
    for uid, rev in revs:
        if rev < firsts.get(uid, rev + 1):
            firsts[uid] = rev
    for item in incoming:
        rec = item.record
        uid, rev = rec["uuid"], rec["revision"]
        if item.refused is not None:
            outcomes.append(Outcome(uid, rev, "refused", item.refused))
            continue
        sub = subs.get(uid)
        if sub is None and uid in held:
            sub = subs[uid] = held[uid]._asdict()
        if sub is not None and sub["device_id"] != rec["device_id"]:
            reason = t("refusal_other_device", "en", uuid=uid, device=sub["device_id"])
            outcomes.append(Outcome(uid, rev, "refused", reason))
            continue
        known_hash = revs.get((uid, rev))
        if known_hash is not None:
            if known_hash != rec["hash"]:
                reason = t("refusal_differs", "en", uuid=uid, revision=rev)
                outcomes.append(Outcome(uid, rev, "refused", reason))
                continue
            assert sub is not None  # revisions reference submissions: a known one has its row
            if rec["status"] == "void" and sub["status"] != "void":
                _apply_void(sub, rec)
                if uid not in inserts:
                    updates[uid] = sub
                outcomes.append(Outcome(uid, rev, "updated"))
            else:
                outcomes.append(Outcome(uid, rev, "unchanged"))
            continue
        if rec["answers"] is None:
            reason = t("refusal_no_answers", "en", uuid=uid, revision=rev)
            outcomes.append(Outcome(uid, rev, "refused", reason))
            continue
        new_revisions.append(
            RevisionRow(
                uid,
                rev,
                rec["form_hash"],
                rec["submission_time"],
                rec["enumerator"],
                rec["device_id"],
                rec["instance_name"],
                item.answers_json,
                None if rec["paradata"] is None else canonical_text(rec["paradata"]),
                rec["hash"],
            )
        )
        revs[(uid, rev)] = rec["hash"]
        full = {**rec, "answers_json": item.answers_json}
        if rev < firsts.get(uid, rev + 1):  # the interview itself: the first revision
            firsts[uid] = rev
            timings[uid] = TimingRow(uid, rev, *stored(timing(rec["paradata"], questions=False)))
        if sub is None:
            subs[uid] = inserts[uid] = full
            outcomes.append(Outcome(uid, rev, "new"))
            continue
        changed = True
        if rev > sub["revision"]:
            was_void, old_updated = sub["status"] == "void", sub["updated_at"]
            keep = {"void_reason": sub["void_reason"], "voided_at": sub["voided_at"]}
            sub.update(full)
            if was_void:  # a void is final: a later revision cannot revive it
                sub["status"] = "void"
                sub.update(keep)
            sub["updated_at"] = max(old_updated, rec["updated_at"])
        elif rec["status"] == "void" and sub["status"] != "void":
            _apply_void(sub, rec)
        else:
            changed = False  # an older revision arriving late: history only
        if changed and uid not in inserts:
            updates[uid] = sub
        outcomes.append(Outcome(uid, rev, "updated"))

    # A held row has answers_json only once a higher revision replaced it; else only its
    # void fields changed.
    return MergePlan(
        inserts=tuple(_row(s) for s in inserts.values()),
        updates=tuple(_row(s) for s in updates.values() if "answers_json" in s),
        voids=tuple(
            VoidUpdate(s["uuid"], s["status"], s["void_reason"], s["voided_at"], s["updated_at"])
            for s in updates.values()
            if "answers_json" not in s
        ),
        revisions=tuple(new_revisions),
        outcomes=tuple(outcomes),
        timings=tuple(timings.values()),
    )


def _apply_void(sub: dict[str, Any], rec: Mapping[str, Any]) -> None:
    sub["status"] = "void"
    sub["void_reason"] = rec["void_reason"]
    sub["voided_at"] = rec["voided_at"]
    sub["updated_at"] = max(sub["updated_at"], rec["updated_at"])


def _row(s: Mapping[str, Any]) -> SubmissionRow:
    return SubmissionRow(
        s["uuid"],
        s["form_id"],
        s["form_version"],
        s["form_hash"],
        s["status"],
        s["revision"],
        s["enumerator"],
        s["device_id"],
        s["created_at"],
        s["updated_at"],
        s["submission_time"],
        s["instance_name"],
        s.get("void_reason"),
        s.get("voided_at"),
        s["answers_json"],
    )
