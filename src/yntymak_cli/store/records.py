"""The submission record: one shape, defined once, for store, bundle, HQ, export and --json.

A record is a JSON-safe dict (a TypedDict, so every consumer keeps indexing it as today);
the fields are those of docs/design.md "Submission records". Build records only through
the functions here, so the key set and key order cannot drift between modules.

Pure: no SQL and no I/O. The store decodes its JSON columns and calls these.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, TypedDict

Status = Literal["draft", "final", "void"]


class _Metadata(TypedDict):
    """The fields every record shape shares (a base: TypedDicts extend, they cannot drop)."""

    uuid: str
    revision: int  # a draft: the revision it edits (0 for a new survey)
    form_id: str
    form_version: str
    form_hash: str
    status: Status
    created_at: str
    updated_at: str
    submission_time: str | None  # when this revision was finalised; None for a draft
    enumerator: str
    device_id: str
    instance_name: str | None
    void_reason: str | None


class SubmissionRecord(_Metadata):
    """A submission (or a draft) as the store, the exporter and `submissions --json` see it."""

    answers: dict[str, Any]  # the answers-file shape; {} once purged
    purged_at: str | None  # answers erased on this laptop after HQ acknowledged them
    # HQ's decision on the current revision (store/reviews.py): approved | rejected |
    # on_hold, None while pending; and its comment. Filled by the export query only: other
    # records (drafts, bundle payloads, --json) carry None and never send them on.
    review_status: str | None
    review_comment: str | None
    # The store's stable integer for the submission (exports' `_id`); None for a draft.
    id: int | None


class PayloadRecord(_Metadata):
    """A revision (or void) as it travels in a bundle: the record without `purged_at`, plus
    the void time, the paradata and the device's revision hash (HQ recomputes it to tell
    replays from conflicts)."""

    voided_at: str | None
    # None only for a purged revision that HQ already holds (a later void of it).
    answers: dict[str, Any] | None
    paradata: dict[str, Any] | None
    hash: str


class _Row(Protocol):
    """A sqlite3.Row or a mapping: columns by name."""

    def __getitem__(self, key: str, /) -> Any: ...


def submission_record(
    *,
    uuid: str,
    revision: int,
    form_id: str,
    form_version: str,
    form_hash: str,
    status: Status,
    created_at: str,
    updated_at: str,
    submission_time: str | None,
    enumerator: str,
    device_id: str,
    instance_name: str | None,
    void_reason: str | None,
    answers: dict[str, Any],
    purged_at: str | None,
    review_status: str | None = None,
    review_comment: str | None = None,
    id: int | None = None,
) -> SubmissionRecord:
    """The one constructor: every record has these keys, in this order."""
    return {
        "uuid": uuid,
        "revision": revision,
        "form_id": form_id,
        "form_version": form_version,
        "form_hash": form_hash,
        "status": status,
        "created_at": created_at,
        "updated_at": updated_at,
        "submission_time": submission_time,
        "enumerator": enumerator,
        "device_id": device_id,
        "instance_name": instance_name,
        "void_reason": void_reason,
        "answers": answers,
        "purged_at": purged_at,
        "review_status": review_status,
        "review_comment": review_comment,
        "id": id,
    }


def from_row(
    row: _Row,
    *,
    answers: dict[str, Any],
    review_status: str | None = None,
    review_comment: str | None = None,
) -> SubmissionRecord:
    """A row with the record's metadata columns (a `submissions` row); `answers` decoded
    by the store, which owns the column's encoding; the review fields when the query
    joined them."""
    return submission_record(
        uuid=row["uuid"],
        revision=row["revision"],
        form_id=row["form_id"],
        form_version=row["form_version"],
        form_hash=row["form_hash"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        submission_time=row["submission_time"],
        enumerator=row["enumerator"],
        device_id=row["device_id"],
        instance_name=row["instance_name"],
        void_reason=row["void_reason"],
        answers=answers,
        purged_at=row["purged_at"],
        review_status=review_status,
        review_comment=review_comment,
        id=_id_of(row),
    )


def _id_of(row: _Row) -> int | None:
    """The row's `id` column; None for a row without one (a query that did not select it)."""
    try:
        value = row["id"]
    except (IndexError, KeyError):
        return None
    return value if value.__class__ is int else None


def payload_record(
    record: SubmissionRecord,
    *,
    answers_erased: bool,
    voided_at: str | None,
    paradata: dict[str, Any] | None,
    rev_hash: str,
) -> PayloadRecord:
    """The bundle form of a record; `answers_erased` when purge erased this revision's
    answers here (HQ already holds them), which travels as `"answers": null`."""
    return {
        "uuid": record["uuid"],
        "revision": record["revision"],
        "form_id": record["form_id"],
        "form_version": record["form_version"],
        "form_hash": record["form_hash"],
        "status": record["status"],
        "created_at": record["created_at"],
        "updated_at": record["updated_at"],
        "submission_time": record["submission_time"],
        "enumerator": record["enumerator"],
        "device_id": record["device_id"],
        "instance_name": record["instance_name"],
        "void_reason": record["void_reason"],
        "voided_at": voided_at,
        "answers": None if answers_erased else record["answers"],
        "paradata": paradata,
        "hash": rev_hash,
    }


# The version of the `submissions list|show --json` item shape (public_record).
RECORD_FORMAT_VERSION = 1


def public_record(record: SubmissionRecord) -> dict[str, Any]:
    """The documented `submissions list|show --json` shape: the record without its form hash
    and purge time, in a stable key order (`show` adds the revision history), led by
    `format_version` (RECORD_FORMAT_VERSION, raised when a key changes meaning or goes)."""
    return {
        "format_version": RECORD_FORMAT_VERSION,
        "uuid": record["uuid"],
        "revision": record["revision"],
        "form_id": record["form_id"],
        "form_version": record["form_version"],
        "status": record["status"],
        "created_at": record["created_at"],
        "updated_at": record["updated_at"],
        "enumerator": record["enumerator"],
        "device_id": record["device_id"],
        "answers": record["answers"],
        "submission_time": record["submission_time"],
        "instance_name": record["instance_name"],
        "void_reason": record["void_reason"],
    }
