"""How long a submission took, question by question, from its paradata (pure, no I/O).

Paradata is what collect/session.py records while a survey is filled:

    {"answers": {PATH: {"first", "last", "changes"}},   # PATH as "incidents[2]/resolved"
     "back_steps": [{"at", "from": PATH}],
     "sessions": [{"started", "last"?, "lang"?, "finalised"?}],
     "source": "answers-file"}                           # only for `collect --answers`

It comes from a device, so `timing()` treats it as hostile: it never raises, skips what it
cannot read, caps how many entries it looks at, and clamps what would be absurd. It runs
once per submission over whole exports and checks, so each timestamp is parsed once, and
the events are sorted once.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any, NamedTuple

IDLE_CAP: float = (
    600.0  # seconds: a longer gap between two events counts as this (laptop left open)
)
MAX_ENTRIES = 20_000  # answers, back steps and sessions each: more are ignored (a forgery)
MAX_TEXT = 16_000_000  # bytes of paradata text decoded; longer is treated as absent
MAX_CHANGES = 1_000_000  # a larger recorded count is clamped to this
# Times outside these bounds are absurd (a clock reset to 1970 is kept: checks may want it).
_MIN_TIME = 0.0  # 1970-01-01T00:00:00Z
_MAX_TIME = 7_258_118_400.0  # 2200-01-01T00:00:00Z
_UTC = dt.timezone.utc
_fromisoformat = dt.datetime.fromisoformat
_EPOCH = dt.datetime(1970, 1, 1)


class QuestionTime(NamedTuple):
    """One question's timing (a named tuple: built ~40 times per submission, it must be
    cheap to make)."""

    path: str  # as in paradata, e.g. "incidents[2]/resolved"
    first: str | None  # ISO UTC as recorded (None when absent or unreadable)
    last: str | None
    changes: int
    back_steps: int  # times the volunteer stepped back from this question
    # From the previous event (the previous answer's first time, or the session's start) to
    # this question's first answer, capped at IDLE_CAP; None when not timed.
    seconds: float | None


@dataclass(frozen=True)
class Timing:
    timed: bool  # False: filled with --answers (source "answers-file"), or no usable timestamps
    started: dt.datetime | None  # aware UTC: the first session's start
    ended: dt.datetime | None  # aware UTC: the last "finalised", else the latest activity
    # Sum over sessions of the gaps between consecutive events (session start, answers'
    # first/last times, back steps, session last activity, finalised), each capped at
    # IDLE_CAP; None when not timed.
    active_seconds: float | None
    questions: tuple[QuestionTime, ...]
    sessions: int = 0  # sessions with a readable start
    # Every timed question's `seconds`, in answer order: what the checks read (`timing(...,
    # questions=False)` fills only this, not `questions`, which costs more to build).
    seconds: tuple[float, ...] = ()


UNTIMED = Timing(False, None, None, None, ())


class StoredTiming(NamedTuple):
    """What HQ keeps of a submission's timing when it imports it (table hq_timings), so
    that the checks need not read its paradata again: all but `questions`."""

    started: float | None  # epoch seconds; None: untimed
    ended: float | None
    active_seconds: float | None
    sessions: int
    seconds: str | None  # JSON array of Timing.seconds (exact floats)


def stored(t: Timing) -> StoredTiming:
    """A Timing as HQ stores it."""
    if not t.timed or t.started is None or t.ended is None:
        return StoredTiming(None, None, None, 0, None)
    return StoredTiming(
        t.started.timestamp(),
        t.ended.timestamp(),
        t.active_seconds,
        t.sessions,
        json.dumps(t.seconds, separators=(",", ":")),
    )


def from_stored(
    started: Any, ended: Any, active_seconds: Any, sessions: Any, seconds: Any
) -> Timing:
    """The Timing (without `questions`) of what `stored` kept. Never raises: anything
    unreadable is untimed."""
    if started is None or ended is None:
        return UNTIMED
    try:
        times = tuple(float(x) for x in json.loads(seconds or "[]"))
        return Timing(
            True,
            dt.datetime.fromtimestamp(float(started), _UTC),
            dt.datetime.fromtimestamp(float(ended), _UTC),
            None if active_seconds is None else float(active_seconds),
            (),
            int(sessions or 0),
            times,
        )
    except (ValueError, TypeError, OverflowError, OSError, RecursionError):
        return UNTIMED


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch of an ISO 8601 time as the laptop records it
    (`2026-11-30T06:18:59.123456Z`), or None when it is not a readable, sane time.

    A time without a zone is taken as UTC. datetime.fromisoformat (C code) and a
    subtraction are faster than slicing the fixed format in Python (measured: ~270 ns
    against ~700 ns per value)."""
    if value.__class__ is not str or not 10 <= len(value) <= 40:
        return None
    try:
        if value[-1] == "Z":  # the laptop's own format; Python 3.10 does not take "Z"
            naive = _fromisoformat(value[:-1])
            if naive.tzinfo is not None:  # "...+06:00Z"
                return None
            seconds = (naive - _EPOCH).total_seconds()
        else:
            when = _fromisoformat(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=_UTC)
            seconds = when.timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    return seconds if _MIN_TIME <= seconds < _MAX_TIME else None


def load(paradata: Any) -> dict[str, Any] | None:
    """The paradata object from a dict, JSON text or bytes; None for anything else."""
    if paradata.__class__ is dict:
        return paradata
    if isinstance(paradata, bytes | bytearray | memoryview):
        if len(paradata) > MAX_TEXT:
            return None
        try:
            paradata = bytes(paradata).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(paradata, str):
        if len(paradata) > MAX_TEXT:
            return None
        try:
            paradata = json.loads(paradata)
        except (ValueError, RecursionError):
            return None
    return paradata if isinstance(paradata, dict) else None


def timing(paradata: dict | str | bytes | None, *, questions: bool = True) -> Timing:
    """The timing of one submission's paradata. Never raises. `questions=False`: leave
    `Timing.questions` empty (the per-question `seconds` are still there)."""
    try:
        return _timing(load(paradata), questions)
    except Exception:  # a shape no branch foresaw: untimed, never a crash in a check
        return UNTIMED


def _entries(value: Any, kind: type) -> list[Any]:
    """Up to MAX_ENTRIES items of a list (or a dict's items), else []."""
    if value.__class__ is not kind:
        return []
    items: Any = value
    return list(islice(items.items() if kind is dict else items, MAX_ENTRIES))


def _count(value: Any) -> int:
    if value.__class__ is not int:  # bool, float, text: not a count
        return 0
    return value if 0 <= value <= MAX_CHANGES else (0 if value < 0 else MAX_CHANGES)


def _timing(data: dict[str, Any] | None, detail: bool = True) -> Timing:
    if data is None or data.get("source") == "answers-file":
        return UNTIMED
    # Events as (seconds, kind): kind 0 a session start (a gap before it is not active
    # time), 1 anything else. `firsts` are the events `seconds` is measured between.
    events: list[tuple[float, int]] = []
    firsts: list[tuple[float, int]] = []  # (time, kind): 0 session start, 1 an answer
    starts: list[float] = []
    finals: list[float] = []
    for entry in _entries(data.get("sessions"), list):
        if entry.__class__ is not dict:
            continue
        started = parse_time(entry.get("started"))
        if started is not None:
            starts.append(started)
            events.append((started, 0))
            firsts.append((started, 0))
        for key in ("last", "finalised"):
            at = parse_time(entry.get(key))
            if at is not None:
                events.append((at, 1))
                if key == "finalised":
                    finals.append(at)
    back: dict[str, int] = {}
    for entry in _entries(data.get("back_steps"), list):
        if entry.__class__ is not dict:
            continue
        at = parse_time(entry.get("at"))
        if at is not None:
            events.append((at, 1))
        path = entry.get("from")
        if path.__class__ is str:
            back[path] = back.get(path, 0) + 1
    rows: list[tuple[str, str | None, str | None, int, float | None]] = []
    for path, entry in _entries(data.get("answers"), dict):
        if path.__class__ is not str:
            continue
        if entry.__class__ is not dict:
            entry = {}
        first_text, last_text = entry.get("first"), entry.get("last")
        first = parse_time(first_text)
        last = first if last_text == first_text else parse_time(last_text)
        if first is not None:
            events.append((first, 1))
            firsts.append((first, 1))
        if last is not None and last != first:
            events.append((last, 1))
        if detail:
            rows.append(
                (
                    path,
                    first_text if first is not None else None,
                    last_text if last is not None else None,
                    _count(entry.get("changes")),
                    first,
                )
            )
    if not events:
        return UNTIMED
    spans = _spans(events, firsts, starts, finals)
    if not detail:
        return spans.timing
    since = spans.since
    timed = sorted(
        (
            (at, path, first, last, changes)
            for path, first, last, changes, at in rows
            if at is not None
        ),
        key=lambda r: r[0],
    )
    questions = [
        QuestionTime(path, first, last, changes, back.pop(path, 0), since.get(at))
        for at, path, first, last, changes in timed
    ]
    questions += [
        QuestionTime(path, first, last, changes, back.pop(path, 0), None)
        for path, first, last, changes, at in rows
        if at is None
    ]
    # Stepped back from, never answered (a question left when going back).
    questions += [QuestionTime(path, None, None, 0, n, None) for path, n in back.items()]
    return replace(spans.timing, questions=tuple(questions))


class _Spans(NamedTuple):
    timing: Timing
    since: dict[float, float]  # an answer's first time -> its `seconds`


def _spans(
    events: list[tuple[float, int]],
    firsts: list[tuple[float, int]],
    starts: list[float],
    finals: list[float],
) -> _Spans:
    """Active time, start, end and every answer's `seconds` from the events (kind 0: a
    session start; 1: anything else) and the first times (kind 0: a session start; 1: an
    answer's first answer)."""
    events.sort()
    active = 0.0
    previous = events[0][0]
    for at, kind in events:
        if kind == 1:  # a session start opens a new span: the time before it was away
            gap = at - previous
            active += gap if gap < IDLE_CAP else IDLE_CAP
        previous = at
    # seconds: each answer's first time minus the event just before it among session
    # starts and answers' first times (sorted once; a tie keeps the start first).
    firsts.sort()
    since: dict[float, float] = {}
    before: float | None = None
    for at, _kind in firsts:
        if before is not None and at not in since:
            gap = at - before
            since[at] = gap if gap < IDLE_CAP else IDLE_CAP
        before = at
    started = min(starts) if starts else events[0][0]
    ended = max(finals) if finals else events[-1][0]
    # One value per answered question (equal first times share one gap, as in `since`).
    seconds = tuple(since[at] for at, kind in firsts if kind == 1 and at in since)
    timing = Timing(
        True,
        dt.datetime.fromtimestamp(started, _UTC),
        dt.datetime.fromtimestamp(ended, _UTC),
        active,
        (),
        len(starts),
        seconds,
    )
    return _Spans(timing, since)


# The times in paradata as HQ stores it (canonical JSON: no spaces, keys sorted), with
# the key each is under: read by one regular expression instead of decoding the JSON.
_TIMES = re.compile(r'"(first|last|started|finalised|at)":"([^"\\]{10,40})"')
_UNTIMED_SOURCE = '"source":"answers-file"'


def quick_timing(paradata: dict | str | bytes | None) -> Timing:
    """As `timing(paradata, questions=False)`, faster on paradata text as HQ stores it
    (canonical JSON): the checks read 100,000s of them. The same times, the same rules
    (tests compare the two); anything but text goes to `timing`. Never raises."""
    if paradata.__class__ is not str:
        return timing(paradata, questions=False)
    text: str = paradata
    if len(text) > MAX_TEXT or _UNTIMED_SOURCE in text:
        return UNTIMED
    try:
        return _quick(text)
    except Exception:  # a shape no branch foresaw: untimed, never a crash in a check
        return UNTIMED


_minutes: dict[str, float] = {}  # "2026-11-30T06:18" -> its epoch seconds (-1: unreadable)


def _quick_time(value: str) -> float | None:
    """parse_time for the laptop's own format (`2026-11-30T06:18:59.123456Z`), by the
    minute: answers come a few a minute, so most minutes are parsed once."""
    if len(value) != 27 or value[16] != ":" or value[26] != "Z":
        return parse_time(value)
    minute = value[:16]
    base = _minutes.get(minute)
    if base is None:
        if len(_minutes) > 100_000:
            _minutes.clear()
        base = _minutes[minute] = parse_time(minute + ":00Z") or -1.0
    try:
        second = float(value[17:26])
    except ValueError:
        return None
    if base < 0 or not 0.0 <= second < 60.0:
        return parse_time(value)
    return base + second


def _quick(text: str) -> Timing:
    events: list[tuple[float, int]] = []
    firsts: list[tuple[float, int]] = []
    starts: list[float] = []
    finals: list[float] = []
    first_text = ""
    for key, value in islice(_TIMES.findall(text), 4 * MAX_ENTRIES):
        if key == "last" and value == first_text:  # unchanged: "last" follows its "first"
            continue
        at = _quick_time(value)
        if at is None:
            continue
        if key == "first":
            first_text = value
            events.append((at, 1))
            firsts.append((at, 1))
        elif key == "started":
            events.append((at, 0))
            firsts.append((at, 0))
            starts.append(at)
        else:  # last, finalised, at (a back step): a last equal to its first adds a
            events.append((at, 1))  # zero gap, which changes nothing
            if key == "finalised":
                finals.append(at)
    if not events:
        return UNTIMED
    return _spans(events, firsts, starts, finals).timing
