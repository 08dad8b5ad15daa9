"""The review round trip, end to end through the CLI: two laptops and HQ, offline.

HQ rejects one submission and approves another; receipts carry the decisions back; the
volunteer fixes the rejected one; its new revision reaches HQ pending; HQ approves it; the
exports show the statuses; an approved submission refuses an edit on its laptop.
"""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl

from tests.helpers import Field, collect_in, device_id, yn

COMMENT = "Возраст 34 не совпадает с анкетой: уточните (Q2)"


def review_status(f: Field) -> dict[str, tuple[str, int]]:
    listing = json.loads(yn(f.hq, "hq", "review", "list", "--json"))
    return {r["uuid"]: (r["status"], r["revision"]) for r in listing}


def ack(home: Path, receipt: Path) -> str:
    return yn(home, "bundle", "ack", receipt)


def xlsx_statuses(path: Path) -> dict[str, tuple[str | None, str | None]]:
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    head = list(rows[0])
    uuid, status, comment = (
        head.index("_uuid"),
        head.index("_validation_status"),
        head.index("_review_comment"),
    )
    return {r[uuid]: (r[status], r[comment]) for r in rows[1:]}


def test_reject_fix_approve_between_two_laptops_and_hq(field: Field, tmp_path: Path) -> None:
    f = field
    ua = collect_in(f.a, f.tmp, "Кара-Суу")
    ub = collect_in(f.b, f.tmp, "Ак-Суу")
    bundles = [f.bundle(f.a), f.bundle(f.b)]
    f.import_(*bundles)
    for home, bundle in zip((f.a, f.b), bundles, strict=True):
        ack(home, f.receipt(bundle))
    assert review_status(f) == {ua: ("pending", 1), ub: ("pending", 1)}

    # HQ decides.
    out = yn(f.hq, "hq", "review", "reject", ua[:8], "--comment", COMMENT, "--reviewer", "Nurlan")
    assert f"Submission {ua} revision 1: rejected (by Nurlan)" in out
    yn(f.hq, "hq", "review", "approve", ub, "--reviewer", "Nurlan")
    assert review_status(f) == {ua: ("rejected", 1), ub: ("approved", 1)}
    out = yn(f.hq, "hq", "review", "reject", ub, code=2)  # a rejection needs a comment
    assert "--comment" in out
    rejected = json.loads(yn(f.hq, "hq", "review", "list", "--status", "rejected", "--json"))
    assert [(r["uuid"], r["last_comment"], r["district"]) for r in rejected] == [
        (ua, COMMENT, "kara_suu")
    ]
    by_district = json.loads(yn(f.hq, "hq", "review", "list", "--district", "at_bashy", "--json"))
    assert [r["uuid"] for r in by_district] == [ub]

    # Neither laptop has anything new to send: a receipt of its own carries the decision.
    receipts = {}
    for home in (f.a, f.b):
        out = yn(f.hq, "hq", "receipt", device_id(home), "-o", f.receipts)
        assert "1 review decision(s)" in out
        (receipts[home],) = f.receipts.glob(f"{device_id(home)}-decisions-*.ykr")
    out = yn(f.hq, "hq", "receipt", device_id(f.a), "-o", f.receipts)
    assert "No review decisions wait" in out  # delivered once
    assert "1 rejected" in ack(f.a, receipts[f.a])
    assert "1 approved" in ack(f.b, receipts[f.b])

    # The volunteer sees HQ's comment and fixes the answer with a script.
    inbox = yn(f.a, "inbox")
    assert COMMENT in inbox and ua[:8] in inbox and "Nurlan" in inbox
    assert json.loads(yn(f.b, "inbox", "--json")) == []
    fix = tmp_path / "fix.yaml"
    fix.write_text("age: 43\n", encoding="utf-8")
    yn(f.a, "submissions", "edit", ua, "--answers", fix)
    shown = json.loads(yn(f.a, "submissions", "show", ua, "--json"))
    assert shown["revision"] == 2 and shown["answers"]["age"] == 43
    assert json.loads(yn(f.a, "inbox", "--json")) == []  # fixed: no longer returned

    # The fix travels; HQ sees it pending again, and approves it.
    fixed = f.bundle(f.a)
    out = f.import_(fixed)
    assert "0 new, 1 updated" in out
    assert review_status(f) == {ua: ("pending", 2), ub: ("approved", 1)}
    yn(f.hq, "hq", "review", "approve", ua, "--comment", "Спасибо", "--reviewer", "Nurlan")
    history = json.loads(yn(f.hq, "hq", "review", "show", ua, "--json"))
    assert [(d["revision"], d["status"]) for d in history["decisions"]] == [
        (1, "rejected"),
        (2, "approved"),
    ]
    shown_text = yn(f.hq, "hq", "review", "show", ua)
    assert COMMENT in shown_text and "Nurlan" in shown_text

    # Delivered with the receipt of the next bundle.
    ack(f.a, f.receipt(fixed))  # that receipt was written before the approval
    collect_in(f.a, f.tmp, "Ош")
    nxt = f.bundle(f.a)
    assert "1 review decision(s) for this device" in f.import_(nxt)
    assert "1 approved" in ack(f.a, f.receipt(nxt))

    # The exports, at HQ and on the laptops, show the statuses the way Kobo does.
    out_hq = tmp_path / "hq.xlsx"
    yn(f.hq, "hq", "export", "village_safety", "-o", out_hq)
    statuses = xlsx_statuses(out_hq)
    assert statuses[ua] == ("validation_status_approved", "Спасибо")
    assert statuses[ub][0] == "validation_status_approved"
    assert sorted(v[0] or "" for v in statuses.values()) == [
        "",
        "validation_status_approved",
        "validation_status_approved",
    ]
    approved = tmp_path / "approved.xlsx"
    yn(f.hq, "hq", "export", "village_safety", "-o", approved, "--status", "approved")
    assert set(xlsx_statuses(approved)) == {ua, ub}
    laptop = tmp_path / "laptop.xlsx"
    yn(f.a, "export", "village_safety", "-o", laptop)
    assert xlsx_statuses(laptop)[ua] == ("validation_status_approved", "Спасибо")

    # Approved is locked on the laptop; --reopen edits anyway and the edit goes back pending.
    again = tmp_path / "again.yaml"
    again.write_text("age: 44\n", encoding="utf-8")
    out = yn(f.a, "submissions", "edit", ua, "--answers", again, code=2)
    assert "approved at HQ on" in out and "--reopen" in out
    assert json.loads(yn(f.a, "submissions", "show", ua, "--json"))["revision"] == 2
    yn(f.a, "submissions", "edit", ua, "--answers", again, "--reopen")
    reopened = f.bundle(f.a)
    f.import_(reopened)
    assert review_status(f)[ua] == ("pending", 3)
