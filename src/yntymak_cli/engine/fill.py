"""The non-interactive path: check a whole answers-file mapping through the engine.

Every problem is collected, one line each, named by its path (``incidents[2]/resolved:``).
Values for calculate, note, metadata, read_only and unsupported questions are refused:
the form computes or shows those itself, and silently ignoring them would hide mistakes.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from yntymak_cli.engine.plan import ROOT
from yntymak_cli.engine.state import NodePath, format_path
from yntymak_cli.errors import YntymakError
from yntymak_cli.forms.model import METADATA_TYPES
from yntymak_cli.forms.values import InvalidValue, is_empty, names_shown, parse_value
from yntymak_cli.i18n import t

if TYPE_CHECKING:
    from yntymak_cli.engine.survey import Engine, Idx, SurveyState
    from yntymak_cli.forms.model import Form, Question


def fill(engine: Engine, answers: Any) -> tuple[dict[str, Any] | None, list[str]]:
    final, located = fill_located(engine, answers)
    return final, [f"{format_path(p)}: {m}" if p else m for p, m in located]


def computed_by_form(q: Question) -> bool:
    """A question whose value the form gives itself, so an answers file may not: calculate,
    note, metadata, read_only and unsupported questions (`fill` refuses their values)."""
    base = q.base_type
    if q.is_group or q.is_repeat:
        return False
    return base in ("calculate", "note", "unsupported") or base in METADATA_TYPES or q.read_only


def strip_computed(form: Form, answers: dict[str, Any]) -> dict[str, Any]:
    """Stored answers as an answers file may give them: without the values the form
    computes itself, at every repeat level (an edit from a file starts from these)."""
    out: dict[str, Any] = {}
    for key, value in answers.items():
        q = form.index.get(key)
        if q is not None and computed_by_form(q):
            continue
        if q is not None and q.is_repeat and isinstance(value, list):
            value = [strip_computed(form, v) if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out


def fill_located(
    engine: Engine, answers: Any, *, kept: Collection[str] = ()
) -> tuple[dict[str, Any] | None, list[tuple[NodePath, str]]]:
    """As `fill`, with each problem's node path kept apart (() when it concerns the whole
    mapping), so a caller can name the line of the file it came from.

    `kept`: top-level names whose values an edit kept from the revision it changes. One
    that the new answers make not relevant, or a repeat instance past a repeat_count they
    lowered, is left out of the record (as the interactive edit leaves it out) instead of
    refused: nobody gave it in the file. A raised count still needs its instances given."""
    lang = engine.lang
    if not isinstance(answers, dict):
        return None, [((), t("answers_not_mapping", lang))]
    checker = _Taker(engine)
    clean = checker.take(answers, ROOT, ())
    st = engine.start(clean)
    checker.list_allowed(st)
    plan = engine.plan

    semantic: list[tuple[NodePath, str]] = []
    for path in checker.given:
        q, idx = engine.node(path)
        if _inside_dropped(engine, st, q.name, idx):
            continue  # reported once, at the repeat
        if not engine.is_relevant(st, q.name, idx) and path[0] not in kept:
            semantic.append((path, _not_relevant(engine, st, q.name, idx)))
    for path, given in checker.repeats:
        r, idx = engine.node(path)
        if _inside_dropped(engine, st, r.name, idx):
            continue
        if not engine.is_relevant(st, r.name, idx):
            if given and path[0] not in kept:
                semantic.append((path, _not_relevant(engine, st, r.name, idx)))
            continue
        if r.repeat_count:
            count = engine.repeat_count(st, r.name, idx)
            if given > count and path[0] in kept:
                continue  # kept instances past a lowered count are left out, as in an edit
            if given != count:
                key = "repeat_count_mismatch_one" if given == 1 else "repeat_count_mismatch"
                semantic.append((path, t(key, lang, given=given, count=count)))
    semantic.extend(engine.problems(st))
    semantic.sort(key=lambda item: plan.key(item[0]))

    problems = checker.problems + semantic
    if problems:
        return None, problems
    return engine.finalise_unchecked(st), []


def _inside_dropped(engine: Engine, st: SurveyState, name: str, idx: Idx) -> bool:
    """Inside a repeat that is not relevant, or an instance beyond its repeat_count."""
    rpath = engine.plan.rpath[name]
    for level, r in enumerate(rpath):
        pidx = idx[:level]
        if not engine.is_relevant(st, r, pidx) or idx[level] >= engine.instance_count(st, r, pidx):
            return True
    return False


def _not_relevant(engine: Engine, st: SurveyState, name: str, idx: Idx) -> str:
    """Name the condition that is false: the node's own or an enclosing group's."""
    plan = engine.plan
    node: str | None = name
    while node is not None:
        expr = plan.exprs.get((node, "relevant"))
        if expr is not None and not engine.is_relevant(st, node, idx[: len(plan.rpath[node])]):
            parent = plan.parent[node]
            parent_ok = parent is None or engine.is_relevant(
                st, parent.name, idx[: len(plan.rpath[parent.name])]
            )
            if parent_ok:
                return t("not_relevant", engine.lang, condition=expr.text)
        parent = plan.parent[node]
        node = parent.name if parent is not None else None
    return t("not_relevant_plain", engine.lang)


class _Taker:
    """Walks the given mapping against the form: typed values out, structural problems kept."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lang = engine.lang
        self.problems: list[tuple[NodePath, str]] = []
        self.given: list[NodePath] = []  # question paths with a non-empty value
        self.repeats: list[tuple[NodePath, int]] = []  # repeat paths and instances given
        # Unknown choices of filtered selects: (index in problems, path, error), reworded
        # by `list_allowed` to name only the choices the filter leaves.
        self.unknown_filtered: list[tuple[int, NodePath, InvalidValue]] = []

    def list_allowed(self, st: SurveyState) -> None:
        engine = self.engine
        for i, path, exc in self.unknown_filtered:
            try:
                q, idx = engine.node(path)
                allowed = [c.name for c in engine.choices(st, q, idx)]
            except (YntymakError, ValueError):  # keep the full list rather than fail the check
                continue
            if allowed:
                params = {**exc.params, "choices": names_shown(allowed)}
                self.problems[i] = (path, t("invalid_choice", self.lang, **params))

    def _problem(self, path: NodePath, message: str) -> None:
        self.problems.append((path, message))

    def take(self, data: dict, container: str, prefix: NodePath) -> dict[str, Any]:
        engine, plan, lang = self.engine, self.engine.plan, self.lang
        out: dict[str, Any] = {}
        for key, raw in data.items():
            key = str(key)
            path = (*prefix, key)
            q = engine.form.index.get(key)
            if q is None or key not in plan.pos:
                names = [n for n, c in plan.container.items() if c == container]
                near = difflib.get_close_matches(key, names, n=1)
                if near:
                    message = t("unknown_question_hint", lang, name=key, suggestion=near[0])
                else:
                    message = t("unknown_question", lang, name=key)
                self._problem(path, message)
                continue
            home = plan.container[key]
            if home != container:
                if home != ROOT:
                    self._problem(prefix, t("question_in_repeat", lang, name=key, repeat=home))
                else:
                    self._problem(
                        prefix, t("question_not_in_repeat", lang, name=key, repeat=container)
                    )
                continue
            base = q.base_type
            if q.is_group:
                self._problem(path, t("group_value", lang))
            elif q.is_repeat:
                self._repeat(q.name, raw, path, out)
            elif is_empty(raw):
                continue  # an explicit empty answer is no answer
            elif base == "calculate":
                self._problem(path, t("calculated_value", lang))
            elif base == "note":
                self._problem(path, t("note_value", lang))
            elif base in METADATA_TYPES:
                self._problem(path, t("metadata_value", lang, type=base))
            elif base == "unsupported":
                original = (q.xlsform or {}).get("type") or q.type
                self._problem(path, t("unsupported_value", lang, type=original))
            elif q.read_only:
                self._problem(path, t("read_only_value", lang))
            else:
                try:
                    value = parse_value(engine.form, q, raw)
                except InvalidValue as exc:
                    if exc.key == "invalid_choice" and (key, "choice_filter") in plan.exprs:
                        # Which choices the filter allows is known once every answer is in.
                        self.unknown_filtered.append((len(self.problems), path, exc))
                    self._problem(path, exc.message(lang))
                    continue
                if value is not None:
                    out[key] = value
                    self.given.append(path)
        return out

    def _repeat(self, name: str, raw: Any, path: NodePath, out: dict[str, Any]) -> None:
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            self._problem(path, t("repeat_not_list", self.lang))
            return
        instances: list[dict[str, Any]] = []
        for k, item in enumerate(raw):
            if isinstance(item, dict):
                instances.append(self.take(item, name, (*path, k)))
            else:
                self._problem((*path, k), t("instance_not_mapping", self.lang))
                instances.append({})  # keeps later instance numbers as given
        self.repeats.append((path, len(raw)))
        if instances:
            out[name] = instances
