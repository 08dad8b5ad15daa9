"""The survey's state (what the store saves as a draft) and the steps the engine hands the UI.

A node path addresses one answer: ``("village",)``, ``("incidents", 1, "resolved")``
(repeat name, 0-based instance index, question name; nested repeats continue the pattern).
The repeat itself is addressed as ``("incidents",)`` and its "add another?" prompt as
``("incidents", n)`` where n is the index the new instance would get.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from yntymak_cli.errors import InvalidInput
from yntymak_cli.forms.model import Choice, Question

NodePath = tuple[str | int, ...]

STATE_FORMAT = 1


def format_path(path: NodePath) -> str:
    """``incidents[2]/resolved`` (1-based instance numbers) for messages."""
    parts: list[str] = []
    for part in path:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part + 1}]"
        else:
            parts.append(part)
    return "/".join(parts)


def _to_path(raw: Any) -> NodePath:
    if not isinstance(raw, list | tuple) or not all(
        isinstance(p, str) or (isinstance(p, int) and not isinstance(p, bool)) for p in raw
    ):
        raise InvalidInput(f"invalid node path in saved survey state: {raw!r}")
    return tuple(raw)


class _Cache:
    """Derived data (relevance, repeat counts) kept beside the answers; never saved.

    `owner` is the engine that filled it: another engine (or a state read from JSON)
    makes the engine recompute everything before use.
    """

    __slots__ = ("owner", "relevant", "counts")

    def __init__(self) -> None:
        self.owner: object | None = None
        self.relevant: dict[str, dict[tuple[int, ...], bool]] = {}
        self.counts: dict[str, dict[tuple[int, ...], int]] = {}

    def __deepcopy__(self, memo: dict) -> _Cache:
        return _Cache()  # a copied state is recomputed on first use, never shares this


@dataclass
class SurveyState:
    """Answers (the answers-file shape) plus what navigation needs to resume.

    Change it only through the Engine (or call `Engine.refresh` afterwards): the engine
    keeps derived data beside it.
    """

    answers: dict[str, Any] = field(default_factory=dict)
    # Repeats (paths like ("incidents",)) where the enumerator answered "no" to "add?".
    declined_repeats: list[NodePath] = field(default_factory=list)
    # Answers that came from a `default` and were not yet confirmed: resume stops there.
    defaulted: list[NodePath] = field(default_factory=list)
    _cache: _Cache = field(default_factory=_Cache, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "answers": copy.deepcopy(self.answers),
            "declined_repeats": [list(p) for p in self.declined_repeats],
            "defaulted": [list(p) for p in self.defaulted],
        }

    @classmethod
    def from_json(cls, data: Any) -> SurveyState:
        if not isinstance(data, dict) or not isinstance(data.get("answers", {}), dict):
            raise InvalidInput("saved survey state must be a mapping with 'answers'")
        if data.get("format", STATE_FORMAT) != STATE_FORMAT:
            raise InvalidInput(f"unknown survey state format {data.get('format')!r}")
        return cls(
            answers=copy.deepcopy(data.get("answers") or {}),
            declined_repeats=[_to_path(p) for p in data.get("declined_repeats") or []],
            defaulted=[_to_path(p) for p in data.get("defaulted") or []],
        )


@dataclass(frozen=True)
class Step:
    """What the UI shows next.

    kind: "question" (ask it), "note" (display only: notes and read_only questions, whose
    `value` is shown), "add_repeat" (ask whether to add an instance; `value` is False when
    the enumerator already said no, else None), "unsupported" (display `hint`, then move
    on) or "end".
    """

    kind: str
    path: NodePath
    question: Question | None = None
    choices: tuple[Choice, ...] = ()  # offered choices of a select, after choice_filter
    value: Any = None  # the current answer, for the prompt's default
    label: str = ""  # in the requested language, ${refs} filled in
    hint: str = ""
    repeat_index: int | None = None  # 1-based instance number ("Incident 2")
    repeat_label: str = ""  # label of the enclosing repeat (of the repeat for add_repeat)
    required: bool = False
    # The question holds an answer, possibly an explicit blank (an optional question left
    # empty): a list prompt then starts on "leave blank", not on the first choice.
    answered: bool = False

    @property
    def where(self) -> str:
        return format_path(self.path)
