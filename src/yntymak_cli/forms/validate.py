"""Semantic checks of a form: names, types, lists, expressions, translations, cycles.

Every problem is collected (not stopped at the first) and located in the YAML file.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from yntymak_cli.errors import Problem
from yntymak_cli.forms import expressions as ex
from yntymak_cli.forms.model import (
    BASE_TYPES,
    EXPRESSION_KEYS,
    METADATA_TYPES,
    NAME_RE,
    SELECT_TYPES,
    TRANSLATED_KEYS,
    VALUE_TYPES,
    Form,
    LangText,
    Question,
)

QPath = tuple[str | int, ...]


# The language of the problems, fixed once per form: current_lang() reads the home's config
# file, and a form of 100,000 choices must not read it once per choice.
_lang: ContextVar[str | None] = ContextVar("validate_lang", default=None)


def _t(key: str, /, **params: object) -> str:
    """A problem text in the reader's language (keys, names and paths stay as written)."""
    from yntymak_cli.i18n import current_lang, t

    return t(key, _lang.get() or current_lang(), **params)


def _q(name: str) -> str:
    return _t("fv_who_question", name=name)


DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def iter_questions(
    questions: list[Question], path: QPath = ("questions",)
) -> Iterator[tuple[Question, QPath]]:
    for i, question in enumerate(questions):
        qpath = (*path, i)
        yield question, qpath
        if question.questions:
            yield from iter_questions(question.questions, (*qpath, "questions"))


def validate_form(loaded: Any) -> None:
    """Append problems to a LoadedForm (see forms.loader)."""
    from yntymak_cli.i18n import current_lang

    form: Form = loaded.form
    token = _lang.set(current_lang())
    try:
        _check_settings(loaded, form)
        _check_quality(loaded, form)
        _check_choices(loaded, form)
        seen: dict[str, QPath] = {}
        for question, qpath in iter_questions(form.questions):
            _check_question(loaded, form, question, qpath, seen)
        _check_cycles(loaded, form)
    finally:
        _lang.reset(token)


def _check_settings(loaded: Any, form: Form) -> None:
    if not NAME_RE.match(form.id):
        loaded.problem(("id",), _t("fv_form_id", id=form.id, pattern=NAME_RE.pattern))
    if not form.version.strip():
        loaded.problem(("version",), _t("fv_version_empty"))
    if len(set(form.languages)) != len(form.languages):
        loaded.problem(("languages",), _t("fv_languages_twice"))
    if form.default_language and form.languages and form.default_language not in form.languages:
        loaded.problem(
            ("default_language",),
            _t(
                "fv_default_language",
                lang=form.default_language,
                languages=", ".join(form.languages),
            ),
        )
    _check_translations(loaded, form, form.title, ("title",), _t("fv_who_title"))
    if form.max_size is not None:
        from yntymak_cli.forms.media import parse_size

        if parse_size(form.max_size) is None:
            loaded.problem(("max_size",), _t("fv_max_size", value=form.max_size))
    if form.instance_name:
        _check_expression(
            loaded, form, None, "instance_name", form.instance_name, ("instance_name",)
        )
    if form.summary_by and form.summary_by not in form.index:
        loaded.problem(
            ("summary_by",),
            _t(
                "fv_summary_by",
                name=form.summary_by,
                hint=_did_you_mean(form.summary_by, form.index),
            ),
        )


def _check_quality(loaded: Any, form: Form) -> None:
    """`quality:` names top-level questions that hold one value (not in a repeat)."""
    quality = form.quality
    if quality is None:
        return
    named: list[tuple[tuple[str | int, ...], str]] = [
        (("quality", "duplicate_keys", i), n) for i, n in enumerate(quality.duplicate_keys)
    ]
    if quality.district_by is not None:
        named.append((("quality", "district_by"), quality.district_by))
    for where, name in named:
        q = form.index.get(name)
        if q is None:
            loaded.problem(
                where, _t("fv_quality_unknown", name=name, hint=_did_you_mean(name, form.index))
            )
        elif not q.holds_value or form.repeat_path(name):
            loaded.problem(where, _t("fv_quality_not_single", name=name))
    if len(set(quality.duplicate_keys)) != len(quality.duplicate_keys):
        loaded.problem(("quality", "duplicate_keys"), _t("fv_quality_twice"))


def _check_choices(loaded: Any, form: Form) -> None:
    for list_name, items in form.choices.items():
        if not NAME_RE.match(list_name):
            loaded.problem(("choices", list_name), _t("fv_list_name", list=list_name), key=True)
        if not items:
            loaded.problem(("choices", list_name), _t("fv_list_empty", list=list_name))
        names: set[str] = set()
        for i, choice in enumerate(items):
            where = ("choices", list_name, i)
            if not choice.name.strip():
                loaded.problem(where, _t("fv_choice_no_name", list=list_name, n=i + 1))
            elif choice.name in names:
                loaded.problem(
                    (*where, "name"), _t("fv_choice_twice", list=list_name, name=choice.name)
                )
            names.add(choice.name)
            if isinstance(choice.label, dict):  # the only labels with translations to check
                what = functools.partial(_t, "fv_who_choice", name=f"{list_name}/{choice.name}")
                _check_translations(loaded, form, choice.label, (*where, "label"), what)


def _check_question(
    loaded: Any, form: Form, q: Question, qpath: QPath, seen: dict[str, QPath]
) -> None:
    who = _q(q.name)
    if not NAME_RE.match(q.name):
        loaded.problem((*qpath, "name"), _t("fv_name_invalid", who=who))
    elif q.name in seen:
        line, _ = loaded.at((*seen[q.name], "name"))
        loaded.problem((*qpath, "name"), _t("fv_name_twice", who=who, line=line))
    else:
        seen[q.name] = qpath

    base = q.base_type
    if base not in BASE_TYPES:
        hint = _did_you_mean(base, BASE_TYPES - {"unsupported"})
        loaded.problem((*qpath, "type"), _t("fv_type_unknown", who=who, type=q.type, hint=hint))
        return
    parts = q.type.split()
    if base in SELECT_TYPES:
        if len(parts) != 2:
            loaded.problem((*qpath, "type"), _t("fv_select_list", who=who, type=base))
        elif parts[1] not in form.choices:
            hint = _did_you_mean(parts[1], form.choices)
            loaded.problem(
                (*qpath, "type"), _t("fv_list_unknown", who=who, list=parts[1], hint=hint)
            )
    elif len(parts) > 1:
        loaded.problem((*qpath, "type"), _t("fv_type_no_list", who=who, type=base))

    if base in ("group", "repeat"):
        if not q.questions:
            loaded.problem(qpath, _t("fv_needs_questions", who=who, type=base))
    elif q.questions:
        loaded.problem((*qpath, "questions"), _t("fv_holds_questions", who=who))
    if q.repeat_count is not None and base != "repeat":
        loaded.problem((*qpath, "repeat_count"), _t("fv_repeat_count_only", who=who))
    if q.choice_filter is not None and base not in SELECT_TYPES:
        loaded.problem((*qpath, "choice_filter"), _t("fv_choice_filter_only", who=who))
    if q.latin_lookalikes and base != "text":
        loaded.problem((*qpath, "latin_lookalikes"), _t("fv_lookalikes_only", who=who))
    _check_media(loaded, q, qpath, who)
    if base == "calculate" and not q.calculation:
        loaded.problem(qpath, _t("fv_calculate_needs", who=who))
    if base == "range":
        _check_range(loaded, q, qpath)
    elif q.parameters:
        loaded.problem((*qpath, "parameters"), _t("fv_parameters_only", who=who))
    if base == "unsupported" and not (q.xlsform or {}).get("type"):
        loaded.problem((*qpath, "type"), _t("fv_unsupported_type", who=who))
    if base in VALUE_TYPES - METADATA_TYPES - {"calculate"} and q.label is None:
        loaded.problem(qpath, _t("fv_no_label", who=who), severity="warning")

    for key in TRANSLATED_KEYS:
        _check_translations(loaded, form, getattr(q, key), (*qpath, key), f"{who} {key}")
    for key in EXPRESSION_KEYS:
        text = getattr(q, key)
        if text is not None:
            _check_expression(loaded, form, q, key, text, (*qpath, key))
    if isinstance(q.required, str):
        _check_expression(loaded, form, q, "required", q.required, (*qpath, "required"))
    if q.default is not None:
        _check_default(loaded, form, q, qpath)


def _check_media(loaded: Any, q: Question, qpath: QPath, who: str) -> None:
    """accept on media questions only, with readable patterns; max_pixels and keep_gps on
    image questions only."""
    from yntymak_cli.forms.media import accept_patterns, pattern_problem

    if q.accept is not None:
        if not q.is_media:
            loaded.problem((*qpath, "accept"), _t("fv_accept_only", who=who))
        else:
            for pattern in accept_patterns(q.base_type, q.accept):
                if pattern_problem(pattern):
                    loaded.problem((*qpath, "accept"), _t("fv_accept_bad", who=who, item=pattern))
    for key, present in (("max_pixels", q.max_pixels is not None), ("keep_gps", q.keep_gps)):
        if present and q.base_type != "image":
            loaded.problem((*qpath, key), _t("fv_image_only", who=who, key=key))


def _check_range(loaded: Any, q: Question, qpath: QPath) -> None:
    params = q.parameters or {}
    where = (*qpath, "parameters")
    unknown = set(params) - {"start", "end", "step"}
    who = _q(q.name)
    if unknown:
        names = ", ".join(sorted(unknown))
        loaded.problem(where, _t("fv_range_unknown", who=who, names=names))
    values = {}
    for key, fallback in (("start", "0"), ("end", "10"), ("step", "1")):
        try:
            values[key] = float(params.get(key, fallback))
        except ValueError:
            loaded.problem((*where, key), _t("fv_range_number", who=who, key=key))
            return
    if values["step"] <= 0:
        loaded.problem((*where, "step"), _t("fv_range_step", who=who))
    elif values["start"] == values["end"]:
        loaded.problem(where, _t("fv_range_same", who=who))


def _check_default(loaded: Any, form: Form, q: Question, qpath: QPath) -> None:
    from yntymak_cli.forms.values import InvalidValue, parse_value

    try:
        parse_value(form, q, q.default)
    except InvalidValue as exc:
        from yntymak_cli.i18n import current_lang

        error = exc.message(_lang.get() or current_lang())
        loaded.problem((*qpath, "default"), _t("fv_default", who=_q(q.name), error=error))


def _check_translations(
    loaded: Any, form: Form, value: LangText | None, path: QPath, what: str | Callable[[], str]
) -> None:
    if not isinstance(value, dict) or not form.languages:
        return
    if callable(what):  # worked out only for a problem (one per choice would be slow)
        if set(value) <= set(form.languages) and all(value.get(x) for x in form.languages):
            return
        what = what()
    for lang in value:
        if lang not in form.languages:
            loaded.problem(
                (*path, lang), _t("fv_lang_unlisted", what=what, lang=lang), "warning", key=True
            )
    for lang in form.languages:
        if not value.get(lang):
            loaded.problem(path, _t("fv_translation_missing", what=what, lang=lang), "warning")


def _check_expression(
    loaded: Any, form: Form, q: Question | None, key: str, text: str, path: QPath
) -> None:
    who = _q(q.name) if q else _t("fv_who_form")
    try:
        expr = ex.parse(text)
    except ex.ExpressionError as exc:
        line, col = loaded.positions.text_start(path)
        loaded.problems.append(
            Problem(loaded.path, line, col + exc.offset, f"{who}: {key}: {exc.message}")
        )
        return
    for offset, pattern in ex.slow_regex_patterns(expr):
        line, col = loaded.positions.text_start(path)
        loaded.problems.append(
            Problem(
                loaded.path,
                line,
                col + offset,
                _t("fv_slow_regex", who=who, key=key, pattern=pattern),
                "warning",
            )
        )
    for ref in sorted(expr.refs()):
        target = form.index.get(ref)
        if target is None:
            hint = _did_you_mean(ref, form.index)
            loaded.problem(
                path, _t("fv_ref_unknown", who=who, key=key, ref=f"${{{ref}}}", hint=hint)
            )
        elif not (target.holds_value or target.is_repeat):
            loaded.problem(
                path,
                _t("fv_ref_no_value", who=who, key=key, name=ref, type=target.base_type),
            )
    bare = expr.bare_names()
    if key == "choice_filter" and q is not None:
        columns = form.choice_columns(q.list_name)  # gathered once per list, not per question
        for name in sorted(bare - columns):
            hint = _did_you_mean(name, columns)
            loaded.problem(
                path,
                _t("fv_filter_column", who=who, name=name, list=q.list_name, hint=hint),
            )
    elif bare:
        name = sorted(bare)[0]
        loaded.problem(path, _t("fv_bare_name", who=who, key=key, name=name, ref=f"${{{name}}}"))


def _check_cycles(loaded: Any, form: Form) -> None:
    """Calculations that depend on each other in a loop can never be computed."""
    graph: dict[str, set[str]] = {}
    for question, _ in form.walk():
        if question.calculation:
            try:
                refs = ex.parse(question.calculation).refs()
            except ex.ExpressionError:
                continue
            graph[question.name] = {r for r in refs if r in form.index}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    reported: set[str] = set()

    def report(cycle: list[str]) -> None:
        if not reported & set(cycle):
            reported.update(cycle)
            first = cycle[0]
            loaded.problem(
                (*_question_path(form, first), "calculation"),
                _t(
                    "fv_cycle",
                    who=_q(first),
                    cycle=" -> ".join(f"${{{n}}}" for n in cycle),
                ),
            )

    # Depth-first with an explicit stack: a chain of 20,000 calculations is a valid form,
    # and Python's recursion limit must not turn it into a crash.
    for root in sorted(graph):
        if root in state:
            continue
        state[root] = 1
        stack = [root]
        todo = [iter(sorted(graph.get(root, ())))]
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                todo.pop()
                state[stack.pop()] = 2
            elif state.get(nxt) == 1:
                report(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                state[nxt] = 1
                stack.append(nxt)
                todo.append(iter(sorted(graph.get(nxt, ()))))


def _question_path(form: Form, name: str) -> QPath:
    for question, qpath in iter_questions(form.questions):
        if question.name == name:
            return qpath
    return ()


def _did_you_mean(word: str, options: Any) -> str:
    match = difflib.get_close_matches(word, [str(o) for o in options], n=1)
    return _t("did_you_mean", name=match[0]) if match else ""
