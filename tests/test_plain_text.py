"""Text from forms, answers, bundles and files reaches the terminal as plain text.

Rich markup (`[/x]` crashed `submissions list`, `Aida [team 2]` printed as `Aida`), ANSI/OSC
escape sequences and lone surrogates are fed through every command that prints data; each
must finish with its usual exit code, show the text literally and send no raw ESC.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from yntymak_cli.cli import app

from .helpers import runner

WIDE = {"COLUMNS": "200"}  # rich wraps table cells to the terminal width

OSC = "\x1b]0;title\x07"  # sets the terminal's title when printed raw
OSC_SHOWN = "^[]0;title^G"  # what plain() prints instead
SURROGATE = "\udcff"  # cannot be encoded to any terminal

FORM = textwrap.dedent(
    r"""
    id: hostile
    version: "1 [red]"
    title: "Title [/x] [red]red\x1b]0;title\x07"
    instance_name: ${village}
    questions:
      - name: village
        type: text
        label: "Village [/x] [red] Aida [team 2] \x1b]0;title\x07"
        hint: "hint [/x] \x1b[31m"
        constraint: string-length(.) < 200
        constraint_message: "too long [/x] \x1b]0;title\x07"
      - name: pick
        type: select_one opts
        label: "[red]pick"
    choices:
      opts:
        - {name: a, label: "[/x] \x1b]0;title\x07"}
        - {name: b, label: "Aida [team 2]"}
    """
)
ENUMERATORS = ["[/x]", "Aida [team 2]", OSC, "[red]"]


def run(home: Path, *args: Any, code: int = 0) -> str:
    result = runner.invoke(app, ["--home", str(home), *map(str, args)], env=WIDE)
    assert result.exit_code == code, (args, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.output


def yn(home: Path, *args: Any, code: int = 0) -> str:
    """Run a command; its output holds no raw ESC and no internal error."""
    out = run(home, *args, code=code)
    assert "\x1b" not in out, (args, out)
    assert "Internal error" not in out, out
    return out


@dataclass
class Field:
    tmp: Path
    device: Path
    hq: Path
    form: Path
    bundle: Path
    uuids: list[str]


@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Field]:
    tmp = tmp_path_factory.mktemp("plain")
    device, hq = tmp / "device", tmp / "hq"
    form = tmp / "hostile.yaml"
    form.write_text(FORM, encoding="utf-8")
    uuids = []
    for i, name in enumerate(ENUMERATORS):
        answers = tmp / f"answers{i}.json"
        village = f"V{i} [/x] Aida [team 2] {OSC}"
        answers.write_text(json.dumps({"village": village, "pick": "ab"[i % 2]}), "utf-8")
        out = run(device, "collect", form, "--answers", answers, "--enumerator", name)
        uuids.append(out.strip().splitlines()[-1])
    # A draft: an edit in progress, by an enumerator with a hostile name.
    from yntymak_cli.store.db import Store

    store = Store(device / "yntymak.db")
    try:
        record = store.get_record(uuids[0])
        state = {"answers": record["answers"]}
        store.open_edit(uuids[0], state, f"Aida [team 2] [/x] {OSC}", record["device_id"], {})
    finally:
        store.close()
    run(hq, "hq", "init", "-o", tmp / "hq.pub")
    run(device, "keys", "export", "-o", tmp / "device.pub")
    name = f"Aida [team 2] [/x] {OSC}"
    run(hq, "hq", "enroll", tmp / "device.pub", "--name", name, "--district", f"[red]{OSC}")
    run(device, "keys", "trust-hq", tmp / "hq.pub")
    run(device, "bundle", "create", "-o", tmp)
    (bundle,) = tmp.glob("*.ykb")
    yield Field(tmp, device, hq, form, bundle, uuids)


def _shown(out: str, *literals: str) -> None:
    for literal in literals:
        assert literal in out, (literal, out)


@pytest.mark.slow
def test_drafts(field: Field) -> None:
    _shown(yn(field.device, "drafts"), "Aida [team 2] [/x]", OSC_SHOWN)


def test_submissions_list(field: Field) -> None:
    out = yn(field.device, "submissions", "list")
    _shown(out, "[/x]", "Aida [team 2]", "[red]", OSC_SHOWN, "V0 [/x]")
    data = json.loads(yn(field.device, "submissions", "list", "--json"))
    assert set(ENUMERATORS) <= {r["enumerator"] for r in data}  # JSON keeps the exact text


def test_submissions_show(field: Field) -> None:
    for uuid, name in zip(field.uuids, ENUMERATORS, strict=True):
        out = yn(field.device, "submissions", "show", uuid)
        _shown(out, "Aida [team 2]", "[/x]")
        if name != OSC:
            _shown(out, f"enumerator: {name}")
        data = json.loads(yn(field.device, "submissions", "show", uuid, "--json"))
        assert data["enumerator"] == name


def test_forms_show(field: Field, tmp_path: Path) -> None:
    out = yn(field.device, "forms", "show", field.form, "--lang", "en")
    _shown(out, "Title [/x] [red]red", "Village [/x] [red] Aida [team 2]", OSC_SHOWN)
    _shown(out, "[red]pick", "1 [red]", "a=[/x]", "b=Aida [team 2]")
    # A lone surrogate in a label (a file that cannot be stored, but can be shown).
    odd = tmp_path / "odd.yaml"
    odd.write_text(FORM.replace("[red]pick", r"[red]pick \udcff"), "utf-8")
    _shown(yn(field.device, "forms", "show", odd), "[red]pick \\udcff")


def test_forms_validate_echoes_names_as_text(field: Field, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        FORM.replace(
            "instance_name: ${village}", r'summary_by: "[/x] Aida [team 2] \x1b]0;title\x07 \udcff"'
        ),
        "utf-8",
    )
    out = yn(field.device, "forms", "validate", bad, code=2)
    _shown(out, "[/x] Aida [team 2]", OSC_SHOWN, "\\udcff")
    _shown(yn(field.device, "forms", "validate", field.form), ": ok")


def test_errors_echo_answers_as_text(field: Field, tmp_path: Path) -> None:
    answers = tmp_path / "bad.json"
    answers.write_text(
        json.dumps({"village": "v", "pick": f"Aida [team 2] [/x] {OSC} {SURROGATE}"}), "utf-8"
    )
    out = yn(field.device, "collect", field.form, "--answers", answers, code=2)
    _shown(out, "Aida [team 2] [/x]", OSC_SHOWN, "\\udcff")
    # A constraint message written by the form's author.
    answers.write_text(json.dumps({"village": "v" * 300}), "utf-8")
    out = yn(field.device, "collect", field.form, "--answers", answers, code=2)
    _shown(out, "too long [/x]", OSC_SHOWN)


def test_hq_enroll_echoes_the_name_as_text(tmp_path: Path) -> None:
    run(tmp_path / "device", "keys", "export", "-o", tmp_path / "device.pub")
    name = f"Aida [team 2] [/x] {OSC}"
    out = yn(tmp_path / "hq", "hq", "enroll", tmp_path / "device.pub", "--name", name)
    _shown(out, f"(Aida [team 2] [/x] {OSC_SHOWN})")


def test_hq_sees_device_text_as_text(field: Field) -> None:
    out = yn(field.hq, "bundle", "verify", field.bundle)
    _shown(out, "Aida [team 2] [/x]", OSC_SHOWN)
    json.loads(yn(field.hq, "bundle", "verify", field.bundle, "--json"))
    receipts = field.tmp / "receipts"
    receipts.mkdir()
    yn(field.hq, "hq", "import", field.bundle, "--receipts", receipts)
    out = yn(field.hq, "hq", "status")
    _shown(out, "[/x]", "Aida [team 2]", "[red]", OSC_SHOWN, "hostile: 4")
    data = json.loads(yn(field.hq, "hq", "status", "--json"))
    (device,) = data["devices"]
    assert sorted(device["enumerators"]) == sorted(ENUMERATORS)
    assert device["name"] == f"Aida [team 2] [/x] {OSC}"


def test_export_lines(field: Field) -> None:
    out = yn(field.device, "export", "hostile", "-o", field.tmp / "export.xlsx")
    _shown(out, "4 submission(s)")


def test_json_output_escapes_what_plain_would_show() -> None:
    from yntymak_cli.plain import json_text

    value = {"name": f"Aida [team 2] {OSC} \x9b31m \u202e {SURROGATE}"}
    shown = json_text(json.dumps(value, ensure_ascii=False))
    assert shown.isprintable() and json.loads(shown) == value


def test_the_interactive_survey_prints_labels_as_text(field: Field, monkeypatch, capsys) -> None:
    """Labels, hints, the constraint message and the review go through plain()."""
    from yntymak_cli.collect import prompts
    from yntymak_cli.collect.interactive import run_survey
    from yntymak_cli.collect.session import Session
    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.store.db import Store

    monkeypatch.setenv("COLUMNS", "200")
    form = load_form(field.form).require()
    store = Store(field.tmp / "survey.db")
    try:
        session = Session.start(store, form, lang="en", enumerator="[/x]", device_id="d")
        script = prompts.ScriptedPrompter(["x" * 300, "ok [/x]", "a", "finalise"])
        assert run_survey(session, "en", prompter=script) == 0
    finally:
        store.close()
    out = capsys.readouterr().out
    assert "\x1b" not in out
    _shown(out, "hint [/x] ^[[31m", "too long [/x]", OSC_SHOWN, "ok [/x]")
    # The prompts' own titles (what questionary draws) are plain too.
    steps = {s.where: s for s in script.steps}
    assert prompts.step_title(steps["village"], "en").startswith(
        "Village [/x] [red] Aida [team 2] ^[]0;title^G"
    )


def test_no_raw_escape_in_a_database_row_reaches_the_screen(field: Field) -> None:
    """Whatever a row holds (an older version, a hand-edited database), it prints plain."""
    conn = sqlite3.connect(field.device / "yntymak.db")
    try:
        conn.execute(
            "UPDATE submissions SET enumerator = ? WHERE uuid = ?",
            [f"\x9b31m{OSC}\u202e[/x]", field.uuids[3]],
        )
        conn.commit()
    finally:
        conn.close()
    out = yn(field.device, "submissions", "list")
    assert "\x9b" not in out and "\u202e" not in out
    _shown(out, "\\u009b31m^[]0;title^G\\u202e[/x]")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")
def test_a_real_terminal_gets_no_escape_sequence_from_the_form(tmp_path: Path) -> None:
    """questionary/prompt_toolkit prompts, the echo lines and the review, in a pty."""
    pytest.importorskip("pexpect")
    from .helpers import ENTER, Term

    form = tmp_path / "hostile.yaml"
    form.write_text(FORM, encoding="utf-8")
    t = Term(tmp_path / "home", "collect", str(form), "--enumerator", "[/x]")
    t.answer("Village [/x] [red] Aida [team 2] ^[]0;title^G", "v [/x]" + ENTER)
    t.answer("[red]pick", ENTER)
    t.expect("Finalise")
    t.child.send(ENTER)
    assert t.finish() == 0
    shown = t.log.getvalue()
    assert "\x1b]0;title" not in shown and "\x07" not in shown
    assert "^[]0;title^G" in shown and "Aida [team 2]" in shown
