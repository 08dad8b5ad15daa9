"""Checking answers that arrive in a bundle against the form definition they name.

HQ trusts a record's answers only as far as their shape goes: an enrolled device signs
whatever it sends, so a broken or hostile one could send answers no form engine makes
(objects in a select_multiple, a 4000-digit integer, nesting hundreds of levels deep).
They are checked here, per question type (docs/design.md, "Values"), with bounds on size
and depth, so that what HQ stores is what the exporter and `hq status` expect.

Unknown question names are refused, not ignored: a device stores answers only under the
names of the definition whose hash the record names, so another name means the record was
not made by yntymak's engine, and silently dropping it would hide that from HQ.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from yntymak_cli.forms.model import Form, Question

MAX_TEXT_CHARS = 1_000_000  # one answer's text; a form answer is at most a few pages
MAX_REPEAT_DEPTH = 32  # repeats inside repeats; real forms nest two or three
MIN_INT, MAX_INT = -(2**63), 2**63 - 1  # SQLite's INTEGER range, and every analysis tool's
_NAME_SHOWN = 60  # characters of an unknown name quoted in a reason

_STRING_TYPES = frozenset(
    {"text", "date", "time", "datetime", "geopoint", "acknowledge"}
    | {"start", "end", "today", "deviceid", "username"}
)


class AnswerError(ValueError):
    """An answer that does not fit its question; the message is the refusal reason."""


@dataclass
class _Level:
    """The questions answered in one container: the top level or one repeat's instance."""

    fields: dict[str, Question] = field(default_factory=dict)  # value-holding questions
    repeats: dict[str, _Level] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)  # groups, notes: no value of their own
    # name -> a predicate true for a fitting value: the common case costs one call; the
    # detailed check (_check_value) runs only to word the reason of a refusal.
    quick: dict[str, Callable[[Any], bool]] = field(default_factory=dict)


@dataclass
class AnswerSchema:
    """What one form definition accepts, worked out once per definition."""

    form: Form
    root: _Level
    choices: dict[str, frozenset[str]]  # list name -> choice names

    @classmethod
    def of(cls, form: Form) -> AnswerSchema:
        choices = {name: frozenset(c.name for c in items) for name, items in form.choices.items()}
        schema = cls(form, _level(form.questions, 0), choices)
        schema._add_quick(schema.root)
        return schema

    def _add_quick(self, level: _Level) -> None:
        for name, q in level.fields.items():
            level.quick[name] = _quick(q, self.choices.get(q.list_name or "", frozenset()))
        for sub in level.repeats.values():
            self._add_quick(sub)

    def check(self, answers: dict[str, Any]) -> None:
        """Raise AnswerError naming the first answer that does not fit."""
        self._check_level(self.root, answers, "")

    def _check_level(self, level: _Level, answers: dict[str, Any], where: str) -> None:
        for name, value in answers.items():
            if value is None:
                if name in level.fields or name in level.repeats or name in level.silent:
                    continue
            quick = level.quick.get(name)
            if quick is not None:
                if not quick(value):
                    self._check_value(level.fields[name], value, where + name)
                    raise AnswerError(f"answer {where}{name}: does not fit its question")
                continue
            sub = level.repeats.get(name)
            if sub is not None:
                path = where + name
                if value.__class__ is not list:
                    raise AnswerError(f"answer {path}: a repeat must be a list of instances")
                for i, instance in enumerate(value):
                    if instance.__class__ is not dict:
                        raise AnswerError(f"answer {path}[{i}]: a repeat instance is not an object")
                    self._check_level(sub, instance, f"{path}[{i}]/")
                continue
            if name in level.silent:
                raise AnswerError(f"answer {where}{name}: this question holds no value")
            shown = name if len(name) <= _NAME_SHOWN else name[:_NAME_SHOWN] + "…"
            raise AnswerError(
                f"answer {where}{shown!r}: no such question here in form"
                f" {self.form.id} {self.form.version}"
            )

    def _check_value(self, q: Question, value: Any, path: str) -> None:
        base = q.base_type
        cls = value.__class__
        if base in _STRING_TYPES or base == "select_one":
            if cls is not str:
                raise AnswerError(f"answer {path}: a {base} answer must be text")
            if len(value) > MAX_TEXT_CHARS:
                raise AnswerError(
                    f"answer {path}: {len(value)} characters, above the limit of {MAX_TEXT_CHARS}"
                )
            if base == "select_one" and value not in self.choices.get(q.list_name or "", ()):
                raise AnswerError(f"answer {path}: not a choice of list {q.list_name}")
        elif base == "integer":
            if cls is not int or not MIN_INT <= value <= MAX_INT:
                raise AnswerError(f"answer {path}: an integer answer must be a whole number"
                                  " from -2**63 to 2**63-1")  # fmt: skip
        elif base in ("decimal", "range"):
            if cls is int:
                if not MIN_INT <= value <= MAX_INT:
                    raise AnswerError(f"answer {path}: the number is out of range")
            elif cls is not float or not math.isfinite(value):
                raise AnswerError(f"answer {path}: a {base} answer must be a finite number")
        elif base == "select_multiple":
            names = self.choices.get(q.list_name or "", frozenset())
            if cls is not list:
                raise AnswerError(f"answer {path}: a select_multiple answer must be a list")
            if len(value) > len(names):
                raise AnswerError(
                    f"answer {path}: {len(value)} choices selected, list {q.list_name} has"
                    f" {len(names)}"
                )
            if not all(v.__class__ is str and v in names for v in value):
                raise AnswerError(f"answer {path}: holds something not a choice of {q.list_name}")
            if len(set(value)) != len(value):
                raise AnswerError(f"answer {path}: a choice is selected twice")
        elif base == "calculate":
            # A calculation keeps numbers as numbers and everything else as text.
            if cls is str:
                if len(value) > MAX_TEXT_CHARS:
                    raise AnswerError(f"answer {path}: text above the limit of {MAX_TEXT_CHARS}")
            elif cls is float:
                if not math.isfinite(value):
                    raise AnswerError(f"answer {path}: not a finite number")
            elif cls is not int:
                raise AnswerError(f"answer {path}: a calculation is a number or text")
        else:  # a value type added to the model without a rule here: refuse, never guess
            raise AnswerError(f"answer {path}: HQ cannot check answers of type {base}")


def _quick(q: Question, names: frozenset[str]) -> Callable[[Any], bool]:
    """The predicate of one question: exactly the values _check_value lets through."""
    base = q.base_type

    def text(v: Any) -> bool:
        return v.__class__ is str and len(v) <= MAX_TEXT_CHARS

    def choice(v: Any) -> bool:
        return v.__class__ is str and v in names

    def integer(v: Any) -> bool:
        return v.__class__ is int and MIN_INT <= v <= MAX_INT

    def number(v: Any) -> bool:
        cls = v.__class__
        if cls is float:
            return math.isfinite(v)
        return cls is int and MIN_INT <= v <= MAX_INT

    def choices(v: Any) -> bool:
        return (
            v.__class__ is list
            and len(v) <= len(names)
            and all(x.__class__ is str and x in names for x in v)
            and len(set(v)) == len(v)
        )

    def calculated(v: Any) -> bool:
        cls = v.__class__
        if cls is str:
            return len(v) <= MAX_TEXT_CHARS
        if cls is float:
            return math.isfinite(v)
        return cls is int

    if base in _STRING_TYPES:
        return text
    if base == "select_one":
        return choice
    if base == "integer":
        return integer
    if base in ("decimal", "range"):
        return number
    if base == "select_multiple":
        return choices
    if base == "calculate":
        return calculated
    return lambda v: False  # an unknown value type: refused by _check_value


def _level(questions: list[Question], depth: int) -> _Level:
    if depth > MAX_REPEAT_DEPTH:
        raise AnswerError(f"the form nests repeats more than {MAX_REPEAT_DEPTH} levels deep")
    level = _Level()
    _fill(level, questions, depth)
    return level


def _fill(level: _Level, questions: list[Question], depth: int) -> None:
    for q in questions:
        if q.is_repeat:
            level.repeats.setdefault(q.name, _level(q.questions, depth + 1))
        elif q.is_group:
            level.silent.add(q.name)
            _fill(level, q.questions, depth)  # groups are flattened into their container
        elif q.holds_value:
            level.fields.setdefault(q.name, q)
        else:
            level.silent.add(q.name)
