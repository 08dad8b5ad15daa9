"""How long big choice lists take: validating the form, collecting one submission, one prompt.

Generates a form whose choice list `places` has N choices (each with a `region` column for
a cascade) and three questions over it: a select_one, a select_one filtered by
``choice_filter: region = ${region}`` and a select_multiple. For each N it prints seconds for

* validate: `yntymak forms validate FORM` (read the file, YAML, model, semantic checks);
* collect: `yntymak collect FORM --answers FILE` (load the form, read the answers, fill
  through the engine, store the submission), in a throwaway YNTYMAK_HOME; "again" is a
  second submission, with the form already registered;
* step: one interactive step per question: the engine builds the step (the offered
  choices) and the real prompt is drawn and answered through a prompt_toolkit pipe.

Both commands run in this process (typer's CliRunner), so start-up time is left out.
Target: validate and collect under 2 s at 100,000 choices, growing linearly with N.

    python benchmarks/bigform_bench.py [--choices 10000,50000,100000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

REGIONS = 100


def make_form_text(n: int) -> str:
    lines = [
        "id: bigform",
        'version: "1"',
        "choices:",
        "  regions:",
        *(f"    - {{name: r{r:03d}, label: Region {r}}}" for r in range(REGIONS)),
        "  places:",
        *(
            f"    - {{name: p{i:06d}, label: Place {i}, region: r{i % REGIONS:03d}}}"
            for i in range(n)
        ),
        "questions:",
        "  - {name: place, type: select_one places, label: Place}",
        "  - {name: region, type: select_one regions, label: Region}",
        "  - name: village",
        "    type: select_one places",
        "    label: Village",
        "    choice_filter: region = ${region}",
        "  - {name: visited, type: select_multiple places, label: Visited}",
    ]
    return "\n".join(lines) + "\n"


def answers_text(n: int) -> str:
    last = n - 1
    return (
        f"place: p{last:06d}\n"
        f"region: r{last % REGIONS:03d}\n"
        f"village: p{last:06d}\n"
        f"visited: p{last:06d} p{n // 2:06d} p000000\n"
    )


def cli(*args: str) -> tuple[float, str]:
    """Seconds and output of one `yntymak ...` command, run in this process."""
    from typer.testing import CliRunner

    from yntymak_cli.cli import app

    t0 = time.perf_counter()
    result = CliRunner().invoke(app, list(args))
    seconds = time.perf_counter() - t0
    assert result.exit_code == 0, (args, result.output[-2000:])
    return seconds, result.stdout


def bench_validate(path: Path) -> float:
    return cli("forms", "validate", str(path))[0]


def bench_collect(path: Path, answers: Path, n: int) -> float:
    from yntymak_cli.store.db import Store

    seconds, out = cli("collect", str(path), "--answers", str(answers), "--enumerator", "bench")
    stored = Store.open().get_record(out.strip().splitlines()[-1])["answers"]
    last = f"p{n - 1:06d}"
    assert stored["place"] == stored["village"] == last, stored
    assert stored["visited"] == [last, f"p{n // 2:06d}", "p000000"], stored
    return seconds


def press(keys: str, ask):
    """Answer a real prompt by typing `keys` into it (as tests/test_interactive.py does)."""
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        with create_app_session(input=pipe, output=DummyOutput()):
            return ask()


def bench_steps(path: Path, n: int) -> dict[str, float]:
    """Seconds for one step of each question: build it, draw the prompt, pick the last
    choice by typing its name (Enter on the first one when the prompt is a short list)."""
    import contextlib
    import io

    from yntymak_cli.collect.prompts import QuestionaryPrompter
    from yntymak_cli.engine.survey import Engine
    from yntymak_cli.forms.loader import load_form

    form = load_form(path).require()
    engine = Engine(form, lang="en")
    state = engine.start()
    prompter = QuestionaryPrompter("en")
    last = f"p{n - 1:06d}"
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    step = engine.first_step(state)
    while step.kind != "end":
        where = step.where
        if where == "region":
            assert engine.answer(state, step.path, f"r{(n - 1) % REGIONS:03d}") is None
        else:
            keys = _keys_for(step, last)
            with contextlib.redirect_stdout(io.StringIO()):
                raw = press(keys, lambda s=step: prompter.ask(s))
            error = engine.answer(state, step.path, raw)
            assert error is None, (where, raw, error)
            out[where] = time.perf_counter() - t0
        t0 = time.perf_counter()
        step = engine.next_step(state, step)  # building a step counts towards it
    return out


def _keys_for(step, name: str) -> str:
    """Type-to-search prompts get the choice's name; short lists get Enter (first choice)."""
    from yntymak_cli.collect.prompts import searchable

    if searchable(step):
        return name + "\r"
    return " \r" if step.question.base_type == "select_multiple" else "\r"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--choices", default="10000,50000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.choices.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["YNTYMAK_HOME"] = str(Path(tmp) / "home")
        os.environ.setdefault("PROMPT_TOOLKIT_NO_CPR", "1")
        for n in [300, *sizes]:  # the first, small form pays for imports and the device key
            path = Path(tmp) / f"big{n}.yaml"
            path.write_text(make_form_text(n), encoding="utf-8")
            answers = Path(tmp) / f"answers{n}.yaml"
            answers.write_text(answers_text(n), encoding="utf-8")
            validate = bench_validate(path)
            collect = bench_collect(path, answers, n)
            again = bench_collect(path, answers, n)  # the form is registered by now
            steps = bench_steps(path, n)
            if n == 300:
                print("choices  validate   collect     again  step: place  village  visited")
                continue
            print(
                f"{n:>7}  {validate:>7.2f}s  {collect:>7.2f}s  {again:>7.2f}s  "
                f"{steps['place']:>10.2f}s {steps['village']:>7.2f}s {steps['visited']:>7.2f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
