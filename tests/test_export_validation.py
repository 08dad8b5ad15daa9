"""HQ's review in exports: `_validation_status` and `_review_comment` (Kobo's values and
place), JSON's `validation_status` / `review_comment`, and `--status` by review status."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from yntymak_cli.cli import app
from yntymak_cli.store.db import Store

from .helpers import Field, collect_in, collected, runner, yn

KOBO = {
    "approved": "validation_status_approved",
    "rejected": "validation_status_not_approved",
    "on_hold": "validation_status_on_hold",
}
TAIL = [
    "_id",
    "_uuid",
    "_submission_time",
    "_enumerator",
    "_device_id",
    "_form_version",
    "_status",
    "_validation_status",
    "_review_comment",
    "__version__",
    "_index",
]
FORMULA = '=HYPERLINK("http://example.org","click")'


def decide(uuid: str, status: str, comment: str | None, revision: int = 1, home=None) -> None:
    from yntymak_cli.store import hq as hq_store
    from yntymak_cli.store.hqdb import HqDb

    from .helpers import hq_db

    path = None if home is None else Path(home) / "yntymak.db"
    opened = hq_db(Path(home)) if home is not None else HqDb.over_store(Store.open(path))
    with opened as db, db.write() as conn:
        hq_store.add_decision(conn, uuid, revision, status, comment, "aida", "2026-11-30T10:00:00Z")


def export(*args: Any, command: tuple[str, ...] = ("export",)):
    # English messages: village_safety's default language (ky) would otherwise be used.
    return runner.invoke(app, ["--lang", "en", *command, "village_safety", *map(str, args)])


@pytest.fixture
def reviewed() -> dict[str, str]:
    """Four final submissions, by the review status their current revision has."""
    uuids = {name: collected() for name in ("approved", "rejected", "on_hold", "pending")}
    decide(uuids["approved"], "rejected", "first look: age?")  # superseded by the next
    decide(uuids["approved"], "approved", "looks good")
    decide(uuids["rejected"], "rejected", "fix the village name")
    decide(uuids["on_hold"], "on_hold", None)
    return uuids


def xlsx_rows(path: Path) -> tuple[list[str], dict[str, dict[str, Any]]]:
    ws = openpyxl.load_workbook(path).worksheets[0]  # the main sheet (the title)
    header = [c.value for c in ws[1]]
    rows = [dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]
    return header, {row["_uuid"]: row for row in rows}


def new_revision(uuid: str) -> None:
    """A volunteer's fix: the submission's next revision, finalised."""
    with Store.open() as store:
        record = store.get_record(uuid)
        answers = {**record["answers"], "village": "Жаңы-Айыл"}
        store.open_edit(uuid, {"answers": answers}, "aida", record["device_id"], {})
        draft = store.get_draft(uuid)
        assert store.finalise(draft, answers, "Жаңы-Айыл") == 2


def test_xlsx_columns_sit_after_status_with_kobo_values(reviewed, tmp_path):
    out = tmp_path / "vs.xlsx"
    result = export("-o", out)
    assert result.exit_code == 0, result.output
    header, rows = xlsx_rows(out)
    assert header[-len(TAIL) :] == TAIL
    assert header.count("_validation_status") == header.count("_review_comment") == 1
    cells = {
        name: (rows[u]["_validation_status"], rows[u]["_review_comment"])
        for name, u in reviewed.items()
    }
    assert cells == {
        "approved": ("validation_status_approved", "looks good"),  # the newest decision
        "rejected": ("validation_status_not_approved", "fix the village name"),
        "on_hold": ("validation_status_on_hold", None),
        "pending": (None, None),
    }
    # The repeat sheet links as before: the new columns are the main table's only.
    inc = openpyxl.load_workbook(out)["incidents"]
    assert "_validation_status" not in [c.value for c in inc[1]]


def test_a_newer_revision_after_a_decision_is_pending(tmp_path):
    uuid = collected()
    decide(uuid, "rejected", "village is wrong")
    new_revision(uuid)
    out = tmp_path / "vs.xlsx"
    assert export("-o", out).exit_code == 0
    _, rows = xlsx_rows(out)
    assert (rows[uuid]["_validation_status"], rows[uuid]["_review_comment"]) == (None, None)
    assert rows[uuid]["village"] == "Жаңы-Айыл"
    # ...until HQ decides on that revision.
    decide(uuid, "approved", "fixed", revision=2)
    assert export("-o", out).exit_code == 0
    _, rows = xlsx_rows(out)
    assert rows[uuid]["_validation_status"] == "validation_status_approved"
    assert rows[uuid]["_review_comment"] == "fixed"


def test_csv_shows_the_same(reviewed, tmp_path):
    out = tmp_path / "csv"
    assert export("--format", "csv", "-o", out).exit_code == 0
    with open(out / "village_safety.csv", encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = {row["_uuid"]: row for row in reader}
    assert header[-len(TAIL) :] == TAIL
    got = {
        name: (rows[u]["_validation_status"], rows[u]["_review_comment"])
        for name, u in reviewed.items()
    }
    assert got == {
        "approved": ("validation_status_approved", "looks good"),
        "rejected": ("validation_status_not_approved", "fix the village name"),
        "on_hold": ("validation_status_on_hold", ""),
        "pending": ("", ""),
    }


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_and_jsonl_carry_validation_status_and_comment(reviewed, tmp_path, fmt):
    out = tmp_path / f"vs.{fmt}"
    # Values stay KoboToolbox's whatever --lang says (programs read them).
    assert export("--format", fmt, "-o", out, "--lang", "ru").exit_code == 0
    text = out.read_text(encoding="utf-8")
    if fmt == "json":
        items = json.loads(text)["submissions"]
    else:
        items = [json.loads(line) for line in text.splitlines()]
    by_uuid = {item["uuid"]: item for item in items}
    for item in items:
        keys = list(item)
        assert keys.index("validation_status") == keys.index("void_reason") + 1
        assert keys.index("review_comment") == keys.index("validation_status") + 1
    got = {
        name: (by_uuid[u]["validation_status"], by_uuid[u]["review_comment"])
        for name, u in reviewed.items()
    }
    assert got == {
        "approved": ("validation_status_approved", "looks good"),
        "rejected": ("validation_status_not_approved", "fix the village name"),
        "on_hold": ("validation_status_on_hold", None),
        "pending": (None, None),
    }


@pytest.mark.parametrize("command", [("export",), ("hq", "export")])
@pytest.mark.parametrize("status", ["approved", "rejected", "on_hold", "pending"])
def test_status_keeps_one_review_status(reviewed, tmp_path, command, status):
    out = tmp_path / "vs.jsonl"
    result = export("--status", status, "-o", out, command=command)
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["uuid"] for line in lines] == [reviewed[status]]
    assert result.stdout.startswith("1 submission(s) -> ")


def test_final_and_all_keep_every_review_status(reviewed, tmp_path):
    collect_draft()
    for status, n in (("final", 4), ("all", 5)):
        out = tmp_path / f"{status}.jsonl"
        assert export("--status", status, "-o", out).exit_code == 0
        items = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert len(items) == n
        assert {i["uuid"] for i in items} >= set(reviewed.values())


def collect_draft() -> None:
    with Store.open() as store:
        form = store.form_versions("village_safety")[0]
        store.create_draft(form, {"answers": {}}, "aida", "dev-1", {})


def test_a_newer_revision_moves_between_status_filters(tmp_path):
    uuid = collected()
    decide(uuid, "approved", None)
    out = tmp_path / "vs.jsonl"

    def kept(status: str) -> list[str]:
        assert export("--status", status, "-o", out).exit_code == 0
        return [json.loads(line)["uuid"] for line in out.read_text("utf-8").splitlines()]

    assert (kept("approved"), kept("pending")) == ([uuid], [])
    new_revision(uuid)
    assert (kept("approved"), kept("pending")) == ([], [uuid])


def test_counts_agree_with_the_records_for_every_status(reviewed):
    voided = collected()
    decide(voided, "approved", "ok")
    runner.invoke(app, ["submissions", "void", voided, "--reason", "duplicate"])
    collect_draft()
    with Store.open() as store:
        for review in (None, "pending", "approved", "rejected", "on_hold"):
            for void in (False, True):
                for drafts in (False, True):
                    options = dict(include_void=void, include_drafts=drafts, review=review)
                    records = list(store.iter_records("village_safety", **options))
                    assert store.count_records("village_safety", **options) == len(records)
                    if review is not None:
                        expected = review if review != "pending" else None
                        assert {r["review_status"] for r in records} == {expected}
        approved = store.iter_records("village_safety", include_void=True, review="approved")
        assert {r["uuid"] for r in approved} == {reviewed["approved"], voided}


def test_unknown_status_is_one_line_exit_2(tmp_path):
    collected()
    result = export("--status", "aproved", "-o", tmp_path / "x.xlsx")
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    for allowed in ("final", "all", "pending", "approved", "rejected", "on_hold"):
        assert allowed in line
    assert "'aproved'" in line
    assert not (tmp_path / "x.xlsx").exists()


@pytest.mark.parametrize("text", [FORMULA, "=1+1", "+7 700", "@SUM(A1)", "-2+3", "#N/A"])
def test_a_comment_is_text_never_a_formula(tmp_path, text):
    uuid = collected()
    decide(uuid, "rejected", text)
    out = tmp_path / "vs.xlsx"
    assert export("-o", out).exit_code == 0
    ws = openpyxl.load_workbook(out).worksheets[0]
    header = [c.value for c in ws[1]]
    cell = ws.cell(row=2, column=header.index("_review_comment") + 1)
    assert cell.data_type == "s" and cell.value == text
    csv_dir = tmp_path / "csv"
    assert export("--format", "csv", "-o", csv_dir).exit_code == 0
    with open(csv_dir / "village_safety.csv", encoding="utf-8-sig", newline="") as fh:
        [row] = list(csv.DictReader(fh))
    comment = row["_review_comment"]
    assert comment in (text, "'" + text) and not comment.startswith(("=", "+", "-", "@"))


def test_a_comment_with_control_characters_stays_readable(tmp_path):
    uuid = collected()
    decide(uuid, "on_hold", "call back\x07 later\nplease")
    out = tmp_path / "vs.xlsx"
    assert export("-o", out).exit_code == 0
    _, rows = xlsx_rows(out)
    assert rows[uuid]["_review_comment"] == "call back\ufffd later\nplease"


@pytest.mark.parametrize(
    ("lang", "headers", "words"),
    [
        (
            "ru",
            ("Статус проверки", "Комментарий проверяющего", "Статус"),
            {"approved": "одобрена", "rejected": "не одобрена", "on_hold": "отложена"},
        ),
        (
            "ky",
            ("Текшерүүнүн жыйынтыгы", "Текшерүүчүнүн пикири", "Абалы"),
            {
                "approved": "жактырылган",
                "rejected": "жактырылган эмес",
                "on_hold": "кийинкиге калтырылган",
            },
        ),
    ],
)
def test_lang_translates_headers_and_values_like_status(reviewed, tmp_path, lang, headers, words):
    out = tmp_path / "vs.xlsx"
    assert export("-o", out, "--lang", lang).exit_code == 0
    ws = openpyxl.load_workbook(out).worksheets[0]
    header = [c.value for c in ws[1]]
    validation, comment, status = headers
    assert header.index(validation) == header.index(status) + 1
    assert header.index(comment) == header.index(status) + 2
    assert header[header.index(comment) + 1 :] == ["__version__", "_index"]
    assert "_validation_status" not in header and "_review_comment" not in header
    rows = [dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]
    by_uuid = {row["_uuid"]: row for row in rows}
    for name, word in words.items():
        assert by_uuid[reviewed[name]][validation] == word
    assert by_uuid[reviewed["approved"]][comment] == "looks good"  # HQ's text, as written
    assert by_uuid[reviewed["pending"]][validation] is None


def test_bundles_never_carry_the_review(reviewed):
    from yntymak_cli.store.device_sync import pending_records

    with Store.open() as store:
        payload = pending_records(store)
    assert payload and all(
        "review_status" not in record and "review_comment" not in record for record in payload
    )


def test_hq_export_shows_decisions_made_at_hq(field: Field):
    a1 = collect_in(field.a, field.tmp, "Ак-Суу")
    a2 = collect_in(field.a, field.tmp, "Ош")
    assert "2 new" in field.import_(field.bundle(field.a))
    decide(a1, "approved", "=ok", home=field.hq)
    out = field.tmp / "hq.jsonl"
    yn(field.hq, "hq", "export", "village_safety", "--status", "approved", "-o", out)
    [item] = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert (item["uuid"], item["validation_status"], item["review_comment"]) == (
        a1,
        "validation_status_approved",
        "=ok",
    )
    yn(field.hq, "hq", "export", "village_safety", "--status", "pending", "-o", out)
    assert [json.loads(line)["uuid"] for line in out.read_text("utf-8").splitlines()] == [a2]
