"""quality/paradata.py: timing from a submission's paradata, and hostile paradata."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest

from yntymak_cli.quality.paradata import (
    IDLE_CAP,
    MAX_ENTRIES,
    UNTIMED,
    QuestionTime,
    Timing,
    from_stored,
    parse_time,
    stored,
    timing,
)

T0 = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.timezone.utc)


def at(seconds: float) -> str:
    """T0 + seconds, as session.py records times."""
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def answer(first: float, last: float | None = None, changes: int = 0) -> dict[str, Any]:
    return {"first": at(first), "last": at(first if last is None else last), "changes": changes}


def by_path(t: Timing) -> dict[str, QuestionTime]:
    return {q.path: q for q in t.questions}


def test_one_session_question_by_question():
    paradata = {
        "answers": {
            "oblast": answer(5),
            "district": answer(12),
            "age": answer(20, 40, changes=1),
            "incidents[1]/resolved": answer(50),
        },
        "back_steps": [{"at": at(35), "from": "phone"}, {"at": at(36), "from": "phone"}],
        "sessions": [{"started": at(0), "lang": "en", "last": at(55), "finalised": at(56)}],
    }
    t = timing(paradata)
    assert t.timed and t.started == T0 and t.ended == T0 + dt.timedelta(seconds=56)
    # events 0, 5, 12, 20, 35, 36, 40, 50, 55, 56: every gap is short, so all of it.
    assert t.active_seconds == pytest.approx(56)
    q = by_path(t)
    assert [x.path for x in t.questions[:4]] == [
        "oblast",
        "district",
        "age",
        "incidents[1]/resolved",
    ]
    assert q["oblast"].seconds == pytest.approx(5)  # from the session's start
    assert q["district"].seconds == pytest.approx(7)
    assert q["age"] == QuestionTime("age", at(20), at(40), 1, 0, pytest.approx(8))
    assert q["incidents[1]/resolved"].seconds == pytest.approx(30)  # from age's first
    # Stepped back from twice, never answered: a row with no times.
    assert q["phone"] == QuestionTime("phone", None, None, 0, 2, None)


def test_resumed_session_idle_time_and_the_gap_between_sessions():
    paradata = {
        "answers": {"a": answer(10), "b": answer(2000), "c": answer(86_400 + 30)},
        "back_steps": [],
        "sessions": [
            {"started": at(0), "last": at(2000)},  # left open 1990 s: counted as IDLE_CAP
            {"started": at(86_400), "last": at(86_430), "finalised": at(86_431)},
        ],
    }
    t = timing(paradata)
    assert t.sessions == 2
    # 10 + cap (2000 - 10) in the first; 30 + 1 in the second; the night between is not.
    assert t.active_seconds == pytest.approx(10 + IDLE_CAP + 31)
    q = by_path(t)
    assert q["b"].seconds == IDLE_CAP
    assert q["c"].seconds == pytest.approx(30)  # from the second session's start
    assert t.ended == T0 + dt.timedelta(seconds=86_431)


def test_interrupted_session_ends_at_its_last_activity():
    paradata = {"answers": {"a": answer(10)}, "sessions": [{"started": at(0), "last": at(25)}]}
    t = timing(paradata)
    assert t.ended == T0 + dt.timedelta(seconds=25) and t.active_seconds == pytest.approx(25)


def test_old_paradata_without_session_last_still_works():
    paradata = {
        "answers": {"a": answer(10, 30, 1)},
        "back_steps": [],
        "sessions": [{"started": at(0)}],
    }
    t = timing(paradata)
    assert t.timed and t.ended == T0 + dt.timedelta(seconds=30)
    assert t.active_seconds == pytest.approx(30)


@pytest.mark.parametrize(
    "paradata",
    [
        {
            "answers": {},
            "back_steps": [],
            "sessions": [{"started": at(0)}],
            "source": "answers-file",
        },
        None,
        {},
        {"answers": {}, "sessions": []},
        {"answers": {"a": {"first": "yesterday"}}, "sessions": [{"started": 5}]},
    ],
)
def test_untimed(paradata):
    t = timing(paradata)
    assert not t.timed and t.active_seconds is None and t.questions == ()


def test_json_text_and_bytes_are_read():
    paradata = {"answers": {"a": answer(3)}, "sessions": [{"started": at(0)}]}
    text = json.dumps(paradata)
    assert timing(text) == timing(text.encode()) == timing(paradata)
    assert timing(text).questions[0].seconds == pytest.approx(3)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-11-30T06:00:00.000000Z", T0.timestamp()),
        ("2026-11-30T06:00:00Z", T0.timestamp()),
        ("2026-11-30T12:00:00+06:00", T0.timestamp()),
        ("2026-11-30T06:00:00", T0.timestamp()),  # no zone: UTC
        ("2026-02-30T06:00:00.000000Z", None),  # no such day
        ("9999-12-31T23:59:59.999999Z", None),  # absurd
        ("0001-01-01T00:00:00.000000Z", None),
        ("1969-12-31T23:59:59.000000Z", None),
        ("", None),
        ("x" * 27, None),
        ("2026-11-30T06:00:00.000000Z" * 3, None),
        (1796019539, None),
        (None, None),
        (["2026-11-30T06:00:00Z"], None),
    ],
)
def test_parse_time(value, expected):
    assert parse_time(value) == expected


def test_absurd_and_odd_values_are_skipped_or_clamped():
    paradata = {
        "answers": {
            "a": {"first": at(5), "last": "9999-01-01T00:00:00Z", "changes": -3},
            "b": {"first": at(9), "last": at(4), "changes": 10**12},  # last before first
            "c": {"first": at(20), "changes": True},
            "d": "not an entry",
            "e": {"first": None, "last": None, "changes": "7"},
        },
        "back_steps": ["x", {"at": "never", "from": "a"}, {"at": at(1), "from": 5}],
        "sessions": [None, {"started": at(0), "finalised": "soon"}],
    }
    t = timing(paradata)
    q = by_path(t)
    assert q["a"].last is None and q["a"].changes == 0 and q["a"].back_steps == 1
    assert q["b"].changes == 1_000_000 and q["b"].seconds == pytest.approx(4)
    assert q["c"].changes == 0 and q["c"].last is None
    assert q["d"].first is None and q["d"].seconds is None
    assert q["e"] == QuestionTime("e", None, None, 0, 0, None)
    assert all(x.seconds is None or x.seconds >= 0 for x in t.questions)
    assert t.active_seconds is not None and t.active_seconds >= 0


def test_entries_are_capped():
    answers = {f"q{i}": answer(i % 500) for i in range(MAX_ENTRIES + 500)}
    steps = [{"at": at(1), "from": "q1"}] * (MAX_ENTRIES + 500)
    t = timing({"answers": answers, "back_steps": steps, "sessions": [{"started": at(0)}]})
    assert len(t.questions) == MAX_ENTRIES
    assert by_path(t)["q1"].back_steps == MAX_ENTRIES


def _hostile(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON-ish value biased towards paradata's keys and near-valid times."""
    atoms: list[Any] = [
        None,
        True,
        -1,
        0,
        2**70,
        1.5,
        float("nan"),
        float("inf"),
        "",
        "=cmd",
        at(rng.uniform(-1e6, 1e6)),
        "2026-13-01T00:00:00Z",
        "2026-11-30T06:00:00.000000Z"[: rng.randrange(28)],
        "9" * 40,
        "answers-file",
    ]
    keys = ["answers", "back_steps", "sessions", "first", "last", "changes", "at", "from",
            "started", "finalised", "source", "lang", "q"]  # fmt: skip
    if depth > 3 or rng.random() < 0.4:
        return rng.choice(atoms)
    if rng.random() < 0.5:
        return [_hostile(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {rng.choice(keys): _hostile(rng, depth + 1) for _ in range(rng.randrange(6))}


def test_never_raises_on_hostile_paradata():
    rng = random.Random(14)
    samples: list[Any] = [
        [],
        "[]",
        "{",
        b"\xff\xfe",
        bytearray(b"{}"),
        memoryview(b'{"answers": 1}'),
        "[" * 100_000 + "]" * 100_000,  # deeper than json.loads recurses
        42,
        object(),
        {"answers": {1: answer(0)}, "sessions": [{"started": at(0)}]},  # a non-text path
    ]
    samples += [_hostile(rng) for _ in range(3000)]
    samples += [
        {"answers": {"a": _hostile(rng), "b": answer(3)}, "back_steps": _hostile(rng),
         "sessions": [{"started": at(0)}, _hostile(rng)]}
        for _ in range(2000)
    ]  # fmt: skip
    for paradata in samples:
        t = timing(paradata)
        assert isinstance(t, Timing)
        assert t.active_seconds is None or t.active_seconds >= 0
        for q in t.questions:
            assert q.seconds is None or 0 <= q.seconds <= IDLE_CAP
            assert q.changes >= 0 and q.back_steps >= 0


def forty_questions() -> dict[str, Any]:
    answers = {f"q{i}": answer(5 + i * 17.3, 5 + i * 17.3 + (3 if i % 5 == 0 else 0), i % 5 == 0)
               for i in range(40)}  # fmt: skip
    return {
        "answers": answers,
        "back_steps": [{"at": at(100.5), "from": "q7"}, {"at": at(300.1), "from": "q20"}],
        "sessions": [{"started": at(0), "lang": "ky", "last": at(700), "finalised": at(701)}],
    }


def test_forty_questions_each_timed_once():
    """The shape benchmarks/checks_bench.py times (speed belongs there, not in a test)."""
    found = timing(json.dumps(forty_questions()))
    assert len(found.questions) == 40 and len(found.seconds) == 40
    assert [q.back_steps for q in found.questions if q.back_steps] == [1, 1]


def test_quick_timing_agrees_with_timing_on_stored_paradata():
    """The checks' fast reading of stored (canonical) paradata gives what timing() gives:
    sessions resumed, answers changed, back steps, odd and missing times, --answers."""
    from yntymak_cli.canonical import canonical_text
    from yntymak_cli.quality.paradata import quick_timing

    rng = random.Random(5)

    def stamp(t: float) -> str:
        whole = int(t)
        return (
            dt.datetime.fromtimestamp(whole, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
            + f".{int((t - whole) * 1e6):06d}Z"
        )

    for case in range(300):
        t = 1_790_000_000 + rng.uniform(0, 10**7)
        sessions, answers, back = [], {}, []
        for _s in range(rng.randint(1, 3)):
            session: dict[str, Any] = {"started": stamp(t), "lang": "ky"}
            for _q in range(rng.randint(0, 15)):
                t += rng.choice([0.5, 1.5, 30.0, 700.0])
                path = f"q{rng.randint(0, 20)}"
                entry = answers.setdefault(
                    path, {"first": stamp(t), "last": stamp(t), "changes": 0}
                )
                if rng.random() < 0.2:
                    entry["last"], entry["changes"] = stamp(t + 3), entry["changes"] + 1
                if rng.random() < 0.1:
                    back.append({"at": stamp(t + 1), "from": path})
            session["last"] = stamp(t)
            if rng.random() < 0.7:
                session["finalised"] = stamp(t + 5)
            sessions.append(session)
            t += rng.uniform(60, 90_000)
        paradata: dict[str, Any] = {"answers": answers, "back_steps": back, "sessions": sessions}
        if case % 50 == 7:
            paradata["answers"]["q0"] = {"first": "not a time", "last": "2026-13-01T00:00:00Z"}
        if case % 50 == 9:
            paradata["source"] = "answers-file"
        text = canonical_text(paradata)
        expected = timing(text, questions=False)
        assert quick_timing(text) == expected, case
        # What HQ keeps at import (hq_timings) reads back to the same Timing.
        assert from_stored(*stored(timing(paradata, questions=False))) == expected, case


def test_stored_timing_that_cannot_be_read_is_untimed():
    good = stored(timing({"sessions": [{"started": "2026-11-30T06:00:00.000000Z",
                                        "finalised": "2026-11-30T06:05:00.000000Z"}]}))  # fmt: skip
    assert from_stored(*good).timed and from_stored(*good).active_seconds == 300
    assert from_stored(None, None, None, 0, None) == UNTIMED
    assert stored(UNTIMED) == (None, None, None, 0, None)
    for seconds in ("not json", '{"a": 1}', '[1, "x"]', "[" * 100_000):
        assert from_stored(*good[:4], seconds) == UNTIMED
    assert from_stored(1e300, 1e300, 1.0, 1, "[]") == UNTIMED  # year out of range
