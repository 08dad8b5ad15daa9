"""HQ's review decision as the laptop's edit sees it (issue 12).

A submission HQ approved is locked: `submissions edit` refuses it unless told `--reopen`
(the new revision then has no decision, so it reads as pending). One HQ returned
(rejected) or put on hold is edited with HQ's comment shown first. The decision itself is
`store.reviews.current`: the newest one on the submission's current revision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from yntymak_cli.errors import InvalidInput
from yntymak_cli.i18n import current_lang, t
from yntymak_cli.plain import plain
from yntymak_cli.store import reviews

if TYPE_CHECKING:
    from yntymak_cli.store.db import Store

_NOTE_KEYS = {"rejected": "edit_hq_returned", "on_hold": "edit_hq_on_hold"}


def decided_on(decision: reviews.Decision) -> str:
    """The day of a decision, YYYY-MM-DD (HQ's timestamps are ISO 8601 UTC)."""
    return decision.decided_at[:10]


def check_edit_allowed(store: Store, uuid: str, *, reopen: bool = False) -> reviews.Decision | None:
    """The submission's current review decision (None: pending). InvalidInput when HQ
    approved it and `reopen` is not set: an approved submission is not edited by accident.

    `uuid` is the whole UUID (as `Store.get_record` gives it back)."""
    decision = reviews.current(store.conn, uuid)
    if decision is not None and decision.status == "approved" and not reopen:
        date = decided_on(decision)
        raise InvalidInput(t("edit_approved", current_lang(), uuid=uuid, date=date))
    return decision


def check_void_allowed(store: Store, uuid: str, *, reopen: bool = False) -> None:
    """As check_edit_allowed, for a void: one HQ approved is voided only with `reopen`."""
    decision = reviews.current(store.conn, uuid)
    if decision is not None and decision.status == "approved" and not reopen:
        date = decided_on(decision)
        raise InvalidInput(t("void_approved", current_lang(), uuid=uuid, date=date))


def returned_note(decision: reviews.Decision | None, lang: str | None) -> str | None:
    """The line that shows HQ's comment before an edit of a submission HQ returned or put
    on hold (None for any other status). The comment and the reviewer's name are HQ's
    text: made plain here, line breaks kept, never read as markup or escape sequences."""
    if decision is None or decision.status not in _NOTE_KEYS:
        return None
    comment = decision.comment
    if comment is None or not comment.strip():
        comment = t("edit_hq_no_comment", lang)
    return t(
        _NOTE_KEYS[decision.status],
        lang,
        date=decided_on(decision),
        reviewer=plain(decision.reviewer),
        comment=plain(comment, keep_newlines=True),
    )
