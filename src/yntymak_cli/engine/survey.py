"""The form engine: given a form and a survey state, what to ask next and what an answer does.

Pure: no I/O, no prompts. Both the interactive survey and ``--answers`` files drive it.
Semantics follow ODK/JavaRosa:

* A node is relevant when its own ``relevant`` is true and its parent group/repeat instance
  is relevant; repeat instances at or beyond a lowered ``repeat_count`` are not relevant.
  Expressions see non-relevant answers as empty, so calculations agree with the final record.
* Answers of non-relevant nodes stay in the draft (flipping back restores them) and are
  left out by :meth:`Engine.finalise`.
* ``${x}`` resolves from the current repeat instance outwards; a question inside a repeat
  seen from outside it is a nodeset (``count``, ``sum``...).
* Calculations are recomputed after each accepted answer, only those depending on it, in
  dependency order. Results are stored as ODK stores them (text) except numbers, which stay
  numbers (ints when integral) so exports show them as numbers: true/false become
  ``"true"``/``"false"``, dates ``"YYYY-MM-DD"``, NaN and ``""`` mean empty.
* Metadata (start, today, deviceid, username) is filled by :meth:`Engine.start`, ``end`` by
  :meth:`Engine.finalise`. Defaults are applied when a node is created (start, new repeat
  instance) if it has no answer.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from yntymak_cli.engine.plan import ROOT, EngineError, Plan
from yntymak_cli.engine.state import NodePath, Step, SurveyState, format_path
from yntymak_cli.errors import InvalidInput, ProblemsError
from yntymak_cli.forms import expressions as ex
from yntymak_cli.forms.model import SELECT_TYPES, Choice, Form, Question, text_in
from yntymak_cli.forms.values import InvalidValue, is_empty, names_shown, parse_value
from yntymak_cli.i18n import t

__all__ = [
    "Engine",
    "EngineError",
    "NodePath",
    "Step",
    "SurveyState",
    "display_value",
    "format_path",
]

# A repeat_count above this is a form bug (or an attack), not a survey.
MAX_REPEAT_COUNT = 1000

_LABEL_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")
# A number put into a label or hint takes the reader's decimal mark: "12,5%" in Kyrgyz and
# Russian. Only what is shown changes; stored values and expressions keep the point.
DECIMAL_COMMA_LANGS = frozenset({"ky", "ru"})
_DECIMAL_TEXT = re.compile(r"^-?\d+\.\d+$")
_NUMBER_TYPES = frozenset({"decimal", "range", "calculate"})

Idx = tuple[int, ...]
# A slot is a step before it is dressed up for display: kind, path, question, instance idx.
Slot = tuple[str, NodePath, Question, Idx]


def _lt(key: str, **params: object) -> str:
    """A message in the language of this command's messages."""
    from yntymak_cli.i18n import current_lang

    return t(key, current_lang(), **params)


class _Ctx:
    """The expressions Context for one node (its repeat instance), see forms.expressions."""

    __slots__ = ("eng", "st", "rpath", "idx", "cur", "cols", "own")

    def __init__(
        self,
        eng: Engine,
        st: SurveyState,
        rpath: tuple[str, ...],
        idx: Idx,
        current: Any = None,
        columns: dict[str, Any] | None = None,
        own: tuple[str, Idx, Any] | None = None,
    ) -> None:
        self.eng, self.st, self.rpath, self.idx = eng, st, rpath, idx
        self.cur, self.cols, self.own = current, columns, own

    def _common(self, target: tuple[str, ...]) -> int:
        c = 0
        for a, b in zip(target, self.rpath, strict=False):
            if a != b:
                break
            c += 1
        return c

    def value(self, name: str) -> Any:
        plan = self.eng._plan
        target = plan.rpath.get(name)
        if target is None:
            return None
        c = self._common(target)
        if c == len(target) and not plan.form.index[name].is_repeat:
            idx = self.idx[:c]
            own = self.own
            if own is not None and own[0] == name and own[1] == idx:
                return self.eng._seen(name, own[2])  # the candidate being validated
            return self.eng._seen(name, self.eng._value(self.st, name, idx))
        found = self.values(name)
        return found[0] if found else None

    def values(self, name: str) -> list[Any]:
        plan = self.eng._plan
        target = plan.rpath.get(name)
        if target is None:
            return []
        is_repeat = plan.form.index[name].is_repeat
        chain = (*target, name) if is_repeat else target
        c = self._common(target)
        out: list[Any] = []
        self.eng._collect(self.st, name, chain, c, self.idx[:c], is_repeat, out)
        if name in self.eng._media:
            return [self.eng._seen(name, v) for v in out]
        return out

    def current(self) -> Any:
        return self.cur

    def column(self, name: str) -> Any:
        if self.cols is None:
            raise ex.ExpressionError(f"'{name}' is not available here: write ${{{name}}}")
        return self.cols.get(name)  # a row without that column is empty, as in ODK

    def position(self) -> int:
        return self.idx[-1] + 1 if self.idx else 0

    def size(self) -> int:
        """last(): how many instances the innermost repeat around this node has (1 outside)."""
        return len(self.values(self.rpath[-1])) if self.rpath else 1

    def indexed(self, name: str, positions: dict[str, int]) -> Any:
        """indexed-repeat(): `name` in the instances `positions` names (repeat -> 1-based).

        A repeat around `name` that is not named keeps the instance this node is in, as in
        ODK; one that is neither named nor around this node is an error. An instance that
        does not exist gives an empty value.
        """
        plan = self.eng._plan
        target = plan.rpath.get(name)
        if target is None:
            return None
        for repeat in positions:
            if repeat not in target:
                raise ex.ExpressionError(_lt("ex_indexed_not_inside", name=name, repeat=repeat))
        common = self._common(target)
        idx: list[int] = []
        for level, repeat in enumerate(target):
            if repeat in positions:
                idx.append(positions[repeat] - 1)
            elif level < common:
                idx.append(self.idx[level])
            else:
                raise ex.ExpressionError(_lt("ex_indexed_which", repeat=repeat))
        if any(i < 0 for i in idx):
            return None
        return self.eng._seen(name, self.eng._value(self.st, name, tuple(idx)))

    def pulldata(self, file: str, column: str, key_column: str, key: str) -> str:
        form = self.eng.form
        if file not in form.pulldata:
            raise ex.ExpressionError(_lt("ex_pulldata_no_table", file=file))
        row = form.pulldata_row(file, key_column, key)
        return "" if row is None else row.get(column, "")

    def choice_label(self, question: str, choice: str) -> str:
        q = self.eng.form.index.get(question)
        if q is None:
            return choice
        return self.eng._choice_label(q, choice)

    def now(self) -> dt.datetime:
        # now() carries the laptop's UTC offset, as in ODK ('…T09:30:15+06:00'): its text
        # names one instant wherever it is read.
        return self.eng._aware_now()


class Engine:
    """Drives one form. Engines hold no survey data: every method takes the SurveyState.

    `lang` picks labels and messages; None means the form's default language for form
    texts and English for the survey's own messages.
    """

    def __init__(
        self,
        form: Form,
        *,
        lang: str | None = None,
        now: Callable[[], dt.datetime] | None = None,
        username: str = "",
        deviceid: str = "",
    ) -> None:
        self.form = form
        self.lang = lang
        self.username = username
        self.deviceid = deviceid
        self._now = now or dt.datetime.now
        self._plan = Plan.of(form)
        # Media questions: expressions see their file name (see _seen).
        self._media = form.media_names
        # (list, column) -> choices grouped by that column, for cascades (see _cascade).
        self._groups: dict[tuple[str, str], dict[str, tuple[Choice, ...]] | None] = {}
        # Expression failures while surveying (a form bug): treated as false/empty so the
        # interview goes on; kept here so the UI can log or show them.
        self.expression_errors: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self, answers: dict[str, Any] | None = None) -> SurveyState:
        """A new state: metadata, defaults, repeat instances from repeat_count, calculations.

        `answers` (typed, answers-file shape) pre-fills it; they are copied.
        """
        st = SurveyState(answers=copy.deepcopy(answers) if answers else {})
        self._init_tree(st, ROOT, (), (), st.answers)
        self.refresh(st)
        return st

    def refresh(self, st: SurveyState) -> None:
        """Recompute everything derived (after loading a draft or editing answers directly)."""
        cache = st._cache
        cache.owner = self
        cache.relevant.clear()
        cache.counts.clear()
        for name in self._plan.work:
            self._process(st, name)

    def _fresh(self, st: SurveyState) -> None:
        if st._cache.owner is not self:
            self.refresh(st)

    # ------------------------------------------------------------------ navigation

    def first_step(self, st: SurveyState) -> Step:
        return self.next_step(st, None)

    def next_step(self, st: SurveyState, after: Step | None) -> Step:
        """The next step after `after` (from the start when None); kind "end" when done."""
        self._fresh(st)
        if after is None:
            slots = self._walk(st, ROOT, (), (), 0)
        elif after.kind == "end":
            return self._end()
        else:
            slots = self._after(st, after.path)
        slot = next(slots, None)
        return self._end() if slot is None else self._step(st, slot)

    def previous_step(self, st: SurveyState, before: Step) -> Step | None:
        """The step shown before `before`, or None at the very start."""
        self._fresh(st)
        limit = (float("inf"),) if before.kind == "end" else self._plan.key(before.path)
        prev: Slot | None = None
        for slot in self._walk(st, ROOT, (), (), 0):
            if self._plan.key(slot[1]) >= limit:
                break
            prev = slot
        return None if prev is None else self._step(st, prev)

    def first_unanswered(self, st: SurveyState) -> Step:
        """Where to resume: the first question never answered (or holding an unconfirmed
        default), or an undecided "add another?"; "end" when everything was seen."""
        self._fresh(st)
        defaulted = set(st.defaulted)
        declined = set(st.declined_repeats)
        for slot in self._walk(st, ROOT, (), (), 0):
            kind, path, q, idx = slot
            if kind == "question":
                cont = self._container(st.answers, self._plan.rpath[q.name], idx)
                if cont is None or q.name not in cont or path in defaulted:
                    return self._step(st, slot)
            elif kind == "add_repeat" and path[:-1] not in declined:
                return self._step(st, slot)
        return self._end()

    def steps(self, st: SurveyState) -> Iterator[Step]:
        """Every step of the survey as it stands, in order (for review screens and tests)."""
        self._fresh(st)
        for slot in self._walk(st, ROOT, (), (), 0):
            yield self._step(st, slot)

    # ------------------------------------------------------------------ answering

    def validate(self, st: SurveyState, path: NodePath, raw: Any) -> tuple[Any, str | None]:
        """(typed value, error message in the engine's language or None) for `raw` at path."""
        self._fresh(st)
        q, idx = self._node(path)
        try:
            value = parse_value(self.form, q, raw)
        except InvalidValue as exc:
            return None, exc.message(self.lang)
        return value, self._check(st, q, idx, value)

    def answer(self, st: SurveyState, path: NodePath, raw: Any) -> str | None:
        """Validate and store an answer, then recalculate. Returns the error message or None.

        An empty answer to an optional question is stored as None, which marks the question
        as seen for `first_unanswered`.
        """
        q, idx = self._node(path)
        if self._plan.kind[q.name] != "question":
            raise EngineError(f"{format_path(path)}: a {q.base_type} question takes no answer")
        value, error = self.validate(st, path, raw)
        if error is not None:
            return error
        cont = self._container(st.answers, self._plan.rpath[q.name], idx)
        if cont is None:
            raise EngineError(f"{format_path(path)}: no such repeat instance")
        old = cont.get(q.name, None)
        cont[q.name] = value
        if path in st.defaulted:
            st.defaulted.remove(path)
        if old != value or type(old) is not type(value):
            self._changed(st, (q.name,))
        return None

    def add_repeat(self, st: SurveyState, repeat_path: NodePath) -> NodePath:
        """Add an instance to a repeat without repeat_count; returns the new instance's path.

        `repeat_path` is the repeat (``("incidents",)``) or an add_repeat step's path.
        """
        self._fresh(st)
        r, idx, path = self._repeat_node(repeat_path)
        cont = self._container(st.answers, self._plan.rpath[r.name], idx)
        if cont is None:
            raise EngineError(f"{format_path(path)}: no such repeat instance")
        instances = cont.get(r.name)
        if not isinstance(instances, list):
            instances = cont[r.name] = []
        new: dict[str, Any] = {}
        instances.append(new)
        k = len(instances) - 1
        self._init_tree(st, r.name, (*path, k), (*idx, k), new)
        if path in st.declined_repeats:
            st.declined_repeats.remove(path)
        self._changed(st, (r.name,))
        return (*path, k)

    def decline_repeat(self, st: SurveyState, repeat_path: NodePath) -> None:
        """Record "no more instances" for a repeat without repeat_count."""
        _, _, path = self._repeat_node(repeat_path)
        if path not in st.declined_repeats:
            st.declined_repeats.append(path)

    def remove_repeat(self, st: SurveyState, instance_path: NodePath) -> None:
        """Delete one instance of a repeat without repeat_count (an instance added by mistake)."""
        self._fresh(st)
        if len(instance_path) < 2 or not isinstance(instance_path[-1], int):
            raise EngineError(f"{format_path(instance_path)}: not a repeat instance")
        r, idx, path = self._repeat_node(instance_path[:-1])
        k = instance_path[-1]
        cont = self._container(st.answers, self._plan.rpath[r.name], idx)
        instances = cont.get(r.name) if cont is not None else None
        if not isinstance(instances, list) or not 0 <= k < len(instances):
            raise EngineError(f"{format_path(instance_path)}: no such repeat instance")
        del instances[k]
        n = len(path)

        def shift(paths: list[NodePath]) -> list[NodePath]:
            out = []
            for p in paths:
                if p[:n] == path and len(p) > n and isinstance(at := p[n], int):
                    if at == k:
                        continue  # inside the removed instance
                    if at > k:
                        p = (*p[:n], at - 1, *p[n + 1 :])
                out.append(p)
            return out

        st.declined_repeats = shift(st.declined_repeats)
        st.defaulted = shift(st.defaulted)
        self._changed(st, (r.name,))

    def back_out_of_instance(self, st: SurveyState, step: Step) -> Step | None:
        """Going back from the first step of a just-added, still empty instance of a repeat
        without repeat_count: remove that instance and return its "add?" step again, so an
        instance added by mistake can be undone. None (nothing changed) otherwise."""
        self._fresh(st)
        path = step.path
        if step.kind not in ("question", "note", "unsupported") or len(path) < 3:
            return None
        k, prefix = path[-2], path[:-1]
        if not isinstance(k, int) or not self._is_open_repeat(prefix):
            return None
        r, idx, _ = self._repeat_node(prefix)
        if k != len(self._instances(st, r.name, idx)) - 1:
            return None
        previous = self.previous_step(st, step)
        if previous is not None and previous.path[: len(prefix)] == prefix:
            return None  # not the instance's first step
        inst = self._instances(st, r.name, idx)[k]
        if not self._blank_instance(st, r.name, prefix, inst):
            return None
        self.remove_repeat(st, prefix)
        for slot in self._walk(st, ROOT, (), (), 0):
            if slot[0] == "add_repeat" and slot[1] == prefix:
                return self._step(st, slot)
        return None

    def _is_open_repeat(self, instance_path: NodePath) -> bool:
        """`instance_path` (..., repeat, k) names an instance of a repeat without a count."""
        name = instance_path[-2]
        q = self.form.index.get(name) if isinstance(name, str) else None
        return q is not None and q.is_repeat and not q.repeat_count

    def _blank_instance(self, st: SurveyState, r: str, prefix: NodePath, inst: Any) -> bool:
        """Nothing in the instance was given by the enumerator (defaults do not count)."""
        if not isinstance(inst, dict):
            return True
        defaulted = set(st.defaulted)
        for name, value in inst.items():
            q = self.form.index.get(name)
            if q is None or self._plan.kind.get(name) != "question":
                if q is not None and q.is_repeat and value:
                    return False  # nested instances were added
                continue  # calculations, metadata, notes
            if not is_empty(value) and (*prefix, name) not in defaulted:
                return False
        return True

    # ------------------------------------------------------------------ checking, finishing

    def problems(self, st: SurveyState, *, names: bool = True) -> list[tuple[NodePath, str]]:
        """Missing required answers and failed constraints/filters among relevant questions.

        Messages name choices by name (what an answers file holds), or by label with
        ``names=False`` (what the enumerator saw, for the review screen)."""
        self._fresh(st)
        out: list[tuple[NodePath, str]] = []
        for kind, path, q, idx in self._walk(st, ROOT, (), (), 0):
            if kind != "question":
                continue
            cont = self._container(st.answers, self._plan.rpath[q.name], idx)
            value = None if cont is None else cont.get(q.name)
            error = self._check(st, q, idx, value, names=names)
            if error is not None:
                out.append((path, error))
        return out

    def finalise(self, st: SurveyState) -> dict[str, Any]:
        """The record's answers: relevant answers, calculations and metadata, in form order.

        Fills `end` metadata (in the state too). Raises ProblemsError listing
        ``path: message`` lines if `problems()` are left.
        """
        self._fresh(st)
        found = self.problems(st)
        if found:
            raise ProblemsError([f"{format_path(p)}: {m}" for p, m in found])
        return self.finalise_unchecked(st)

    def review(self, st: SurveyState) -> list[tuple[NodePath, str, str]]:
        """(path, label, displayed value) of every relevant question, for a review table."""
        self._fresh(st)
        rows = []
        for kind, path, q, idx in self._walk(st, ROOT, (), (), 0):
            if kind not in ("question", "note") or not q.holds_value:
                continue
            cont = self._container(st.answers, self._plan.rpath[q.name], idx)
            value = None if cont is None else cont.get(q.name)
            label = self._render(st, q.label, q, idx) or q.name
            rows.append((path, label, display_value(self.form, q, value, self.lang)))
        return rows

    def instance_name(self, st: SurveyState) -> str | None:
        """The form's instance_name expression for this survey ("Кара-Суу 2026-11-05")."""
        if not self.form.instance_name:
            return None
        self._fresh(st)
        try:
            result = ex.evaluate(self.form.instance_name, _Ctx(self, st, (), ()))
        except ex.ExpressionError as exc:
            self._log(f"instance_name: {exc.message}")
            return None
        # As a calculation's result is kept: NaN (an unanswered number) names nothing.
        return ex.to_string(_stored(result)).strip() or None

    # ------------------------------------------------------------------ queries
    # What a checker outside the engine may ask about a state (`engine.fill` uses these):
    # it reads the engine through them, never through its private members.

    @property
    def plan(self) -> Plan:
        """What is worked out once for this form: order, containers, expressions."""
        return self._plan

    def node(self, path: NodePath) -> tuple[Question, Idx]:
        """The question and instance indices a node path names; EngineError if none."""
        return self._node(path)

    def is_relevant(self, st: SurveyState, name: str, idx: Idx) -> bool:
        """Whether a node is relevant: its own condition, its parents' and repeat counts."""
        self._fresh(st)
        return self._relevant(st, name, idx)

    def is_required(self, st: SurveyState, name: str, idx: Idx) -> bool:
        """Whether a question must be answered, as the interview would ask it (its
        `required`, static or an expression of the answers, its own included)."""
        self._fresh(st)
        q = self.form.index[name]
        cont = self._container(st.answers, self._plan.rpath[name], idx)
        return self._required(st, q, idx, None if cont is None else cont.get(name))

    def repeat_count(self, st: SurveyState, r: str, idx: Idx) -> int:
        """A repeat's repeat_count value (0 when empty, negative or not a number)."""
        self._fresh(st)
        return self._repeat_count(st, r, idx)

    def instance_count(self, st: SurveyState, r: str, idx: Idx) -> int:
        """How many instances of a repeat count: stored ones, up to its repeat_count."""
        self._fresh(st)
        return self._active(st, r, idx)

    def choices(self, st: SurveyState, q: Question, idx: Idx) -> tuple[Choice, ...]:
        """The choices a select offers here, after its choice_filter."""
        self._fresh(st)
        return self._choices(st, q, idx)

    def finalise_unchecked(self, st: SurveyState) -> dict[str, Any]:
        """As `finalise`, without checking `problems()`: for a caller that has just checked
        them itself (`engine.fill` reports them with their paths)."""
        stamp = self._aware_now().isoformat(timespec="seconds")
        self._fill_end(st.answers, ROOT, stamp)
        return self._record(st, ROOT, (), st.answers)

    def _aware_now(self) -> dt.datetime:
        """The laptop's time with its UTC offset: start, end and now() are recorded as ODK
        records them ('2026-11-30T09:30:15+06:00'), one instant wherever they are read,
        and the exports show the offset (before 2026-11-30, start/end had none)."""
        value = self._now()
        return value if value.tzinfo is not None else value.astimezone()

    # ------------------------------------------------------------------ internals: nodes

    def _node(self, path: NodePath) -> tuple[Question, Idx]:
        """The question and instance indices a node path names; EngineError if none."""
        if not path or len(path) % 2 == 0 or not isinstance(path[-1], str):
            raise EngineError(f"{path!r} is not a question path")
        name = path[-1]
        q = self.form.index.get(name)
        names, idx = path[:-1:2], path[1::2]
        if (
            q is None
            or name not in self._plan.pos
            or tuple(names) != self._plan.rpath[name]
            or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in idx)
        ):
            raise EngineError(f"{format_path(path)}: no such question in form '{self.form.id}'")
        # all() above proved every index a non-negative int; mypy does not narrow through it
        return q, tuple(idx)  # type: ignore[arg-type]

    def _repeat_node(self, path: NodePath) -> tuple[Question, Idx, NodePath]:
        """A repeat from its path or an add_repeat path: (repeat, enclosing idx, its path)."""
        if path and isinstance(path[-1], int):
            path = path[:-1]
        q, idx = self._node(path)
        if not q.is_repeat:
            raise EngineError(f"{format_path(path)}: not a repeat")
        if q.repeat_count:
            raise EngineError(f"{format_path(path)}: instances follow its repeat_count")
        return q, idx, path

    @staticmethod
    def _container(answers: dict, rpath: tuple[str, ...], idx: Idx) -> dict | None:
        cont: Any = answers
        for r, k in zip(rpath, idx, strict=False):
            instances = cont.get(r)
            if not isinstance(instances, list) or k >= len(instances):
                return None
            cont = instances[k]
            if not isinstance(cont, dict):
                return None
        return cont

    def _instances(self, st: SurveyState, r: str, idx: Idx) -> list:
        cont = self._container(st.answers, self._plan.rpath[r], idx)
        instances = None if cont is None else cont.get(r)
        return instances if isinstance(instances, list) else []

    def _all_idx(self, st: SurveyState, rpath: tuple[str, ...]) -> Iterator[Idx]:
        """Every stored instance (active or not) of a chain of repeats."""

        def rec(level: int, idx: Idx) -> Iterator[Idx]:
            if level == len(rpath):
                yield idx
                return
            for k in range(len(self._instances(st, rpath[level], idx))):
                yield from rec(level + 1, (*idx, k))

        return rec(0, ())

    # ------------------------------------------------------------------ internals: evaluation

    def _log(self, message: str) -> None:
        if message not in self.expression_errors:
            self.expression_errors.append(message)

    def _eval(
        self,
        st: SurveyState,
        name: str,
        key: str,
        idx: Idx,
        current: Any = None,
        columns: dict[str, Any] | None = None,
        own: tuple[str, Idx, Any] | None = None,
    ) -> Any:
        expr = self._plan.exprs[(name, key)]
        current = self._seen(name, current)  # `.` of a media question: its file name too
        ctx = _Ctx(self, st, self._plan.rpath[name], idx, current, columns, own)
        try:
            return ex.evaluate(expr, ctx)
        except ex.LimitExceeded as exc:
            # Not an answer the interview can go on without: the form computes too much.
            who = _lt("fv_who_question", name=name)
            raise InvalidInput(f"{who}: {key}: {exc.message}") from None
        except ex.ExpressionError as exc:
            self._log(f"question '{name}': {key}: {exc.message}")
            return None

    def _relevant(self, st: SurveyState, name: str, idx: Idx) -> bool:
        """Own relevant and the parent's (a repeat instance must also be within its count)."""
        per_name = st._cache.relevant.setdefault(name, {})
        cached = per_name.get(idx)
        if cached is not None:
            return cached
        per_name[idx] = False  # a relevance cycle reads "not relevant" instead of recursing
        parent = self._plan.parent[name]
        if parent is None:
            result = True
        elif parent.is_repeat:
            pidx = idx[:-1]
            result = self._relevant(st, parent.name, pidx) and idx[-1] < self._active(
                st, parent.name, pidx
            )
        else:
            result = self._relevant(st, parent.name, idx)
        if result and (name, "relevant") in self._plan.exprs:
            value = None
            if not self.form.index[name].is_repeat:
                cont = self._container(st.answers, self._plan.rpath[name], idx)
                value = None if cont is None else cont.get(name)
            result = ex.to_bool(self._eval(st, name, "relevant", idx, current=value))
        per_name[idx] = result
        return result

    def _repeat_count(self, st: SurveyState, r: str, idx: Idx) -> int:
        """repeat_count's value: empty, negative or not a number means 0."""
        per_name = st._cache.counts.setdefault(r, {})
        cached = per_name.get(idx)
        if cached is not None:
            return cached
        per_name[idx] = 0
        n = ex.to_number(self._eval(st, r, "repeat_count", idx))
        count = 0 if n != n or n < 0 else int(min(n, MAX_REPEAT_COUNT))
        per_name[idx] = count
        return count

    def _active(self, st: SurveyState, r: str, idx: Idx) -> int:
        """How many instances of a repeat count: stored ones, up to its repeat_count."""
        stored = len(self._instances(st, r, idx))
        if (r, "repeat_count") in self._plan.exprs:
            return min(stored, self._repeat_count(st, r, idx))
        return stored

    def _seen(self, name: str, value: Any) -> Any:
        """An answer as expressions see it: a media answer is its file name, as in ODK
        (`${photo} = 'IMG_0042.jpg'`), not the stored `NAME sha256:HEX`."""
        if name in self._media and isinstance(value, str):
            from yntymak_cli.forms.media import parse_ref

            ref = parse_ref(value)
            return ref.name if ref is not None else value
        return value

    def _value(self, st: SurveyState, name: str, idx: Idx) -> Any:
        if not self._relevant(st, name, idx):
            return None
        cont = self._container(st.answers, self._plan.rpath[name], idx)
        return None if cont is None else cont.get(name)

    def _collect(
        self,
        st: SurveyState,
        name: str,
        chain: tuple[str, ...],
        level: int,
        idx: Idx,
        is_repeat: bool,
        out: list[Any],
    ) -> None:
        """Values of `name` in every relevant instance below idx (instances for a repeat)."""
        if level == len(chain):
            if is_repeat:
                out.append(self._container(st.answers, chain, idx) or {})
            else:
                out.append(self._value(st, name, idx))
            return
        r = chain[level]
        if not self._relevant(st, r, idx):
            return
        for k in range(self._active(st, r, idx)):
            self._collect(st, name, chain, level + 1, (*idx, k), is_repeat, out)

    def _required(self, st: SurveyState, q: Question, idx: Idx, value: Any) -> bool:
        if isinstance(q.required, bool):
            return q.required
        own = (q.name, idx, value)
        return ex.to_bool(self._eval(st, q.name, "required", idx, current=value, own=own))

    def _text(self, value: Any) -> str:
        return text_in(value, self.lang, self.form.language)

    def _check(
        self, st: SurveyState, q: Question, idx: Idx, value: Any, *, names: bool = True
    ) -> str | None:
        """Required, choice_filter and constraint for a typed value (None when fine)."""
        if is_empty(value):
            if self._required(st, q, idx, value):
                return self._text(q.required_message) or t("required", self.lang)
            return None
        if q.base_type in SELECT_TYPES and (q.name, "choice_filter") in self._plan.exprs:
            # Only the chosen rows are put through the filter, not the whole list.
            index = self.form.choice_index(q.list_name)
            for item in value if isinstance(value, list) else [value]:
                choice = index.get(item)
                if choice is None or not self._offered(st, q, idx, choice):
                    shown = item if names else self._choice_label(q, item)
                    allowed = [c.name for c in self._choices(st, q, idx)] if names else []
                    if allowed:  # --answers: name what the filter leaves, and only that
                        return t(
                            "choice_filtered_out_allowed",
                            self.lang,
                            value=shown,
                            choices=names_shown(allowed),
                        )
                    return t("choice_filtered_out", self.lang, value=shown)
        if (q.name, "constraint") in self._plan.exprs:
            own = (q.name, idx, value)
            ok = self._eval(st, q.name, "constraint", idx, current=value, own=own)
            if not ex.to_bool(ok):
                return self._text(q.constraint_message) or t("constraint_failed", self.lang)
        return None

    def _choice_label(self, q: Question, choice: str) -> str:
        found = self.form.choice_index(q.list_name).get(choice)
        return (self._text(found.label) if found is not None else "") or choice

    def _choices(self, st: SurveyState, q: Question, idx: Idx) -> tuple[Choice, ...]:
        choices = self.form.choice_list(q.list_name)
        if (q.name, "choice_filter") not in self._plan.exprs:
            return tuple(choices)
        looked_up = self._cascade(st, q, idx)
        if looked_up is not None:
            return looked_up
        return tuple(c for c in choices if self._offered(st, q, idx, c))

    def _cascade(self, st: SurveyState, q: Question, idx: Idx) -> tuple[Choice, ...] | None:
        """A cascade filter ``column = ${question}`` answered by a lookup in the list grouped
        by that column, instead of evaluating it on every row; None for other filters (and
        for values that are not text, which compare as numbers)."""
        root = self._plan.exprs[(q.name, "choice_filter")].root
        if not isinstance(root, ex.Chain) or root.ops != ("=",):
            return None
        column, ref = root.items
        if isinstance(column, ex.Ref):
            column, ref = ref, column
        if not isinstance(column, ex.Column) or not isinstance(ref, ex.Ref):
            return None
        key = (q.list_name or "", column.name)
        if key not in self._groups:
            self._groups[key] = _group_by_column(self.form.choice_list(q.list_name), column.name)
        groups = self._groups[key]
        value = _Ctx(self, st, self._plan.rpath[q.name], idx).value(ref.name)
        if groups is None or not (value is None or isinstance(value, str)):
            return None
        return groups.get(value or "", ())

    def _offered(self, st: SurveyState, q: Question, idx: Idx, choice: Choice) -> bool:
        """Whether q's choice_filter keeps this choice (its row's columns, name and label)."""
        columns = {**choice.columns(), "name": choice.name, "label": self._text(choice.label)}
        return ex.to_bool(self._eval(st, q.name, "choice_filter", idx, columns=columns))

    def _render(self, st: SurveyState, text: Any, q: Question, idx: Idx) -> str:
        """A label or hint in the engine's language with ${refs} replaced by answers."""
        out = self._text(text)
        if "${" not in out:
            return out
        ctx = _Ctx(self, st, self._plan.rpath[q.name], idx)

        def sub(m: re.Match[str]) -> str:
            name = m[1]
            if name not in self.form.index:
                return m[0]
            ref = self.form.index[name]
            shown = display_value(self.form, ref, ctx.value(name), self.lang)
            if (
                self.lang in DECIMAL_COMMA_LANGS
                and ref.base_type in _NUMBER_TYPES
                and _DECIMAL_TEXT.match(shown)
            ):
                return shown.replace(".", ",")
            return shown

        return _LABEL_REF.sub(sub, out)

    # ------------------------------------------------------------------ internals: recalculation

    def _changed(self, st: SurveyState, names: Iterable[str]) -> None:
        """Invalidate what depends on `names` and recompute it in dependency order."""
        self._fresh(st)
        plan = self._plan
        affected: set[str] = set(names)
        work: set[str] = set()
        for name in names:
            closure, todo = plan.closure(name)
            affected |= closure
            work.update(todo)
        cache = st._cache
        for name in affected:
            cache.relevant.pop(name, None)
            cache.counts.pop(name, None)
        for name in sorted(work, key=plan.rank.__getitem__):
            self._process(st, name)

    def _process(self, st: SurveyState, name: str) -> None:
        q = self.form.index[name]
        if q.is_repeat:
            self._ensure_instances(st, q)
        else:
            self._recalculate(st, q)

    def _ensure_instances(self, st: SurveyState, r: Question) -> None:
        """Create instances up to repeat_count (extra ones beyond it are kept, inactive)."""
        rpath = self._plan.rpath[r.name]
        for idx in list(self._all_idx(st, rpath)):
            if not self._relevant(st, r.name, idx):
                continue
            n = self._repeat_count(st, r.name, idx)
            cont = self._container(st.answers, rpath, idx)
            if cont is None or n == 0:
                continue
            instances = cont.get(r.name)
            if not isinstance(instances, list):
                instances = cont[r.name] = []
            while len(instances) < n:
                new: dict[str, Any] = {}
                instances.append(new)
                k = len(instances) - 1
                path = _node_path((*rpath, r.name), (*idx, k))
                self._init_tree(st, r.name, path, (*idx, k), new)

    def _recalculate(self, st: SurveyState, q: Question) -> None:
        rpath = self._plan.rpath[q.name]
        root = self._plan.exprs[(q.name, "calculation")].root
        once = isinstance(root, ex.Call) and root.name == "once"
        for idx in list(self._all_idx(st, rpath)):
            cont = self._container(st.answers, rpath, idx)
            if cont is None:
                continue
            if not self._relevant(st, q.name, idx):
                cont.pop(q.name, None)
                continue
            if once and not is_empty(cont.get(q.name)):
                continue  # once(): computed the first time only
            value = _stored(self._eval(st, q.name, "calculation", idx, current=cont.get(q.name)))
            if value is None:
                cont.pop(q.name, None)
            else:
                cont[q.name] = value

    def _init_tree(
        self, st: SurveyState, container: str, path: NodePath, idx: Idx, cont: dict
    ) -> None:
        """Metadata and defaults of a new container (top level or repeat instance), and of
        the instances it already holds (answers given to start())."""
        stamp = self._aware_now()
        for q in self._plan.items[container]:
            base = q.base_type
            if q.is_repeat:
                instances = cont.get(q.name)
                if isinstance(instances, list):
                    for k, inst in enumerate(instances):
                        if isinstance(inst, dict):
                            self._init_tree(st, q.name, (*path, q.name, k), (*idx, k), inst)
                continue
            if not is_empty(cont.get(q.name)):
                continue
            if base == "start":
                cont[q.name] = stamp.isoformat(timespec="seconds")
            elif base == "today":
                cont[q.name] = stamp.date().isoformat()
            elif base == "deviceid" and self.deviceid:
                cont[q.name] = self.deviceid
            elif base == "username" and self.username:
                cont[q.name] = self.username
            elif q.default is not None and q.holds_value and base != "calculate":
                try:
                    value = parse_value(self.form, q, q.default)
                except InvalidValue:
                    continue  # validation reports bad defaults
                if value is not None:
                    cont[q.name] = value
                    st.defaulted.append((*path, q.name))

    def _fill_end(self, cont: dict, container: str, stamp: str) -> None:
        for q in self._plan.items[container]:
            if q.base_type == "end":
                cont[q.name] = stamp
            elif q.is_repeat:
                for inst in cont.get(q.name) or []:
                    if isinstance(inst, dict):
                        self._fill_end(inst, q.name, stamp)

    def _record(self, st: SurveyState, container: str, idx: Idx, cont: dict) -> dict[str, Any]:
        out: dict[str, Any] = {}
        items, ends = self._plan.items[container], self._plan.ends[container]
        i = 0
        while i < len(items):
            q = items[i]
            if not self._relevant(st, q.name, idx):
                i = ends[i]
                continue
            i += 1
            if q.is_repeat:
                stored = self._instances(st, q.name, idx)
                records = [
                    self._record(
                        st, q.name, (*idx, k), stored[k] if isinstance(stored[k], dict) else {}
                    )
                    for k in range(self._active(st, q.name, idx))
                ]
                if records:
                    out[q.name] = records
            elif q.holds_value and not is_empty(cont.get(q.name)):
                value = cont[q.name]
                out[q.name] = list(value) if isinstance(value, list) else value
        return out

    # ------------------------------------------------------------------ internals: walking

    def _walk(
        self, st: SurveyState, container: str, prefix: NodePath, idx: Idx, start: int
    ) -> Iterator[Slot]:
        """Slots of one container instance from item `start` on."""
        plan = self._plan
        items, ends = plan.items[container], plan.ends[container]
        i = start
        while i < len(items):
            q = items[i]
            if not self._relevant(st, q.name, idx):
                i = ends[i]
                continue
            if q.is_repeat:
                yield from self._repeat_slots(st, q, prefix, idx, 0)
            else:
                kind = plan.kind[q.name]
                if kind is not None:
                    yield kind, (*prefix, q.name), q, idx
            i += 1

    def _repeat_slots(
        self, st: SurveyState, r: Question, prefix: NodePath, idx: Idx, first: int
    ) -> Iterator[Slot]:
        n = self._active(st, r.name, idx)
        for k in range(first, n):
            yield from self._walk(st, r.name, (*prefix, r.name, k), (*idx, k), 0)
        if not r.repeat_count:
            yield "add_repeat", (*prefix, r.name, n), r, (*idx, n)

    def _after(self, st: SurveyState, path: NodePath) -> Iterator[Slot]:
        """Slots strictly after the slot at `path` (a question or an add_repeat prompt)."""
        plan = self._plan
        frames: list[tuple[str, NodePath, Idx, int, int | None]] = []
        container: str = ROOT
        prefix: NodePath = ()
        idx: Idx = ()
        j = 0
        while j < len(path):
            name = path[j]
            if not isinstance(name, str) or plan.container.get(name) != container:
                raise EngineError(f"{format_path(path)}: not a step of form '{self.form.id}'")
            i = plan.pos[name]
            if j == len(path) - 1:
                frames.append((container, prefix, idx, i, None))
                break
            at = path[j + 1]
            if not isinstance(at, int) or not self.form.index[name].is_repeat:
                raise EngineError(f"{format_path(path)}: not a step of form '{self.form.id}'")
            frames.append((container, prefix, idx, i, at))
            container, prefix, idx = name, (*prefix, name, at), (*idx, at)
            j += 2
        if not frames:
            raise EngineError("an empty path is not a step")
        container, prefix, idx, i, k = frames[-1]
        if k is None:  # after a question: the rest of its container instance
            yield from self._walk(st, container, prefix, idx, i + 1)
        else:  # after an "add another?" prompt
            r = plan.items[container][i]
            # If the instance was just added, go into it; if declined, past the repeat.
            if self._relevant(st, r.name, idx) and k < self._active(st, r.name, idx):
                yield from self._repeat_slots(st, r, prefix, idx, k)
            yield from self._walk(st, container, prefix, idx, plan.ends[container][i])
        # Then climb out: later instances of each enclosing repeat, then what follows it.
        for container, prefix, idx, i, k in reversed(frames[:-1]):
            r = plan.items[container][i]
            if self._relevant(st, r.name, idx):
                yield from self._repeat_slots(st, r, prefix, idx, (k or 0) + 1)
            yield from self._walk(st, container, prefix, idx, plan.ends[container][i])

    # ------------------------------------------------------------------ internals: steps

    def _end(self) -> Step:
        return Step("end", (), label=t("end_of_form", self.lang))

    def _step(self, st: SurveyState, slot: Slot) -> Step:
        kind, path, q, idx = slot
        rpath = self._plan.rpath[q.name]
        if kind == "add_repeat":
            label = self._render(st, q.label, q, idx[:-1]) or q.name
            n = idx[-1]
            key = "add_repeat_first" if n == 0 else "add_repeat_another"
            declined = path[:-1] in st.declined_repeats
            return Step(
                kind,
                path,
                q,
                label=t(key, self.lang, label=label),
                hint=self._render(st, q.hint, q, idx[:-1]),
                value=False if declined else None,
                repeat_index=n + 1,
                repeat_label=label,
            )
        cont = self._container(st.answers, rpath, idx)
        value = None if cont is None else cont.get(q.name)
        hint = self._render(st, q.hint, q, idx)
        if kind == "unsupported":
            original = (q.xlsform or {}).get("type") or q.type
            hint = t("unsupported_question", self.lang, type=original)
        repeat_label = ""
        if rpath:
            r = self.form.index[rpath[-1]]
            repeat_label = self._render(st, r.label, r, idx[:-1]) or r.name
        return Step(
            kind,
            path,
            q,
            choices=self._choices(st, q, idx) if q.base_type in SELECT_TYPES else (),
            value=value,
            label=self._render(st, q.label, q, idx),
            hint=hint,
            repeat_index=idx[-1] + 1 if idx else None,
            repeat_label=repeat_label,
            required=kind == "question" and self._required(st, q, idx, value),
            answered=cont is not None and q.name in cont,
        )


def _group_by_column(choices: list[Choice], column: str) -> dict[str, tuple[Choice, ...]] | None:
    """Choices by the text of one column (a missing column is ''), in list order; None when
    the column is the label (shown per language) or holds something other than text."""
    if column == "label":
        return None
    groups: dict[str, list[Choice]] = {}
    for c in choices:
        value = c.name if column == "name" else (c.model_extra or {}).get(column)
        if value is not None and not isinstance(value, str):
            return None
        groups.setdefault(value or "", []).append(c)
    return {k: tuple(v) for k, v in groups.items()}


def _node_path(rchain: tuple[str, ...], idx: Idx) -> NodePath:
    path: list[str | int] = []
    for r, k in zip(rchain, idx, strict=True):
        path += [r, k]
    return tuple(path)


def _stored(result: Any) -> Any:
    """How a calculation result is kept: numbers as numbers, everything else as ODK text."""
    if isinstance(result, bool):
        return "true" if result else "false"
    if isinstance(result, int):
        return result
    if isinstance(result, float):
        if result != result:
            return None
        if result.is_integer() and abs(result) <= 2**53:
            return int(result)
        if result in (float("inf"), float("-inf")):
            return ex.to_string(result)
        return result
    text = ex.to_string(result)
    return text if text != "" else None


def display_value(form: Form, q: Question, value: Any, lang: str | None) -> str:
    """An answer as people read it: choice labels for selects, '' when empty."""
    if is_empty(value):
        return ""
    if q.base_type in SELECT_TYPES:
        index = form.choice_index(q.list_name)
        items = value if isinstance(value, list) else str(value).split()
        shown = []
        for v in items:
            choice = index.get(str(v))
            label = text_in(choice.label, lang, form.language) if choice is not None else ""
            shown.append(label or str(v))
        return ", ".join(shown)
    if q.is_media:
        from yntymak_cli.forms.media import parse_ref

        ref = parse_ref(value)
        return ref.name if ref is not None else str(value)
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return ex.to_string(value)
