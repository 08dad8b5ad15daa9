"""Autosave cost: one accepted answer written to SQLite (WAL, synchronous=FULL).

Answers the same generated 500-question form as engine_bench.py through a real Session
(engine + store, as `yntymak collect` does) and prints, from one run, the median time of
the engine step alone and of the autosave (the draft UPDATE in its own BEGIN IMMEDIATE
transaction, fsynced). Target: autosave median <= 20 ms.

    python benchmarks/autosave_bench.py [--questions 500]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_bench import make_form, raw_answer  # noqa: E402

from yntymak_cli.collect.session import Session  # noqa: E402
from yntymak_cli.forms.loader import form_from_dict  # noqa: E402
from yntymak_cli.store.db import Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=500)
    args = parser.parse_args()
    form = form_from_dict(make_form(args.questions, 1))
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        session = Session.start(store, form, lang="en", enumerator="bench", device_id="dev")
        engine_ms: list[float] = []
        save_ms: list[float] = []
        step = session.engine.first_step(session.state)
        while step.kind != "end":
            if step.kind == "question":
                t0 = time.perf_counter()
                error = session.engine.answer(session.state, step.path, raw_answer(step, rng))
                t1 = time.perf_counter()
                session.save()
                t2 = time.perf_counter()
                assert error is None, error
                engine_ms.append((t1 - t0) * 1000)
                save_ms.append((t2 - t1) * 1000)
            step = session.engine.next_step(session.state, step)
        session.finalise()
        store.close()
    p95 = sorted(save_ms)[int(len(save_ms) * 0.95) - 1]
    print(
        f"{len(save_ms)} answers on a {args.questions}-question form: engine median "
        f"{statistics.median(engine_ms):.3f} ms, autosave median "
        f"{statistics.median(save_ms):.2f} ms (p95 {p95:.2f} ms, synchronous=FULL)"
    )


if __name__ == "__main__":
    main()
