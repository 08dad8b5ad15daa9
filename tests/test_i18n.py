"""The message catalogs: complete in ky/ru, placeholders consistent, and the survey's prompts
(questionary's own texts included) never falling back to English."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from yntymak_cli.i18n import FALLBACK, LANGUAGES, catalog, missing_keys, t

from .conftest import ROOT

SRC = ROOT / "src" / "yntymak_cli"
# Modules whose messages the enumerator sees during a survey.
SURVEY_MODULES = (
    "collect/interactive.py",
    "collect/prompts.py",
    "engine/survey.py",
    "forms/values.py",
)
# Latin words allowed in ky/ru survey texts: key names (Tab completes a media prompt's
# path), the command and option to type, OK, and file formats' names (an answers file's
# GeoJSON geometry).
LATIN_OK = {"Ctrl", "Alt", "Enter", "Tab", "yntymak", "resume", "enumerator", "OK"}
LATIN_OK |= {"GeoJSON", "JSON"}


def _constants(node: ast.expr, assigned: dict[str, list[ast.expr]]) -> list[str] | None:
    """The catalog keys an argument can be: a literal, `"a" if c else "b"`, or a local
    variable assigned such values. None when it cannot be known statically."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        a, b = _constants(node.body, assigned), _constants(node.orelse, assigned)
        return None if a is None or b is None else a + b
    if isinstance(node, ast.Name) and node.id in assigned:
        out: list[str] = []
        for value in assigned[node.id]:
            found = _constants(value, {})
            if found is None:
                return None
            out += found
        return out
    return None


def used_keys(path: Path) -> set[str]:
    """Keys passed to t(...) and InvalidValue(...) in one module."""
    tree = ast.parse(path.read_text("utf-8"))
    keys: set[str] = set()
    for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.Module)]:
        assigned: dict[str, list[ast.expr]] = {}
        for node in ast.walk(func):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
        for node in ast.walk(func):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("t", "_t", "InvalidValue")
                and node.args
            ):
                found = _constants(node.args[0], assigned)
                if found:
                    keys.update(found)
    return keys


def all_used_keys() -> set[str]:
    keys: set[str] = set()
    for path in SRC.rglob("*.py"):
        if path.parent.name != "i18n":
            keys |= used_keys(path)
    from yntymak_cli.collect.prompts import FORMAT_KEYS

    return keys | set(FORMAT_KEYS.values())


def survey_keys() -> set[str]:
    keys: set[str] = set()
    for module in SURVEY_MODULES:
        keys |= used_keys(SRC / module)
    from yntymak_cli.collect.prompts import FORMAT_KEYS

    return keys | set(FORMAT_KEYS.values())


def test_the_scan_finds_the_survey_words():
    keys = survey_keys()
    # Literal, conditional and via-variable keys are all found.
    assert {
        "draft_started",
        "keys_select",
        "format_date",
        "invalid_integer",
        "add_repeat_first",
        "add_repeat_another",
        "review_fix",
    } <= keys


@pytest.mark.slow
def test_every_key_used_by_the_code_is_in_english():
    missing = sorted(all_used_keys() - set(catalog(FALLBACK)))
    assert not missing, f"keys used in code but missing from en.json: {missing}"


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != FALLBACK])
def test_every_english_key_is_translated(lang):
    missing = sorted(missing_keys(lang))
    assert not missing, f"{lang}.json lacks: {missing}"
    extra = sorted(set(catalog(lang)) - set(catalog(FALLBACK)))
    assert not extra, f"{lang}.json has keys English lacks: {extra}"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != FALLBACK])
def test_placeholders_match_english(lang):
    wrong = {
        key: (sorted(_fields(en)), sorted(_fields(catalog(lang).get(key, ""))))
        for key, en in catalog(FALLBACK).items()
        if _fields(en) != _fields(catalog(lang).get(key, ""))
    }
    assert not wrong, f"{lang}: placeholders differ from English: {wrong}"


@pytest.mark.parametrize("lang", ["ky", "ru"])
def test_survey_words_are_not_english(lang):
    leaks = {}
    for key in sorted(survey_keys()):
        text = re.sub(r"\{\w*\}", "", catalog(lang).get(key, ""))  # placeholders aside
        words = set(re.findall(r"[A-Za-z]{2,}", text)) - LATIN_OK
        if words:
            leaks[key] = sorted(words)
    assert not leaks, f"{lang}: English words in survey texts: {leaks}"


# -- what questionary is given --------------------------------------------------------

QUESTIONARY_DEFAULTS = (
    "Use arrow keys",
    "to select",
    "to toggle",
    "Cancelled by user",
    "Invalid input",
    "done",
    "(Y/n)",
    "Press any key",
)


class _Recorder:
    """Stands in for questionary's prompt functions: records the call, answers `reply`."""

    def __init__(self, calls: list, kind: str, reply):
        self.calls, self.kind, self.reply = calls, kind, reply

    def __call__(self, message, **kwargs):
        from prompt_toolkit.key_binding import KeyBindings

        self.calls.append((self.kind, message, kwargs))
        reply = self.reply

        class App:
            key_bindings = KeyBindings()

        class Question:
            application = App()

            def unsafe_ask(self):
                return reply(kwargs) if callable(reply) else reply

        return Question()


@pytest.mark.parametrize("lang", ["ky", "ru"])
def test_questionary_gets_only_localised_texts(lang, monkeypatch, capsys):
    import questionary

    from yntymak_cli.collect.prompts import QuestionaryPrompter
    from yntymak_cli.engine.survey import Engine
    from yntymak_cli.forms.loader import load_form

    calls: list = []

    def first_choice(kwargs):
        choice = kwargs["choices"][0]
        return choice.value

    monkeypatch.setattr(questionary, "select", _Recorder(calls, "select", first_choice))
    monkeypatch.setattr(questionary, "checkbox", _Recorder(calls, "checkbox", []))
    monkeypatch.setattr(questionary, "text", _Recorder(calls, "text", "1"))

    form = load_form(ROOT / "tests" / "data" / "village_safety.yaml").require()
    engine = Engine(form, lang=lang)
    state = engine.start()
    for name, value in (
        ("oblast", "osh"),
        ("district", "kara_suu"),
        ("felt_tension", "yes"),
        ("n_incidents", "1"),
    ):
        engine.answer(state, (name,), value)
    prompter = QuestionaryPrompter(lang)
    for step in engine.steps(state):
        prompter.ask(step, lambda raw: None)
    prompter.choose("review", t("review_action", lang), [(t("review_finalise", lang), "f")])

    kinds = {kind for kind, _, _ in calls}
    assert kinds == {"select", "checkbox", "text"}
    for kind, message, kwargs in calls:
        instruction = kwargs.get("instruction")
        assert instruction, f"{kind} {message!r}: questionary would show its English default"
        keys = {"select": "keys_select", "checkbox": "keys_checkbox", "text": "keys_text"}
        assert t(keys[kind], lang) in instruction and "Ctrl-B" in instruction
        assert kwargs.get("erase_when_done") is True  # its "done (2 selections)" never stays
        shown = [message, instruction, kwargs.get("qmark", "")]
        shown += [str(getattr(c, "title", "")) for c in kwargs.get("choices", [])]
        for text in shown:
            assert not any(d in text for d in QUESTIONARY_DEFAULTS), text
            assert not set(re.findall(r"[A-Za-z]{2,}", text)) - LATIN_OK, text
    out = capsys.readouterr().out
    assert out and not set(re.findall(r"[A-Za-z]{2,}", out)) - LATIN_OK, out
