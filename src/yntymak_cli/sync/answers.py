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

from yntymak_cli.forms.geo import LINE_TYPES, BadGeo, read_points
from yntymak_cli.forms.media import parse_ref
from yntymak_cli.forms.model import MEDIA_TYPES, Form, Question
from yntymak_cli.i18n import t
from yntymak_cli.limits import MAX_INT, MAX_REPEAT_DEPTH, MAX_TEXT_CHARS, MIN_INT

_NAME_SHOWN = 60  # characters of an unknown name quoted in a reason

_STRING_TYPES = frozenset(
    {"text", "date", "time", "datetime", "geopoint", "acknowledge"}
    | {"start", "end", "today", "deviceid", "username"}
)


class AnswerError(ValueError):
    """An answer that does not fit its question; the message is the refusal reason.

    Worded in English on purpose (catalog keys `refusal_*` with "en"): HQ stores the reason
    and sends it in the receipt; sync.reasons.localize shows it in the reader's language.
    """


def _bad(path: str, detail: str) -> AnswerError:
    return AnswerError(t("refusal_answer", "en", path=path, detail=detail))


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
                    raise _bad(where + name, t("refusal_answer_misfit", "en"))
                continue
            sub = level.repeats.get(name)
            if sub is not None:
                path = where + name
                if value.__class__ is not list:
                    raise _bad(path, t("refusal_answer_repeat_not_list", "en"))
                for i, instance in enumerate(value):
                    if instance.__class__ is not dict:
                        raise _bad(f"{path}[{i}]", t("refusal_answer_instance_not_object", "en"))
                    self._check_level(sub, instance, f"{path}[{i}]/")
                continue
            if name in level.silent:
                raise _bad(where + name, t("refusal_answer_no_value", "en"))
            shown = name if len(name) <= _NAME_SHOWN else name[:_NAME_SHOWN] + "…"
            raise _bad(
                f"{where}{shown!r}",
                t(
                    "refusal_answer_no_question",
                    "en",
                    form=self.form.id,
                    version=self.form.version,
                ),
            )

    def _check_value(self, q: Question, value: Any, path: str) -> None:
        base = q.base_type
        cls = value.__class__
        if base in _STRING_TYPES or base == "select_one":
            if cls is not str:
                raise _bad(path, t("refusal_answer_not_text", "en", type=base))
            if len(value) > MAX_TEXT_CHARS:
                raise _bad(
                    path,
                    t("refusal_answer_too_long", "en", n=len(value), limit=MAX_TEXT_CHARS),
                )
            if base == "select_one" and value not in self.choices.get(q.list_name or "", ()):
                raise _bad(path, t("refusal_answer_not_choice", "en", list=q.list_name))
        elif base == "integer":
            if cls is not int or not MIN_INT <= value <= MAX_INT:
                raise _bad(path, t("refusal_answer_not_integer", "en"))
        elif base in ("decimal", "range"):
            if cls is int:
                if not MIN_INT <= value <= MAX_INT:
                    raise _bad(path, t("refusal_answer_out_of_range", "en"))
            elif cls is not float or not math.isfinite(value):
                raise _bad(path, t("refusal_answer_not_number", "en", type=base))
        elif base in LINE_TYPES:
            # Points as the laptop stores them, bounded in length and count before any split.
            if cls is not str:
                raise _bad(path, t("refusal_answer_not_text", "en", type=base))
            try:
                read_points(base, value)
            except BadGeo as exc:
                raise _bad(path, str(exc)) from None
        elif base in MEDIA_TYPES:
            # The stored shape `NAME sha256:HEX` only: the hash names the file the bundle
            # must carry (or HQ hold), checked by sync/hq_media.py.
            if cls is not str or len(value) > MAX_TEXT_CHARS or parse_ref(value) is None:
                raise _bad(path, t("refusal_answer_not_media", "en", type=base))
        elif base == "select_multiple":
            names = self.choices.get(q.list_name or "", frozenset())
            if cls is not list:
                raise _bad(path, t("refusal_answer_not_list", "en"))
            if len(value) > len(names):
                raise _bad(
                    path,
                    t(
                        "refusal_answer_too_many",
                        "en",
                        n=len(value),
                        list=q.list_name,
                        size=len(names),
                    ),
                )
            if not all(v.__class__ is str and v in names for v in value):
                raise _bad(path, t("refusal_answer_not_choices", "en", list=q.list_name))
            if len(set(value)) != len(value):
                raise _bad(path, t("refusal_answer_twice", "en"))
        elif base == "calculate":
            # A calculation keeps numbers as numbers and everything else as text.
            if cls is str:
                if len(value) > MAX_TEXT_CHARS:
                    raise _bad(path, t("refusal_answer_text_too_long", "en", limit=MAX_TEXT_CHARS))
            elif cls is float:
                if not math.isfinite(value):
                    raise _bad(path, t("refusal_answer_not_finite", "en"))
            elif cls is not int:
                raise _bad(path, t("refusal_answer_calculation", "en"))
        else:  # a value type added to the model without a rule here: refuse, never guess
            raise _bad(path, t("refusal_answer_unknown_type", "en", type=base))


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

    def line(v: Any) -> bool:
        if v.__class__ is not str:
            return False
        try:
            read_points(base, v)
        except BadGeo:
            return False
        return True

    def media(v: Any) -> bool:
        return v.__class__ is str and len(v) <= MAX_TEXT_CHARS and parse_ref(v) is not None

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
    if base in LINE_TYPES:
        return line
    if base == "integer":
        return integer
    if base in ("decimal", "range"):
        return number
    if base == "select_multiple":
        return choices
    if base == "calculate":
        return calculated
    if base in MEDIA_TYPES:
        return media
    return lambda v: False  # an unknown value type: refused by _check_value


def _level(questions: list[Question], depth: int) -> _Level:
    if depth > MAX_REPEAT_DEPTH:
        raise AnswerError(t("refusal_form_too_deep", "en", depth=MAX_REPEAT_DEPTH))
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
