"""Issue 9, hardening: a hostile or broken device must not affect other devices' data at HQ.

Each test goes through the CLI (`hq import`, `bundle ack`, `hq export`) as HQ staff and
volunteers would. Hostile bundles are made the way an enrolled device could make them:
a genuine bundle opened, changed and signed again with that device's own key.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import uuid as uuid_mod
from pathlib import Path
from typing import Any

import pytest

from yntymak_cli.sync import container, keys

from .helpers import CONTRACT as FORM
from .helpers import (
    Field,
    collect_in,
    device_id,
    grow,
    relabelled_form,
    resign,
    rows,
    snapshot,
    sqlite_only,
    tmpfs,
    yn,
)


def _receipt(f: Field, bundle: Path) -> dict[str, Any]:
    hq_public = keys.load_hq_identity(f.hq).public()
    header = container.inspect_bundle(bundle.read_bytes())
    path = f.receipts / f"{header['device_id']}-{header['seq']}.ykr"
    return container.open_receipt(path.read_bytes(), hq_public)


def _rehash(rec: dict[str, Any]) -> None:
    from yntymak_cli.sync.hq import revision_hash

    rec["hash"] = revision_hash(rec)


# -- 1. a form definition is identified by its content -------------------------------------


@pytest.mark.slow
def test_a_redefined_form_version_is_refused_and_exports_keep_their_labels(f: Field) -> None:
    a1 = collect_in(f.a, f.tmp, "Ак-Суу")  # felt_tension: yes
    assert "1 new" in f.import_(f.bundle(f.a))

    # Device B collects with a definition of the same id and version, other labels.
    answers = f.tmp / "answers-Ош.yaml"
    answers.write_text((FORM.parent / "village_safety_answers.yaml").read_text("utf-8"), "utf-8")
    yn(f.b, "collect", relabelled_form(f.tmp), "--answers", answers, "--enumerator", "bakyt")
    b_bundle = f.bundle(f.b)
    out = f.import_(b_bundle, code=2)
    assert f"{b_bundle}: 0 new, 0 updated, 0 unchanged, 1 refused" in out
    assert "form village_safety version 2026-11-01: definition differs from the one HQ" in out
    # HQ keeps the first definition of that version, and nothing of B's record.
    (form,) = rows(f.hq, "SELECT hash FROM forms WHERE form_id = 'village_safety'")
    assert rows(f.hq, "SELECT uuid FROM submissions") == [{"uuid": a1}]

    # A's answer is exported with the labels it was collected with.
    out_dir = f.tmp / "export"
    yn(f.hq, "hq", "export", "village_safety", "--format", "csv", "--lang", "en", "-o", out_dir)
    (main,) = [p for p in out_dir.iterdir() if p.name.startswith("village_safety")]
    with main.open(encoding="utf-8-sig", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert "Village" in row and "Town" not in row
    assert "Yes" in row.values() and "No" not in [row[k] for k in row if "tension" in k]

    # B hears why, keeps its record, and stops sending it.
    receipt = _receipt(f, b_bundle)
    assert receipt["accepted"] == [] and len(receipt["refused"]) == 1
    out = yn(f.b, "bundle", "ack", f.receipts / f"{device_id(f.b)}-1.ykr")
    assert "HQ refused 1 record(s)" in out and "definition differs" in out
    assert "Nothing to send" in yn(f.b, "bundle", "create", "-o", f.tmp)


@pytest.mark.slow
def test_each_submission_is_exported_with_the_labels_it_was_collected_with(f: Field) -> None:
    """A new version (here with swapped yes/no labels) is accepted, but it labels only the
    answers collected with it: earlier versions keep their own labels in every format."""
    a1 = collect_in(f.a, f.tmp, "Ак-Суу")  # felt_tension: yes, resolved: no / yes
    newer = relabelled_form(f.tmp)
    newer.write_text(
        newer.read_text("utf-8").replace('version: "2026-11-01"', 'version: "2026-12-01"'),
        "utf-8",
    )
    answers = f.tmp / "answers-b.yaml"
    answers.write_text((FORM.parent / "village_safety_answers.yaml").read_text("utf-8"), "utf-8")
    b1 = yn(f.b, "collect", newer, "--answers", answers, "--enumerator", "bakyt")
    b1 = b1.strip().splitlines()[-1]
    f.import_(f.bundle(f.a), f.bundle(f.b))
    assert len(rows(f.hq, "SELECT hash FROM forms")) == 2  # every distinct definition kept

    out_dir = f.tmp / "csv"
    yn(f.hq, "hq", "export", "village_safety", "--format", "csv", "--lang", "en", "-o", out_dir)
    by_uuid: dict[str, dict[str, str]] = {}
    for path in out_dir.iterdir():
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                key = row.get("_uuid") or row.get("_submission__uuid")
                by_uuid.setdefault(key, {}).update(
                    {k: v for k, v in row.items() if "tension" in k or "Resolved" in k}
                )
    tension = next(k for k in by_uuid[a1] if "tension" in k)
    assert by_uuid[a1][tension] == "Yes"  # A's labels, not the newer version's
    assert by_uuid[b1][tension] == "No"  # B's own (swapped) labels

    target = f.tmp / "labels.json"
    yn(f.hq, "hq", "export", "village_safety", "--format", "json", "--lang", "en", "-o", target)
    exported = {
        s["uuid"]: s["answers"] for s in json.loads(target.read_text("utf-8"))["submissions"]
    }
    assert exported[a1]["felt_tension"] == "Yes" and exported[b1]["felt_tension"] == "No"
    assert [i["resolved"] for i in exported[a1]["incidents"]] == ["No", "Yes"]
    assert [i["resolved"] for i in exported[b1]["incidents"]] == ["Yes", "No"]


def test_two_definitions_of_one_version_in_one_bundle_first_wins(f: Field) -> None:
    collect_in(f.a, f.tmp, "Ак-Суу")
    answers = f.tmp / "answers-x.yaml"
    answers.write_text((FORM.parent / "village_safety_answers.yaml").read_text("utf-8"), "utf-8")
    yn(f.a, "collect", relabelled_form(f.tmp), "--answers", answers, "--enumerator", "aida")
    bundle = f.bundle(f.a)
    out = f.import_(bundle, code=2)
    assert "1 new, 0 updated, 0 unchanged, 1 refused" in out
    assert len(rows(f.hq, "SELECT hash FROM forms")) == 1


# -- 2. one refused record does not block the device's other records -----------------------


@pytest.mark.slow
def test_a_pre_claimed_uuid_is_refused_alone_and_not_sent_again(f: Field) -> None:
    b1 = collect_in(f.b, f.tmp, "Нарын")
    b2 = collect_in(f.b, f.tmp, "Ат-Башы")

    # Device A learnt b1's id (say, from a printed list) and submits it first.
    collect_in(f.a, f.tmp, "Ак-Суу")

    def claim(records: list[dict]) -> None:
        records[0]["uuid"] = b1
        _rehash(records[0])

    assert "1 new" in f.import_(resign(f, f.a, claim, "claim.ykb"))

    bundle = f.bundle(f.b)
    out = f.import_(bundle, code=2)
    assert f"{bundle}: 1 new, 0 updated, 0 unchanged, 1 refused" in out
    assert f"refused {b1} revision 1: submission {b1} belongs to device {device_id(f.a)}" in out
    assert {r["uuid"] for r in rows(f.hq, "SELECT uuid FROM submissions WHERE device_id = ?",
                                    device_id(f.b))} == {b2}  # fmt: skip
    receipt = _receipt(f, bundle)
    assert receipt["accepted"] == [{"uuid": b2, "revision": 1}]
    assert [(r["uuid"], r["revision"]) for r in receipt["refused"]] == [(b1, 1)]

    # A replay gets the same receipt.
    again = f.import_(bundle, code=2)
    assert f"{bundle}: 0 new, 0 updated, 1 unchanged, 1 refused" in again
    assert _receipt(f, bundle)["refused"] == receipt["refused"]

    out = yn(f.b, "bundle", "ack", f.receipts / f"{device_id(f.b)}-1.ykr")
    assert "Acknowledged 1 revision(s)" in out
    assert "HQ refused 1 record(s)" in out and b1 in out and "belongs to device" in out
    assert "Nothing to send" in yn(f.b, "bundle", "create", "-o", f.tmp)
    (kept,) = rows(f.b, "SELECT refused_at, refused_reason, answers FROM revisions WHERE uuid = ?",
                   b1)  # fmt: skip
    assert kept["refused_at"] and "belongs to device" in kept["refused_reason"]
    assert kept["answers"]  # the volunteer's data stays on the laptop
    # ... and the volunteer sees it: marked in the list, with HQ's reason in `show`.
    listed = yn(f.b, "submissions", "list", env={"COLUMNS": "200"})
    line = next(x for x in listed.splitlines() if x.startswith(b1[:8]))
    assert "refused by HQ" in line, listed
    shown = yn(f.b, "--lang", "en", "submissions", "show", b1)
    assert "HQ refused this revision" in shown and "belongs to device" in shown, shown


def test_receipts_without_refusals_keep_their_old_shape(f: Field) -> None:
    collect_in(f.a, f.tmp, "Ак-Суу")
    bundle = f.bundle(f.a)
    f.import_(bundle)
    assert sorted(_receipt(f, bundle)) == ["accepted", "bundle_id", "device_id",
                                           "format_version", "hq_fingerprint", "imported_at",
                                           "seq"]  # fmt: skip


def test_receipt_refused_entries_are_checked() -> None:
    hq = keys.create_hq_identity(Path(os.environ["YNTYMAK_HOME"]) / "hq-x")
    base = {"bundle_id": str(uuid_mod.uuid4()), "device_id": "a" * 16, "seq": 1, "accepted": []}
    entry = {"uuid": str(uuid_mod.uuid4()), "revision": 1, "reason": "no"}
    data = container.sign_receipt({**base, "refused": [entry]}, hq)
    assert container.open_receipt(data, hq.public())["refused"] == [entry]
    for bad in (
        [],
        [{**entry, "reason": ""}],
        [{**entry, "reason": "x" * (container.MAX_REFUSAL_REASON + 1)}],
        [{**entry, "extra": 1}],
        [entry, entry],
    ):
        with pytest.raises(ValueError, match="invalid receipt"):
            container.sign_receipt({**base, "refused": bad}, hq)
    both = {**base, "accepted": [{"uuid": entry["uuid"], "revision": 1}], "refused": [entry]}
    with pytest.raises(ValueError, match="repeats"):
        container.sign_receipt(both, hq)


# -- 3. answers are checked against their question's type -----------------------------------


HOSTILE: dict[str, Any] = {
    "deep": ("village", None),  # filled in below: nested hundreds of levels
    "objects": ("sources", [{"name": "land"}]),
    "too_many": ("sources", ["land"] * 150_000),
    "big_int": ("age", 2**64),
    "huge_int": ("age", int("9" * 4000)),  # parses (below Python's 4300 digits), not int64
    "bool_int": ("age", True),
    "float_int": ("age", 34.5),
    "long_text": ("village", "x" * 1_000_001),
    "not_a_choice": ("oblast", "atlantis"),
    "unknown": ("no_such_question", "x"),
    "repeat_not_list": ("incidents", {"incident_date": "2026-10-01"}),
    "repeat_scalar": ("incidents", ["2026-10-01"]),
    "nested_in_repeat": ("incidents", [{"resolved": {"a": {"b": 1}}}]),
    "note_value": ("thanks", "hello"),
    "long_enumerator": ("record:enumerator", "x" * 1001),  # metadata, not an answer
}


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.slow
def test_malformed_answers_are_refused_one_by_one(f: Field) -> None:
    collect_in(f.a, f.tmp, "Ак-Суу")
    names = list(HOSTILE)

    def poison(records: list[dict]) -> None:
        good = records[0]
        for name in names:
            rec = json.loads(json.dumps(good))
            rec["uuid"] = str(uuid_mod.uuid5(uuid_mod.NAMESPACE_URL, name))
            key, value = HOSTILE[name]
            if key.startswith("record:"):
                rec[key.removeprefix("record:")] = value
            else:
                rec["answers"][key] = _deep(300) if name == "deep" else value
            _rehash(rec)
            records.append(rec)

    bundle = resign(f, f.a, poison, "poison.ykb")
    # `bundle verify` tells HQ beforehand which records import would refuse.
    checked = yn(f.hq, "bundle", "verify", bundle)
    assert f"{len(names)} record(s) would be refused on import:" in checked
    assert "150000 choices selected, list source has 3" in checked
    out = f.import_(bundle, code=2)
    assert f"{bundle}: 1 new, 0 updated, 0 unchanged, {len(names)} refused" in out
    for name in names:
        uid = str(uuid_mod.uuid5(uuid_mod.NAMESPACE_URL, name))
        line = next((x for x in out.splitlines() if f"refused {uid} revision 1:" in x), None)
        assert line is not None and ("answer" in line or "enumerator" in line), (name, out)
    assert len(rows(f.hq, "SELECT uuid FROM submissions")) == 1
    assert "150000 choices selected, list source has 3" in out
    assert "'no_such_question': no such question" in out
    assert "Traceback" not in out


@pytest.mark.slow
def test_a_number_beyond_python_int_parsing_refuses_the_bundle_cleanly(f: Field) -> None:
    import sys

    collect_in(f.a, f.tmp, "Ак-Суу")

    def huge(records: list[dict]) -> None:
        records[0]["answers"]["age"] = int("9" * 5000)
        _rehash(records[0])

    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # only a hostile device lifts this to build the bundle
    try:
        bundle = resign(f, f.a, huge, "huge.ykb")
    finally:
        sys.set_int_max_str_digits(old)
    before = snapshot(f.hq)
    out = f.import_(bundle, code=2)
    assert f"{bundle}: refused:" in out and "4300 digits" in out and "Traceback" not in out
    assert snapshot(f.hq) == before


@pytest.mark.slow
def test_answers_at_the_edges_import_and_export_in_every_format(f: Field) -> None:
    collect_in(f.a, f.tmp, "Ак-Суу")
    edges = {
        "int_max": {"age": 2**63 - 1},
        "int_min": {"age": -(2**63)},
        "long_text": {"village": "ж" * 1_000_000},
        "all_choices": {"sources": ["pasture", "land", "water"]},
        "controls": {"village": "\x1b[31m[red]x[/red]\x00\u202e"},
        "no_repeat": {"incidents": []},
    }

    def edge(records: list[dict]) -> None:
        good = records[0]
        for name, answers in edges.items():
            rec = json.loads(json.dumps(good))
            rec["uuid"] = str(uuid_mod.uuid5(uuid_mod.NAMESPACE_URL, name))
            rec["answers"].update(answers)
            _rehash(rec)
            records.append(rec)

    out = f.import_(resign(f, f.a, edge, "edge.ykb"))
    assert f"{len(edges) + 1} new" in out
    for fmt, name in (("xlsx", "x.xlsx"), ("csv", "c"), ("json", "j.json"), ("jsonl", "l.jsonl")):
        for lang in (("--lang", "en"), ("--lang", "ru")):
            target = f.tmp / f"{'' if lang[1] == 'en' else '-'.join(lang)}{name}"
            text = yn(f.hq, "hq", "export", "village_safety", "--format", fmt, "-o", target, *lang)
            # --lang ru names the labels' language and the messages' (issue 18).
            ru = lang[1] == "ru"
            count = f"анкет: {len(edges) + 1}" if ru else f"{len(edges) + 1} submission(s)"
            assert count in text
    exported = json.loads((f.tmp / "j.json").read_text(encoding="utf-8"))["submissions"]
    ages = {s["answers"].get("age") for s in exported}
    assert {2**63 - 1, -(2**63)} <= ages


# -- 4. an unwritable receipts folder ----------------------------------------------------------


def test_unwritable_receipts_folder_imports_nothing(f: Field) -> None:
    """/proc is a folder nobody can create files in, root included (chmod does not stop
    root, which the tests run as)."""
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux /proc")
    collect_in(f.a, f.tmp, "Ак-Суу")
    collect_in(f.b, f.tmp, "Нарын")
    a, b = f.bundle(f.a), f.bundle(f.b)
    before = snapshot(f.hq)
    out = yn(f.hq, "hq", "import", a, b, "--receipts", "/proc", code=2)
    assert "/proc: cannot write receipts there" in out and "nothing was imported" in out
    assert snapshot(f.hq) == before


@pytest.mark.slow
def test_a_receipt_that_cannot_be_written_is_reported_and_the_rest_continue(
    f: Field, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yntymak_cli.errors import YntymakError
    from yntymak_cli.sync import hq as hq_mod

    collect_in(f.a, f.tmp, "Ак-Суу")
    collect_in(f.b, f.tmp, "Нарын")
    a, b = f.bundle(f.a), f.bundle(f.b)
    real = hq_mod.write_receipt
    calls: list[int] = []

    def flaky(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise YntymakError("cannot write receipt: No space left on device")
        return real(*args)

    monkeypatch.setattr(hq_mod, "write_receipt", flaky)
    out = f.import_(a, b, code=1)
    assert f"{a}: 1 new, 0 updated, 0 unchanged (1 submission(s), 1 revision(s)); " in out
    assert "receipt NOT written: cannot write" in out
    assert f"{b}: 1 new, 0 updated, 0 unchanged" in out
    assert "1 receipt(s) could not be written" in out
    monkeypatch.undo()
    # Importing again writes the missing receipt; the data is unchanged.
    assert f"{a}: 0 new, 0 updated, 1 unchanged" in f.import_(a)
    assert f.receipt(a).exists()


# -- 5. disk full -------------------------------------------------------------------------------


@pytest.mark.slow
def test_disk_full_is_reported_as_such_and_nothing_is_half_merged(f: Field) -> None:
    sqlite_only(f, "a full disk under HQ's SQLite file (PostgreSQL's disk is the server's)")
    collect_in(f.a, f.tmp, "Ак-Суу")

    def bulky(records: list[dict]) -> None:
        good = records[0]
        for i in range(8):
            rec = json.loads(json.dumps(good))
            rec["uuid"] = str(uuid_mod.uuid5(uuid_mod.NAMESPACE_URL, f"bulky-{i}"))
            rec["answers"]["village"] = os.urandom(150_000).hex()  # 300 kB, incompressible
            _rehash(rec)
            records.append(rec)

    bundle = resign(f, f.a, bulky, "bulky.ykb")
    with tmpfs(f.tmp / "small", "16m") as small:
        home = small / "hq"
        shutil.copytree(f.hq, home)
        st = os.statvfs(small)
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        # Room for the database as it is and a little more, not for 2.4 MB of answers.
        grow(small, str(used + 512 * 1024))
        before = snapshot(home)
        out = yn(home, "hq", "import", bundle, "--receipts", f.receipts, code=1)
        assert "disk full" in out, out
        assert "cannot rollback" not in out and "Traceback" not in out
        assert snapshot(home) == before
        assert not list(f.receipts.iterdir())


@pytest.fixture
def f(field: Field) -> Field:  # noqa: F811 - a shorter name for the shared fixture
    return field
