"""HQ review: approve, reject or hold submissions, and the decisions receipts carry back.

A decision applies to the revision HQ holds when it is made; a newer revision from the
device has none, so the submission reads as pending again (store/reviews.py). Decisions
never change answers. They travel to the device that sent the submission inside its next
receipt (v2), sealed to that device's X25519 key, because comments talk about respondents.
A device HQ has no such key for (enrolled before keys existed) is told only how many
decisions wait for it, until `hq enroll --update` brings its key.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yntymak_cli.errors import InvalidInput, NotFound, YntymakError
from yntymak_cli.i18n import current_lang, t
from yntymak_cli.store import hq as hq_store
from yntymak_cli.store import reviews
from yntymak_cli.store.db import utcnow
from yntymak_cli.store.hqdb import HqDb
from yntymak_cli.sync.keys import HqIdentity, write_sync_file

STATUSES = reviews.STATUSES


def _check_text(value: str | None, limit: int, option: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(
            t("review_text_too_long", current_lang(), option=option, n=len(value), max=limit)
        )
    return value or None


def decide(
    store: HqDb, uuid: str, status: str, comment: str | None, reviewer: str
) -> reviews.Decision:
    """Record HQ's decision on the revision it holds now. `uuid` may be a unique prefix.

    A rejection or hold needs a comment: the volunteer must learn what to fix.
    """
    from yntymak_cli.sync.container import MAX_REVIEW_COMMENT, MAX_REVIEWER

    lang = current_lang()
    if status not in STATUSES:
        raise InvalidInput(t("review_bad_status", lang, status=status, allowed=", ".join(STATUSES)))
    text = _check_text(comment, MAX_REVIEW_COMMENT, "--comment")
    if text is None and status != "approved":
        raise InvalidInput(t("review_needs_comment", lang, status=status))
    who = _check_text(reviewer, MAX_REVIEWER, "--reviewer")
    if who is None:
        raise InvalidInput(t("review_needs_reviewer", lang))
    with store.write() as conn:
        row = store.get_submission_row(uuid)
        if row["status"] != "final":
            raise InvalidInput(t("review_not_final", lang, uuid=row["uuid"], status=row["status"]))
        decided_at = utcnow()
        decision_id = hq_store.add_decision(
            conn, row["uuid"], row["revision"], status, text, who, decided_at
        )
    return reviews.Decision(
        decision_id, row["uuid"], row["revision"], status, text, who, decided_at
    )


def history(store: HqDb, uuid: str) -> tuple[dict[str, Any], list[reviews.Decision]]:
    """A submission (HQ's row) and every decision on it, oldest first."""
    row = store.get_submission_row(uuid)
    return dict(row), hq_store.decision_history(store.conn, row["uuid"])


def review_list(
    store: HqDb,
    *,
    status: str | None = None,
    form_id: str | None = None,
    district: str | None = None,
    enumerator: str | None = None,
) -> list[hq_store.ReviewRow]:
    allowed = (*STATUSES, reviews.PENDING)
    if status is not None and status not in allowed:
        raise InvalidInput(
            t(
                "bad_option_value",
                current_lang(),
                option="--status",
                value=status,
                allowed=", ".join(allowed),
            )
        )
    return hq_store.review_list(
        store.conn, status=status, form_id=form_id, district=district, enumerator=enumerator
    )


def decision_doc(d: reviews.Decision) -> dict[str, Any]:
    """A decision as the sealed part of a receipt carries it."""
    return d._asdict()


def decision_from_doc(doc: dict[str, Any]) -> reviews.Decision:
    return reviews.Decision(**{name: doc[name] for name in reviews.Decision._fields})


# -- decisions out -------------------------------------------------------------------------


@dataclass
class Outgoing:
    """The decisions one receipt carries to a device, and those that must wait."""

    device_id: str
    decisions: list[reviews.Decision] = field(default_factory=list)
    box_key: bytes | None = None  # the device's X25519 key, None if HQ has none
    waiting: int = 0  # not sent: no box key at HQ, or more than one receipt holds
    no_key: bool = False  # waiting because HQ has no box key for the device

    @property
    def empty(self) -> bool:
        return not self.decisions and not self.waiting


def outgoing(store: HqDb, device_id: str, *, again: bool = False) -> Outgoing:
    """What the next receipt for `device_id` carries: the newest decision on each of its
    submissions not yet delivered (all of them with `again`), as many as one receipt holds."""
    from yntymak_cli.sync.container import MAX_DECISIONS_SIZE, decisions_size

    device = hq_store.device_by_id(store.conn, device_id)
    if device is None:
        raise NotFound(t("hq_revoke_unknown", current_lang(), device=device_id))
    pending = hq_store.to_deliver(store.conn, device_id, again=again)
    if device["box_key"] is None:
        return Outgoing(device_id, waiting=len(pending), no_key=bool(pending))
    out = Outgoing(device_id, box_key=base64.b64decode(device["box_key"]))
    # Comments are at most 2000 characters, so thousands fit; the rest waits for the next.
    budget = MAX_DECISIONS_SIZE - 1024
    size = decisions_size([])
    for d in pending:
        size += decisions_size([decision_doc(d)]) - decisions_size([]) + 1
        if size > budget:
            break
        out.decisions.append(d)
    out.waiting = len(pending) - len(out.decisions)
    return out


def mark_delivered(store: HqDb, sent: Outgoing) -> None:
    """Once the receipt file is written: its decisions do not go out again by themselves."""
    if sent.decisions:
        with store.write() as conn:
            hq_store.mark_delivered(conn, [d.decision_id for d in sent.decisions], utcnow())


def sign_with_decisions(receipt: dict[str, Any], hq: HqIdentity, sent: Outgoing) -> bytes:
    """A receipt v2 carrying `sent`'s decisions (sealed) and how many still wait."""
    from yntymak_cli.sync import container

    receipt = {**receipt, "device_id": sent.device_id, "decisions_waiting": sent.waiting}
    try:
        return container.sign_receipt_v2(
            receipt, hq, [decision_doc(d) for d in sent.decisions], sent.box_key
        )
    except ValueError as exc:
        raise YntymakError(t("receipt_err_cannot_build", current_lang(), error=exc)) from None


def _check_receiver(store: HqDb, device_id: str) -> None:
    """Decisions go only to an enrolled device that is not revoked: a revoked laptop may
    be in the wrong hands."""
    device = hq_store.device_by_id(store.conn, device_id)
    if device is None:
        raise NotFound(t("hq_revoke_unknown", current_lang(), device=device_id))
    if device["revoked_at"]:
        raise InvalidInput(
            t("review_device_revoked", current_lang(), device=device_id, at=device["revoked_at"])
        )


def write_decisions_receipt(
    store: HqDb, hq: HqIdentity, device_id: str, out_dir: Path, *, again: bool = False
) -> tuple[Path | None, Outgoing]:
    """`hq receipt DEVICE`: a receipt answering no bundle, for decisions waiting for a
    device that has nothing new to send. No file when nothing waits."""
    from yntymak_cli.outputs import check_overwrite
    from yntymak_cli.sync.container import RECEIPT_SUFFIX

    _check_receiver(store, device_id)
    sent = outgoing(store, device_id, again=again)
    if not sent.decisions:
        return None, sent
    last = sent.decisions[-1].decision_id
    path = Path(out_dir) / f"{device_id}-decisions-{last}{RECEIPT_SUFFIX}"
    check_overwrite(path, "receipt")
    write_sync_file(path, sign_with_decisions({}, hq, sent))
    mark_delivered(store, sent)
    return path, sent


def current_decisions_receipt(store: HqDb, hq: HqIdentity, device_id: str) -> bytes | None:
    """A receipt answering no bundle with the newest decision of each of the device's
    submissions, delivered or not (what `yntymak sync` fetches after its uploads: it heals a
    receipt lost on the way). None when there is none, or no key to seal them to. A revoked
    device gets nothing (InvalidInput).

    It marks nothing delivered: anyone may ask for it (it is sealed to the device), so
    asking proves no delivery, and the receipts of bundles must still carry what no
    receipt carried yet."""
    _check_receiver(store, device_id)
    sent = outgoing(store, device_id, again=True)
    if not sent.decisions:
        return None
    return sign_with_decisions({}, hq, sent)
