"""Resource limits on forms and answers files (issue 9, hardening), through the real CLI.

Each case ran forever or filled memory before the limit existed, so the CLI runs in a child
process with a timeout and an address-space cap: a hang or a runaway allocation fails the
test instead of blocking the run or the machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from yntymak_cli.cli import app
from yntymak_cli.files import MAX_ANSWERS_BYTES, MAX_FORM_BYTES
from yntymak_cli.forms.expressions import MAX_STRING_LENGTH

from .conftest import FORMS
from .helpers import runner

posix_only = pytest.mark.skipif(os.name != "posix", reason="FIFOs, /dev/zero and rlimits")

LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*)$")
TIMEOUT = 30  # seconds; every case here takes about one when the limit holds
MEMORY = 1024**3  # bytes of address space for the child; a normal run needs about 300 MB


def yntymak(*args: object) -> subprocess.CompletedProcess[str]:
    """`yntymak ARGS` in a child process that may neither hang nor take the machine's memory."""

    def limit_memory() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))

    argv = [sys.executable, "-m", "yntymak_cli", *map(str, args)]
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=limit_memory if os.name == "posix" else None,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"yntymak {' '.join(map(str, args))} did not finish in {TIMEOUT} s")


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refusal (exit 2, no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def first_error(result: subprocess.CompletedProcess[str]) -> str:
    """The first problem `forms validate` lists (a refused include also leaves its lists
    unknown further down)."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "Internal error" not in result.stderr
    return result.stderr.splitlines()[0]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


SIMPLE_FORM = """\
    id: f
    version: '1'
    questions:
      - {name: name, type: text, label: Name}
"""


@pytest.fixture
def simple_form(tmp_path: Path) -> Path:
    return write(tmp_path / "f.yaml", SIMPLE_FORM)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


# --------------------------------------------------------------------------- regex()

REGEX_FORM = """\
    id: f
    version: '1'
    questions:
      - {name: code, type: text, label: Code, constraint: "regex(., '^(a+)+$')"}
"""


@pytest.mark.slow
@posix_only
def test_a_catastrophic_regex_is_checked_at_once(tmp_path):
    form = write(tmp_path / "f.yaml", REGEX_FORM)
    answers = write(tmp_path / "a.yaml", "code: " + "a" * 40 + "!\n")
    line = one_error(yntymak("collect", form, "--answers", answers, "--enumerator", "A"))
    assert line.startswith(f"Error: {answers}:1: code: "), line  # FILE:LINE: question: message
    # The same pattern still accepts what it should.
    ok = write(tmp_path / "ok.yaml", "code: " + "a" * 40 + "\n")
    result = yntymak("collect", form, "--answers", ok, "--enumerator", "A")
    assert result.returncode == 0, result.stderr


@posix_only
def test_validate_warns_that_a_nested_repeat_would_freeze_odk_collect(tmp_path):
    form = write(tmp_path / "f.yaml", REGEX_FORM)
    result = yntymak("forms", "validate", form)
    assert result.returncode == 0, result.stderr
    [line] = result.stderr.strip().splitlines()
    m = LINE.match(line)
    assert m, line
    source = form.read_text(encoding="utf-8").splitlines()[int(m["line"]) - 1]
    assert source[int(m["col"]) - 1 :].startswith("'^(a+)+$'")
    assert m["msg"].startswith("warning: question 'code': constraint: ")
    assert "ODK Collect" in m["msg"]


@pytest.mark.parametrize(
    "pattern, detail",
    [
        ("^(?=.*[0-9]).+$", "lookaround"),  # lookahead: no linear-time engine runs it
        ("^(a)\\\\1$", "backreferences"),
    ],
)
def test_validate_refuses_a_pattern_that_cannot_run_in_linear_time(tmp_path, pattern, detail):
    form = write(
        tmp_path / "f.yaml",
        f"""\
        id: f
        version: '1'
        questions:
          - {{name: code, type: text, label: Code, constraint: "regex(., '{pattern}')"}}
        """,
    )
    result = runner.invoke(app, ["forms", "validate", str(form)])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"{form}:4:"), line
    assert "invalid regular expression" in line and detail in line, line


# --------------------------------------------------------------------------- YAML aliases

LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{c}: &{c} [{','.join(['*' + p] * 9)}]"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


@pytest.mark.slow
@posix_only
def test_billion_laughs_form_is_refused_at_the_first_alias(tmp_path):
    form = tmp_path / "laughs.yaml"
    form.write_text(LAUGHS + "\n", encoding="utf-8")
    assert form.stat().st_size < 500
    line = one_error(yntymak("forms", "validate", form))
    assert line.startswith(f"{form}:2:8: "), line
    assert "aliases" in line


@pytest.mark.slow
@posix_only
def test_billion_laughs_answers_file_is_refused(tmp_path, simple_form):
    answers = tmp_path / "laughs.yaml"
    answers.write_text(LAUGHS + "\nname: x\n", encoding="utf-8")
    line = one_error(yntymak("collect", simple_form, "--answers", answers, "--enumerator", "A"))
    assert line.startswith(f"{answers}:2:8: "), line
    assert "aliases" in line


# --------------------------------------------------------------------------- files


@pytest.mark.slow
@posix_only
@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("command", ["validate", "collect"])
def test_a_form_must_be_a_regular_file(kind, command, fifo, tmp_path):
    path = fifo if kind == "fifo" else Path("/dev/zero")
    if command == "validate":
        result = yntymak("forms", "validate", path)
    else:
        answers = write(tmp_path / "a.yaml", "name: x\n")
        result = yntymak("collect", path, "--answers", answers, "--enumerator", "A")
    line = one_error(result)
    assert line == f"{path}:1:1: not a regular file (a pipe or device cannot be a form file)"


@pytest.mark.slow
@posix_only
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_an_answers_file_must_be_a_regular_file(kind, fifo, simple_form):
    path = fifo if kind == "fifo" else Path("/dev/zero")
    line = one_error(yntymak("collect", simple_form, "--answers", path, "--enumerator", "A"))
    assert line == f"Error: {path}: not a regular file (a pipe or device cannot be an answers file)"


@pytest.mark.slow
@posix_only
def test_an_oversized_answers_file_is_refused_unread(tmp_path, simple_form):
    answers = tmp_path / "big.yaml"
    with answers.open("wb") as f:
        f.truncate(MAX_ANSWERS_BYTES + 1)  # sparse: no disk used
    line = one_error(yntymak("collect", simple_form, "--answers", answers, "--enumerator", "A"))
    assert line == f"Error: {answers}: too large for an answers file (more than 50 MB)"


def include_form(folder: Path, entry: str) -> Path:
    return write(
        folder / "f.yaml",
        f"""\
        id: f
        version: '1'
        include: ['{entry}']
        questions:
          - {{name: q, type: select_one yn, label: Q}}
        """,
    )


LIST = "choices:\n  yn:\n    - {name: y, label: Yes}\n    - {name: n, label: No}\n"


@posix_only
def test_include_of_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    form = include_form(tmp_path, "pipe.yaml")
    line = first_error(yntymak("forms", "validate", form))
    assert line == (
        f"{form}:3:11: included file pipe.yaml: not a regular file "
        "(a pipe or device cannot be a choice list file)"
    )


@pytest.mark.slow
@posix_only
def test_include_of_an_oversized_file_is_refused(tmp_path):
    with (tmp_path / "big.yaml").open("wb") as f:
        f.truncate(MAX_FORM_BYTES + 1)
    form = include_form(tmp_path, "big.yaml")
    line = first_error(yntymak("forms", "validate", form))
    assert line == (
        f"{form}:3:11: included file big.yaml: too large for a choice list file (more than 20 MB)"
    )


@pytest.mark.slow
@posix_only
@pytest.mark.parametrize(
    "entry",
    ["/dev/zero", "../outside/lists.yaml", "shared/../../outside/lists.yaml", "link.yaml"],
)
def test_include_reads_only_the_forms_folder_and_shared(tmp_path, entry):
    write(tmp_path / "outside" / "lists.yaml", LIST)
    folder = tmp_path / "forms"
    folder.mkdir()
    (folder / "link.yaml").symlink_to(tmp_path / "outside" / "lists.yaml")
    form = include_form(folder, entry)
    line = first_error(yntymak("forms", "validate", form))
    assert line == (
        f"{form}:3:11: include {entry}: only files in the form's folder or in a 'shared' "
        "folder next to it can be included (no absolute paths, no '..' out of them)"
    )


def test_include_from_the_shared_folder_still_works(tmp_path):
    write(tmp_path / "forms" / "shared" / "lists.yaml", LIST)
    write(tmp_path / "forms" / "shared" / "other.yaml", LIST.replace("yn:", "ny:"))
    (tmp_path / "forms" / "survey").mkdir()
    (tmp_path / "forms" / "survey" / "link.yaml").symlink_to(
        tmp_path / "forms" / "shared" / "other.yaml"
    )
    beside = include_form(tmp_path / "forms", "shared/lists.yaml")
    below = include_form(tmp_path / "forms" / "survey", "../shared/lists.yaml")
    linked = write(
        tmp_path / "forms" / "survey" / "g.yaml",
        "id: g\nversion: '1'\ninclude: [link.yaml]\n"
        "questions:\n  - {name: q, type: select_one ny, label: Q}\n",
    )
    result = runner.invoke(app, ["forms", "validate", str(beside), str(below), str(linked)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    for form in FORMS.glob("*.yaml"):  # the project's forms include shared/*.yaml
        result = runner.invoke(app, ["forms", "validate", str(form)])
        assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- computed text


def doubling_form(path: Path, times: int = 40) -> Path:
    lines = ["id: dbl", "version: '1'", "questions:", "  - {name: seed, type: text, label: S}"]
    previous = "seed"
    for i in range(1, times + 1):
        expr = f"concat(${{{previous}}}, ${{{previous}}})"
        lines.append(f"  - {{name: c{i}, type: calculate, calculation: '{expr}'}}")
        previous = f"c{i}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
@posix_only
def test_a_string_doubled_forty_times_stops_at_the_limit_naming_the_question(tmp_path):
    form = doubling_form(tmp_path / "dbl.yaml")
    result = yntymak("forms", "validate", form)
    assert result.returncode == 0, result.stderr
    answers = write(tmp_path / "a.yaml", "seed: x\n")
    line = one_error(yntymak("collect", form, "--answers", answers, "--enumerator", "A"))
    # 2**20 characters is the first result over a million.
    assert MAX_STRING_LENGTH == 1_000_000
    assert line == (
        "Error: question 'c20': calculation: concat() would give text longer than "
        "1,000,000 characters, the limit for computed text"
    )


@pytest.mark.slow
@posix_only
def test_text_just_under_the_limit_is_still_computed(tmp_path):
    form = doubling_form(tmp_path / "dbl.yaml", times=19)
    answers = write(tmp_path / "a.yaml", "seed: x\n")
    result = yntymak("collect", form, "--answers", answers, "--enumerator", "A")
    assert result.returncode == 0, result.stderr
    uuid = result.stdout.strip().splitlines()[-1]
    shown = runner.invoke(app, ["submissions", "show", uuid, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["answers"]["c19"] == "x" * 2**19


@pytest.mark.slow
@posix_only
@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize(
    ("command", "what"),
    [
        (("bundle", "verify"), "a bundle"),
        (("hq", "import"), "a bundle"),
        (("bundle", "ack"), "a receipt"),
        (("keys", "trust-hq"), "an HQ public key"),
        (("hq", "enroll"), "a device public key"),
    ],
)
def test_sync_files_must_be_regular_files(kind, command, what, fifo, tmp_path):
    # A key, bundle or receipt named by a FIFO used to block the command for ever, and
    # /dev/zero was read up to the size limit (1 GB for a bundle).
    path = fifo if kind == "fifo" else Path("/dev/zero")
    home = tmp_path / "home"
    # One home that is both HQ and a device trusting it, so each command reaches the file.
    hq_pub = tmp_path / "hq.pub"
    assert yntymak("--home", home, "hq", "init", "-o", hq_pub).returncode == 0
    if command != ("keys", "trust-hq"):
        assert yntymak("--home", home, "keys", "trust-hq", hq_pub).returncode == 0
    extra = ("--name", "x") if command == ("hq", "enroll") else ()
    result = yntymak("--home", home, *command, path, *extra)
    out = result.stdout + result.stderr
    assert result.returncode == 2, (result.returncode, out[-2000:])
    assert "Traceback" not in out and "Internal error" not in out
    assert "not a regular file" in out and what in out, out
