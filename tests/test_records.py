"""One submission record: the --json shapes pinned, and the store, a draft and the bundle
payload agreeing on every field they share (store/records.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from typer.testing import CliRunner

from yntymak_cli.cli import app
from yntymak_cli.store.db import Store
from yntymak_cli.store.device_sync import pending_records
from yntymak_cli.store.records import PayloadRecord, SubmissionRecord

from .conftest import ROOT
from .helpers import LIST_KEYS, REVISION_KEYS, SHOW_KEYS

runner = CliRunner()

FORM = """
id: rec
version: '2026-11-01'
questions:
  - {name: village, type: text, label: Village}
  - {name: people, type: integer, label: People}
"""


def yn_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return json.loads(result.output)


@pytest.fixture
def seeded(load) -> dict[str, str]:
    """A final submission, a voided one and a new draft, by uuid."""
    form = load(FORM)
    store = Store.open()
    try:
        done = store.create_draft(form, {"answers": {}}, "aida", "dev-1", {})
        store.finalise(store.get_draft(done), {"village": "Ак-Суу", "people": 12}, "Ак-Суу")
        voided = store.create_draft(form, {"answers": {}}, "aida", "dev-1", {})
        store.finalise(store.get_draft(voided), {"village": "Нарын"}, None)
        store.void(voided, "duplicate interview")
        draft = store.create_draft(form, {"answers": {"village": "Ош"}}, "bakyt", "dev-1", {})
    finally:
        store.close()
    return {"final": done, "void": voided, "draft": draft}


def test_list_json_items_have_exactly_the_documented_keys(seeded: dict[str, str]) -> None:
    items = yn_json("submissions", "list")
    assert sorted(item["status"] for item in items) == ["draft", "final", "void"]
    for item in items:
        assert list(item) == LIST_KEYS, item["status"]


@pytest.mark.parametrize("status", ["final", "void", "draft"])
def test_show_json_has_exactly_the_documented_keys(seeded: dict[str, str], status: str) -> None:
    out = yn_json("submissions", "show", seeded[status])
    assert list(out) == SHOW_KEYS
    assert out["status"] == status
    for revision in out["revisions"]:
        assert list(revision) == REVISION_KEYS
    assert len(out["revisions"]) == (0 if status == "draft" else 1)


def test_list_and_show_give_one_item_the_same_fields(seeded: dict[str, str]) -> None:
    for item in yn_json("submissions", "list"):
        shown = yn_json("submissions", "show", item["uuid"])
        assert {k: shown[k] for k in LIST_KEYS} == item


def test_record_types_have_the_keys_the_records_carry(seeded: dict[str, str]) -> None:
    store = Store.open()
    try:
        record = store.get_record(seeded["final"])
        draft = store.draft_record(store.get_draft(seeded["draft"]))
        (payload, _void) = pending_records(store)[:2]
    finally:
        store.close()
    assert list(record) == list(SubmissionRecord.__annotations__)
    assert list(draft) == list(SubmissionRecord.__annotations__)
    assert list(payload) == list(PayloadRecord.__annotations__)
    assert set(SubmissionRecord.__required_keys__) == set(SubmissionRecord.__annotations__)
    # The payload is the record without the laptop's purge time and HQ's review (which
    # goes the other way, in receipts), plus what HQ checks.
    shared = set(SubmissionRecord.__annotations__) - {
        "purged_at",
        "review_status",
        "review_comment",
        "id",  # each store's own
    }
    assert set(PayloadRecord.__annotations__) == shared | {"voided_at", "paradata", "hash"}


def test_design_doc_lists_the_record_fields() -> None:
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    section = text.split("## Submission records", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    documented = re.findall(r'"(\w+)":', block)
    assert len(documented) == len(set(documented))
    assert set(documented) == set(SubmissionRecord.__annotations__)


def test_store_draft_and_payload_agree_on_shared_fields(load) -> None:
    """One submission followed from draft to store record to bundle payload."""
    form = load(FORM)
    answers = {"village": "Кара-Суу", "people": 40}
    store = Store.open()
    try:
        uuid = store.create_draft(form, {"answers": answers}, "aida", "dev-1", {"lang": "ky"})
        drafted: SubmissionRecord = store.draft_record(store.get_draft(uuid))
        store.finalise(store.get_draft(uuid), answers, "Кара-Суу")
        stored = store.get_record(uuid)
        (payload,) = pending_records(store)
    finally:
        store.close()

    # A draft is the same submission before finalising: same identity, form and answers.
    for key in ("uuid", "form_id", "form_version", "form_hash", "enumerator", "device_id"):
        assert drafted[key] == stored[key], key
    assert drafted["created_at"] == stored["created_at"]
    assert drafted["answers"] == stored["answers"] == answers
    assert drafted["status"] == "draft" and drafted["submission_time"] is None
    assert drafted["revision"] == 0  # a new survey: no revision yet

    # The bundle carries exactly the stored record's fields (the latest revision).
    for key in set(stored) & set(payload):
        assert payload[key] == stored[key], key
    assert (payload["voided_at"], payload["paradata"]) == (None, {"lang": "ky"})
    assert re.fullmatch(r"[0-9a-f]{64}", payload["hash"])


def test_a_void_travels_as_the_store_records_it(load) -> None:
    form = load(FORM)
    store = Store.open()
    try:
        uuid = store.create_draft(form, {"answers": {}}, "aida", "dev-1", {})
        store.finalise(store.get_draft(uuid), {"village": "Ош"}, "Ош")
        store.void(uuid, "wrong village")
        stored = store.get_record(uuid)
        (payload,) = pending_records(store)
    finally:
        store.close()
    assert stored["status"] == payload["status"] == "void"
    for key in set(stored) & set(payload):
        assert payload[key] == stored[key], key
    assert payload["voided_at"] == stored["updated_at"]
