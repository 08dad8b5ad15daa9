"""How long one survey step takes in the form engine on a large form.

Generates a 500-question form (text, numbers, selects, dates; relevant, constraint and
calculation expressions referring to earlier questions; a counted repeat), answers it
from start to end through the Engine as the interactive survey would, and prints the
median and 95th percentile of one step: next_step + answer (validation, storing,
recalculation). Target: median <= 2 ms.

    python benchmarks/engine_bench.py [--questions 500] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from yntymak_cli.engine.survey import Engine
from yntymak_cli.forms.loader import form_from_dict


def make_form(n: int, seed: int) -> dict:
    rng = random.Random(seed)
    questions: list[dict] = []
    numeric: list[str] = []  # integer questions and numeric calculations, for references
    selects: list[str] = []

    def q_int(name: str) -> dict:
        q = {"name": name, "type": "integer", "label": f"Number {name}"}
        q["constraint"] = ". >= 0 and . <= 1000"
        numeric.append(name)
        return q

    repeat_at = n // 2
    i = 0
    while len(questions) < n:
        name = f"q{i}"
        i += 1
        kind = rng.choice(["text", "integer", "integer", "decimal", "select", "multi", "date",
                           "calc"])  # fmt: skip
        if kind == "text":
            q: dict = {"name": name, "type": "text", "label": f"Text {name}"}
        elif kind == "integer":
            q = q_int(name)
        elif kind == "decimal":
            q = {"name": name, "type": "decimal", "label": f"Decimal {name}"}
        elif kind == "select":
            q = {"name": name, "type": "select_one yn", "label": f"Choose {name}"}
            selects.append(name)
        elif kind == "multi":
            q = {"name": name, "type": "select_multiple colours", "label": f"Colours {name}"}
        elif kind == "date":
            q = {"name": name, "type": "date", "label": f"Date {name}"}
        else:
            if len(numeric) < 2:
                continue
            a, b = rng.sample(numeric[-20:], 2)
            q = {"name": name, "type": "calculate", "calculation": f"${{{a}}} + ${{{b}}} * 2"}
            numeric.append(name)
        if kind != "calc" and selects and rng.random() < 0.3:
            q["relevant"] = f"${{{rng.choice(selects[-10:])}}} = 'yes'"
        elif kind != "calc" and numeric and rng.random() < 0.2:
            q["relevant"] = f"${{{rng.choice(numeric[-10:])}}} >= 0"
        questions.append(q)
        if len(questions) == repeat_at:
            count = q_int("n_members")
            count["constraint"] = ". <= 5"
            questions.append(count)
            inner = [
                {"name": "m_name", "type": "text", "label": "Name"},
                {"name": "m_age", "type": "integer", "label": "Age"},
                {"name": "m_sex", "type": "select_one yn", "label": "Adult?"},
                {"name": "m_adult", "type": "calculate", "calculation": "${m_age} >= 18"},
                {
                    "name": "m_note",
                    "type": "text",
                    "label": "Note",
                    "relevant": "${m_sex} = 'yes'",
                },  # fmt: skip
            ]
            questions.append(
                {
                    "name": "members",
                    "type": "repeat",
                    "label": "Member",
                    "repeat_count": "${n_members}",
                    "questions": inner,
                }  # fmt: skip
            )
            questions.append(
                {"name": "total_age", "type": "calculate", "calculation": "sum(${m_age})"}
            )
    return {
        "id": "bench",
        "version": "1",
        "choices": {
            "yn": [{"name": "yes", "label": "Yes"}, {"name": "no", "label": "No"}],
            "colours": [{"name": c, "label": c.title()} for c in ("red", "green", "blue")],
        },
        "questions": questions,
    }


def raw_answer(step, rng: random.Random) -> str:
    base = step.question.base_type
    if base == "integer":
        return str(
            rng.randint(1, 4) if step.question.name in ("n_members",) else rng.randint(0, 99)
        )
    if base == "decimal":
        return f"{rng.uniform(0, 100):.2f}"
    if base == "select_one":
        return rng.choice(["yes", "yes", "no"])
    if base == "select_multiple":
        return " ".join(rng.sample(["red", "green", "blue"], rng.randint(1, 3)))
    if base == "date":
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return f"answer {rng.randint(0, 9999)}"


def run(n: int, seed: int) -> list[float]:
    form = form_from_dict(make_form(n, seed))
    engine = Engine(form, lang="en", username="bench")
    rng = random.Random(seed)
    state = engine.start()
    timings: list[float] = []
    step = engine.first_step(state)
    while True:
        t0 = time.perf_counter()
        if step.kind == "question":
            error = engine.answer(state, step.path, raw_answer(step, rng))
            assert error is None, (step.path, error)
        step = engine.next_step(state, step)
        timings.append(time.perf_counter() - t0)
        if step.kind == "end":
            break
    engine.finalise(state)
    assert not engine.expression_errors, engine.expression_errors
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    timings = run(args.questions, args.seed)
    ms = sorted(t * 1000 for t in timings)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(
        f"{len(ms)} steps on a {args.questions}-question form: "
        f"median {statistics.median(ms):.3f} ms, p95 {p95:.3f} ms, max {ms[-1]:.3f} ms"
    )


if __name__ == "__main__":
    main()
