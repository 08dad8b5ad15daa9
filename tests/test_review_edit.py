"""HQ's review on the laptop (issue 12): `submissions edit UUID --answers FILE`, the lock on
an approved submission (`--reopen`), and HQ's comment shown before an edit of a submission
it returned, through the CLI and in a real terminal."""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

import pytest

from yntymak_cli.cli import app
from yntymak_cli.collect import prompts
from yntymak_cli.collect.prompts import ScriptedPrompter
from yntymak_cli.store import reviews
from yntymak_cli.store.db import Store, utcnow

from .helpers import ENTER, Term, collected, runner, show

COMMENT = "Q5 is empty, ask again"


def decide(
    uuid: str,
    status: str,
    comment: str | None = COMMENT,
    *,
    revision: int = 1,
    decision_id: int = 1,
    decided_at: str = "2026-11-30T10:00:00Z",
    reviewer: str = "aida",
) -> None:
    """A decision of HQ, as a receipt brings it to the laptop."""
    decision = reviews.Decision(decision_id, uuid, revision, status, comment, reviewer, decided_at)
    with Store.open() as store, store.write() as conn:
        reviews.receive(conn, [decision], utcnow())


def review_status(uuid: str) -> reviews.Decision | None:
    with Store.open() as store:
        return reviews.current(store.conn, uuid)


def write(tmp_path: Path, text: str, name: str = "fix.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def edit(uuid: str, *args: object):
    return runner.invoke(app, ["submissions", "edit", uuid, *map(str, args), "--lang", "en"])


def untouched(uuid: str) -> None:
    """Nothing written: still revision 1, no edit draft left behind."""
    record = show(uuid)
    assert record["revision"] == 1 and len(record["revisions"]) == 1
    with Store.open() as store:
        assert store.list_drafts() == []


@pytest.fixture
def script(monkeypatch):
    """A scripted prompter in place of the terminal's; returns it."""

    def install(*answers) -> ScriptedPrompter:
        prompter = ScriptedPrompter(answers)
        monkeypatch.setattr(prompts, "make_prompter", lambda lang: prompter)
        return prompter

    return install


# -- edit --answers ------------------------------------------------------------------------


def test_edit_answers_makes_revision_2_with_the_merged_answers(tmp_path):
    uuid = collected()
    before = show(uuid)["answers"]
    fix = write(
        tmp_path,
        "age: 40\n"
        "sources: [pasture]\n"
        "n_incidents: 1\n"
        'incidents:\n  - {incident_date: "2026-11-02", resolved: "yes"}\n',
    )
    result = edit(uuid[:8], "--answers", fix)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Finalised: submission {uuid}, revision 2."
    record = show(uuid)
    assert record["revision"] == 2 and len(record["revisions"]) == 2
    answers = record["answers"]
    # Given in the file: replaced; the repeat as a whole.
    assert answers["age"] == 40 and answers["sources"] == ["pasture"]
    assert answers["incidents"] == [{"incident_date": "2026-11-02", "resolved": "yes"}]
    # Not given: kept as they were.
    for name in ("oblast", "district", "village", "felt_tension", "location"):
        assert answers[name] == before[name], name
    # Computed again, not copied: one source now.
    assert before["n_sources"] == 2 and answers["n_sources"] == 1
    assert answers["enumerator"] == "Aida"
    assert record["instance_name"] == f"Кара-Суу {answers['today']}"


def test_answers_a_change_makes_irrelevant_are_left_out(tmp_path):
    uuid = collected()
    result = edit(uuid, "--answers", write(tmp_path, "felt_tension: no\n"))
    assert result.exit_code == 0, result.output
    answers = show(uuid)["answers"]
    assert answers["felt_tension"] == "no"
    assert not {"sources", "n_incidents", "incidents"} & set(answers)
    assert answers["n_sources"] == 0 and answers["village"] == "Кара-Суу"


HOUSEHOLD = """\
id: household
version: "1"
title: Household
questions:
  - {name: started, type: start}
  - {name: village, type: text, label: Village, required: true}
  - name: members
    type: repeat
    label: Member
    questions:
      - {name: age, type: integer, label: Age}
      - {name: adult, type: calculate, calculation: "if(${age} >= 18, 'yes', 'no')"}
  - {name: n_members, type: calculate, calculation: "count(${members})"}
"""


def test_calculations_inside_a_kept_repeat_are_computed_again(tmp_path, make_form):
    form = make_form(HOUSEHOLD)
    first = write(tmp_path, "village: A\nmembers: [{age: 30}, {age: 12}]\n", "first.yaml")
    uuid = collected(form, first)
    assert show(uuid)["answers"]["members"] == [
        {"age": 30, "adult": "yes"},
        {"age": 12, "adult": "no"},
    ]
    # The stored calculation inside each instance is not taken as a given value.
    result = edit(uuid, "--answers", write(tmp_path, "village: B\n"))
    assert result.exit_code == 0, result.output
    answers = show(uuid)["answers"]
    assert answers["village"] == "B" and answers["n_members"] == 2
    assert answers["members"] == [{"age": 30, "adult": "yes"}, {"age": 12, "adult": "no"}]
    result = edit(uuid, "--answers", write(tmp_path, "members: [{age: 20}]\n"))
    assert result.exit_code == 0, result.output
    answers = show(uuid)["answers"]
    assert answers["members"] == [{"age": 20, "adult": "yes"}] and answers["n_members"] == 1
    assert answers["village"] == "B" and show(uuid)["revision"] == 3


def test_the_interviews_date_and_enumerator_survive_a_scripted_edit(tmp_path):
    # The interview was on 1 November by Aida; a fix by someone else today changes neither
    # the interview's date (nor its instance name, made from it) nor who interviewed.
    uuid = collected()
    with Store.open() as store, store.write() as conn:
        row = conn.execute("SELECT answers FROM submissions WHERE uuid = ?", [uuid]).fetchone()
        answers = json.loads(row[0])
        answers["today"] = "2026-11-01"
        conn.execute(
            "UPDATE submissions SET answers = ? WHERE uuid = ?", [json.dumps(answers), uuid]
        )
    result = runner.invoke(
        app,
        ["submissions", "edit", uuid, "--answers", str(write(tmp_path, "age: 43\n")),
         "--enumerator", "Bolot", "--lang", "en"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = show(uuid)
    assert record["answers"]["age"] == 43
    assert record["answers"]["today"] == "2026-11-01"
    assert record["answers"]["enumerator"] == "Aida"
    assert record["instance_name"] == "Кара-Суу 2026-11-01"
    assert record["enumerator"] == "Bolot"  # who made this revision


BAD_FILES = {
    "constraint": ("fix.yaml", "village: X\nage: 7\n", "fix.yaml:2: age: Between 14 and 99"),
    "unknown question": ("fix.yaml", "vilage: X\n", "fix.yaml:1: vilage: "),
    "calculated value": ("fix.yaml", "n_sources: 5\n", "fix.yaml:1: n_sources: "),
    "two submissions": (
        "fix.jsonl",
        '{"age": 30}\n{"age": 31}\n',
        "fix.jsonl holds 2 submissions; `submissions edit --answers` takes the answers of "
        "exactly one",
    ),
    "not a mapping": ("fix.yaml", "- age: 30\n", "fix.yaml"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_answers_file_exit_2_one_line_nothing_written(tmp_path, case):
    name, text, expected = BAD_FILES[case]
    uuid = collected()
    result = edit(uuid, "--answers", write(tmp_path, text, name))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.output
    untouched(uuid)


def test_edit_answers_refuses_void_purged_and_an_edit_in_progress(tmp_path):
    fix = write(tmp_path, "age: 40\n")
    voided = collected()
    assert runner.invoke(app, ["submissions", "void", voided, "--reason", "dup"]).exit_code == 0
    result = edit(voided, "--answers", fix)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: submission {voided} is void and cannot be edited"
    # Purged (its answers erased after HQ's receipt), as `submissions purge` leaves it.
    purged = collected()
    with Store.open() as store, store.write() as conn:
        conn.execute(
            "UPDATE submissions SET answers = NULL, purged_at = ? WHERE uuid = ?",
            [utcnow(), purged],
        )
    result = edit(purged, "--answers", fix)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: submission {purged} was purged from this device"
    # An interactive edit left unfinished is not overwritten.
    editing = collected()
    with Store.open() as store:
        store.open_edit(editing, {"answers": {"village": "B"}}, "Aida", "dev1", {})
    result = edit(editing, "--answers", fix)
    assert result.exit_code == 2
    assert f"yntymak resume {editing}" in result.stderr
    with Store.open() as store:
        assert store.get_draft(editing).state == {"answers": {"village": "B"}}
    assert show(editing)["revision"] == 1


# -- the lock on an approved submission ------------------------------------------------------


def test_approved_submission_is_locked_until_reopen(tmp_path, script):
    uuid = collected()
    decide(uuid, "approved", None, decided_at="2026-12-01T09:30:00Z")
    fix = write(tmp_path, "age: 40\n")
    refused = (
        f"Error: submission {uuid} was approved at HQ on 2026-12-01; add --reopen to edit it "
        "anyway (it is then pending review again)"
    )
    result = edit(uuid, "--answers", fix)
    assert result.exit_code == 2
    assert result.stderr.strip() == refused
    # Interactive too, before any prompt or draft.
    prompter = script()
    result = edit(uuid)
    assert result.exit_code == 2
    assert result.stderr.strip() == refused
    assert prompter.asked == []
    untouched(uuid)
    assert review_status(uuid).status == "approved"

    result = edit(uuid, "--answers", fix, "--reopen")
    assert result.exit_code == 0, result.output
    assert show(uuid)["revision"] == 2 and show(uuid)["answers"]["age"] == 40
    assert review_status(uuid) is None  # the new revision is pending review


def test_reopen_an_approved_submission_interactively(script):
    uuid = collected()
    decide(uuid, "approved", None)
    prompter = script(
        ("review", "change"), ("jump", ("age",)), ("age", "41"), ("review", "finalise")
    )
    result = edit(uuid, "--reopen")
    assert result.exit_code == 0, result.output
    assert prompter.script == []
    assert show(uuid)["revision"] == 2 and show(uuid)["answers"]["age"] == 41
    assert review_status(uuid) is None


def test_an_approval_of_an_older_revision_does_not_lock(tmp_path):
    uuid = collected()
    assert edit(uuid, "--answers", write(tmp_path, "age: 40\n")).exit_code == 0
    decide(uuid, "approved", None, revision=1)  # approved what revision 2 replaced
    result = edit(uuid, "--answers", write(tmp_path, "age: 41\n"))
    assert result.exit_code == 0, result.output
    assert show(uuid)["revision"] == 3


# -- HQ's comment ----------------------------------------------------------------------------


def test_rejected_edit_answers_shows_the_comment_first(tmp_path):
    uuid = collected()
    decide(uuid, "rejected")
    result = edit(uuid, "--answers", write(tmp_path, "age: 40\n"))
    assert result.exit_code == 0, result.output
    note = f"HQ returned this submission on 2026-11-30 (aida): {COMMENT}"
    assert result.stderr.strip() == note
    assert result.output.index(note) < result.output.index("Finalised: submission")
    assert review_status(uuid) is None  # fixed: pending again


def test_hq_comment_is_plain_text(tmp_path):
    uuid = collected()
    comment = "[bold red]check[/] \x1b[2J\x1b]0;pwned\x07 Q5\nagain"
    decide(uuid, "on_hold", comment, reviewer="x\x1b[31m")
    result = edit(uuid, "--answers", write(tmp_path, "age: 40\n"))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert result.stderr == (
        "HQ put this submission on hold on 2026-11-30 (x^[[31m): "
        "[bold red]check[/] ^[[2J^[]0;pwned^G Q5\nagain\n"
    )


def test_rejected_interactive_edit_shows_the_comment_before_the_review(script):
    uuid = collected()
    decide(uuid, "rejected", "Village misspelt [see notes]")
    script(("review", "finalise"))
    result = edit(uuid)
    assert result.exit_code == 0, result.output
    note = "HQ returned this submission on 2026-11-30 (aida): Village misspelt [see notes]"
    assert note in result.stdout
    assert result.stdout.index(note) < result.stdout.index("Check the answers")
    assert review_status(uuid) is None


def test_a_comment_in_kyrgyz_and_a_decision_without_one(tmp_path):
    uuid = collected()
    decide(uuid, "rejected", None)
    fix = write(tmp_path, "age: 40\n")
    result = runner.invoke(
        app, ["submissions", "edit", uuid, "--answers", str(fix), "--lang", "ky"]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        "Борбордук кеңсе бул анкетаны 2026-11-30 күнү кайтарды (aida): (түшүндүрмө жазылган эмес)"
    )


# -- a real terminal -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")
def test_rejected_edit_in_a_real_terminal_shows_the_comment_first(yntymak_home):
    pytest.importorskip("pexpect")
    uuid = collected()
    decide(uuid, "rejected", "Q5 is empty [b]ask again[/b]")
    t = Term(yntymak_home, "submissions", "edit", uuid[:8], "--lang", "en")
    try:
        t.expect(re.escape("HQ returned this submission on 2026-11-30 (aida): ") + r"Q5 is empty")
        t.expect("Check the answers")
        t.answer("What next?", ENTER)  # Finalise and save
        t.expect(rf"Finalised: submission {uuid}, revision 2\.")
        assert t.finish() == 0
    finally:
        if t.child.isalive():
            t.child.kill(signal.SIGKILL)
    text = t.text
    assert "Q5 is empty [b]ask again[/b]" in text  # markup shown, never interpreted
    assert text.index("HQ returned this submission") < text.index("Check the answers")
    assert show(uuid)["revision"] == 2
    assert review_status(uuid) is None
    assert json.loads(runner.invoke(app, ["submissions", "show", uuid, "--json"]).stdout)
