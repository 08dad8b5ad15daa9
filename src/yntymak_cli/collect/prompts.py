"""The one place that talks to questionary: a small `Prompter` interface and its two versions.

`QuestionaryPrompter` draws real terminal prompts; `ScriptedPrompter` replays a list of
answers so tests can drive the survey loop without a terminal. Every prompt returns the
raw answer or `BACK` (Ctrl-B or Alt-←, the "← back" entry of a list, or `<` alone on a
line of text: Ctrl-B never arrives inside tmux or screen, whose prefix key it is). A refused
answer is reported on the lines under its prompt, which is then asked again. Ctrl-C raises
KeyboardInterrupt and a closed input raises EOFError; the loop turns both into a saved
draft and exit code 130.

questionary and prompt_toolkit are imported inside the methods: `yntymak --help` must not
pay for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from yntymak_cli.i18n import t
from yntymak_cli.plain import plain

if TYPE_CHECKING:
    from yntymak_cli.engine.state import Step

# A check run on every candidate answer before it is accepted: the error message or None.
Validator = Callable[[Any], "str | None"]


class _Back:
    """The answer "go back one step" (a sentinel, compared with `is`)."""

    _instance: _Back | None = None

    def __new__(cls) -> _Back:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "BACK"


BACK: Any = _Back()

# questionary compares choice values with ==; plain strings are safest as list values.
_BACK_VALUE = "\x00back"
_SKIP_VALUE = "\x00skip"
_CONTINUE_VALUE = "\x00continue"
# Typed alone on a line of text (or in a search): go back. Works where no key does.
BACK_TYPED = "<"

# A range with at most this many steps is offered as a list, a longer one is typed.
MAX_RANGE_CHOICES = 21
# A select offering more choices than this is a type-to-search prompt instead of a list:
# nobody scrolls through 100,000 villages, and a list redraws every one at each key.
MAX_LIST_CHOICES = 200
# How many matches the search shows at once; typing more narrows them down.
MAX_MATCHES_SHOWN = 50

# What the enumerator types, per question type: shown in the prompt's instruction line.
FORMAT_KEYS = {
    "integer": "format_integer",
    "decimal": "format_decimal",
    "date": "format_date",
    "time": "format_time",
    "datetime": "format_datetime",
    "geopoint": "format_geopoint",
    "geotrace": "format_geotrace",
    "geoshape": "format_geoshape",
    "image": "format_media",
    "audio": "format_media",
    "video": "format_media",
    "file": "format_media",
}
MEDIA_BASES = frozenset({"image", "audio", "video", "file"})


class Prompter(Protocol):
    def ask(self, step: Step, validate: Validator | None = None) -> Any:
        """Ask one step (question, note, unsupported or add_repeat): raw answer or BACK.

        For notes any value but BACK means "seen"; for add_repeat the answer is a bool.
        """

    def choose(
        self, key: str, message: str, options: Sequence[tuple[str, Any]], default: Any = None
    ) -> Any:
        """Pick one of (title, value) options, or BACK. `key` names the menu (for tests)."""

    def text(self, key: str, message: str, validate: Validator | None = None) -> str:
        """A line of free text (no going back: used before the survey starts)."""


def make_prompter(lang: str) -> Prompter:
    """The prompter the survey uses; tests monkeypatch this to script the answers.

    Refuses up front when there is no terminal to ask in, before any draft is created.
    """
    import sys

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        from yntymak_cli.errors import InvalidInput

        raise InvalidInput(t("no_terminal", lang, option="--answers"))
    return QuestionaryPrompter(lang)


def step_title(step: Step, lang: str) -> str:
    """The prompt's text: "Incident 2 › Date", with a required mark when it must be answered."""
    # Labels are the form author's text: plain, so no escape sequence reaches the terminal
    # (prompt_toolkit shows C0 controls visibly, but not C1 or bidi controls).
    title = plain(step.label or (step.question.name if step.question else ""))
    if step.repeat_index is not None and step.repeat_label and step.kind != "add_repeat":
        label = plain(step.repeat_label)
        title = f"{t('repeat_item', lang, label=label, n=step.repeat_index)} › {title}"
    if step.required:
        title = f"{title} ({t('required_mark', lang)})"
    return title


def range_steps(step: Step) -> list[int | float] | None:
    """The values a range question allows, when there are few enough to list."""
    from yntymak_cli.forms.values import range_bounds, range_is_integer

    assert step.question is not None
    start, end, inc = range_bounds(step.question)
    if inc <= 0 or (end - start) / inc < 0:
        return None
    count = int(round((end - start) / inc)) + 1
    if count > MAX_RANGE_CHOICES:
        return None
    values = [start + i * inc for i in range(count)]
    if range_is_integer(step.question):
        return [int(v) for v in values]
    return [round(v, 10) for v in values]


def searchable(step: Step) -> bool:
    """A select with too many choices to list: asked as type-to-search."""
    q = step.question
    return (
        q is not None
        and q.base_type in ("select_one", "select_multiple")
        and len(step.choices) > MAX_LIST_CHOICES
    )


class ChoiceSearch:
    """The choices of one step, found by part of their label or name (case-insensitive).

    An answer may be typed as a choice's name or as a label that only one choice has;
    several answers as such names and labels one after another. Picking a match from the
    list inserts its name.
    """

    def __init__(self, choices: Sequence[Any], title: Callable[[Any], str]) -> None:
        self._choices: dict[str, Any] = {}
        for c in choices:
            self._choices.setdefault(c.name, c)
        self._title = title
        # Built on first use (the first key typed), not before the prompt is drawn.
        self._hay: list[tuple[str, str, str]] | None = None
        self._by_label: dict[str, str | None] | None = None

    def __contains__(self, name: object) -> bool:
        return name in self._choices

    def title(self, name: str) -> str:
        return self._title(self._choices[name])

    def matches(self, text: str, limit: int = MAX_MATCHES_SHOWN) -> list[tuple[str, str]]:
        """(name, title) of the first `limit` choices whose label or name holds `text`."""
        if self._hay is None:
            self._hay = [
                (name, shown, f"{shown}\n{name}".casefold())
                for name, shown in ((n, self._title(c)) for n, c in self._choices.items())
            ]
        needle = text.strip().casefold()
        found: list[tuple[str, str]] = []
        for name, shown, hay in self._hay:
            if needle in hay:
                found.append((name, shown))
                if len(found) >= limit:
                    break
        return found

    def _by_unique_label(self, typed: str) -> str | None:
        """The choice whose label is `typed` (any case), None when none or several are."""
        if self._by_label is None:
            by_label: dict[str, str | None] = {}
            for name, c in self._choices.items():
                key = self._title(c).strip().casefold()
                by_label[key] = None if key in by_label else name  # None: several have it
            self._by_label = by_label
        return self._by_label.get(typed.strip().casefold())

    def typing(self, text: str) -> str:
        """What is being searched at the end of a line of choices: the last word and the
        words before it back to the previous choice name ("c1 Kara Suu" -> "Kara Suu")."""
        if not text or text[-1].isspace():
            return ""
        words = list(re.finditer(r"\S+", text))
        start = words[-1].start()
        for word in reversed(words[:-1]):
            if word.group() in self._choices:
                break
            start = word.start()
        return text[start:]

    def read(self, text: str, multiple: bool, lang: str) -> tuple[Any, str | None]:
        """(answer, None) for what was typed, or (None, why it is not a choice)."""
        if multiple:
            # Words that are names are choices; the words between them, one choice's label.
            names: list[str] = []
            run: list[str] = []
            for word in [*text.split(), ""]:
                if run and (not word or word in self._choices):
                    name = self._by_unique_label(" ".join(run))
                    if name is None:
                        return None, t("choice_not_found", lang, value=" ".join(run))
                    names.append(name)
                    run = []
                if word in self._choices:
                    names.append(word)
                elif word:
                    run.append(word)
            return names, None
        typed = text.strip()
        if not typed:
            return None, None
        if typed in self._choices:
            return typed, None
        name = self._by_unique_label(typed)
        if name is None:
            return None, t("choice_not_found", lang, value=typed)
        return name, None

    def completer(self, multiple: bool) -> Any:
        """A prompt_toolkit completer offering matches for the text being typed (see
        `typing` when several choices are); each shows its label and inserts its name."""
        from prompt_toolkit.completion import Completer, Completion

        search = self

        class _Completer(Completer):
            def get_completions(self, document: Any, complete_event: Any) -> Any:
                text = document.text_before_cursor
                if multiple:
                    text = search.typing(text)
                if not text.strip() and not complete_event.completion_requested:
                    return
                for name, shown in search.matches(text):
                    meta = name if shown != name else ""
                    yield Completion(name, -len(text), display=shown, display_meta=meta)

        return _Completer()


def _list_control(app: Any) -> Any:
    """The list (questionary's InquirerControl) of a select or checkbox prompt, or None."""
    from questionary.prompts.common import InquirerControl

    layout = getattr(app, "layout", None)  # tests may stand in a bare object
    for control in layout.find_all_controls() if layout is not None else ():
        if isinstance(control, InquirerControl):
            return control
    return None


def _pointed_value(control: Any) -> Any:
    try:
        return control.get_pointed_at().value
    except (IndexError, AttributeError):
        return None


# Enter alone at a media prompt that has an answer: keep it (the loop passes the stored one).
KEEP_MEDIA = "\x00keep"


def _media_shown(value: Any) -> str:
    """The file name of a stored media answer ('' when there is none)."""
    from yntymak_cli.forms.media import parse_ref

    ref = parse_ref(value)
    return ref.name if ref is not None else ""


def _shown(value: Any) -> str:
    """A stored value as the default text of an entry field."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class QuestionaryPrompter:
    """Real prompts. Each one is erased when answered and replaced by one plain line, so the
    transcript holds no questionary English ("done (2 selections)") and no half-drawn prompt
    after Ctrl-B."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    # -- the Prompter interface ---------------------------------------------------------

    def ask(self, step: Step, validate: Validator | None = None) -> Any:
        lang = self.lang
        if step.kind == "add_repeat":
            options: list[tuple[str, Any]] = [(t("yes", lang), True), (t("no", lang), False)]
            default = False if step.value is False else True
            return self._select(step.label, options, default, back=True, echo=True)
        if step.kind in ("note", "unsupported"):
            # The loop has shown the note itself; this only waits for Enter (or Ctrl-B).
            options = [(t("continue_choice", lang), _CONTINUE_VALUE)]
            result = self._select(t("note_prompt", lang), options, None, back=True, echo=False)
            return BACK if result is BACK else None
        q = step.question
        assert q is not None
        title = step_title(step, lang)
        base = q.base_type
        if searchable(step):
            return self._search(step, title, validate)
        if base == "select_one":
            options = [(self._choice_title(c), c.name) for c in step.choices]
            return self._select_value(step, title, options, validate)
        if base == "select_multiple":
            return self._checkbox(step, title, validate)
        if base == "acknowledge":
            options = [(t("ok_choice", lang), "OK")]
            return self._select(title, options, None, back=True, echo=True, validate=validate)
        if base == "range":
            values = range_steps(step)
            if values is not None:
                options = [(_shown(v), v) for v in values]
                return self._select_value(step, title, options, validate)
            return self._entry(title, _shown(step.value), validate, self._range_format(step))
        fmt = t(FORMAT_KEYS[base], lang) if base in FORMAT_KEYS else ""
        if base in MEDIA_BASES:
            return self._entry(title, "", validate, fmt, path=True, shown=_media_shown(step.value))
        return self._entry(title, _shown(step.value), validate, fmt)

    def choose(
        self, key: str, message: str, options: Sequence[tuple[str, Any]], default: Any = None
    ) -> Any:
        return self._select(message, list(options), default, back=True, echo=True)

    def text(self, key: str, message: str, validate: Validator | None = None) -> str:
        result = self._entry(message, "", validate, "", back=False)
        return str(result)

    # -- building blocks ----------------------------------------------------------------

    def _choice_title(self, choice: Any) -> str:
        from yntymak_cli.forms.model import text_in

        return plain(text_in(choice.label, self.lang) or choice.name)

    def _range_format(self, step: Step) -> str:
        from yntymak_cli.forms.values import range_bounds

        assert step.question is not None
        start, end, inc = range_bounds(step.question)
        return t("format_range", self.lang, start=_shown(start), end=_shown(end), step=_shown(inc))

    @staticmethod
    def _instruction(keys: str, fmt: str = "") -> str:
        """The line after the question: how to answer, always in the survey's language (an
        empty instruction would make questionary show its English one)."""
        return f"({fmt}; {keys})" if fmt else f"({keys})"

    def _run(self, question: Any, back: bool) -> Any:
        """Add the back keys, run, and map questionary's values back (Ctrl-C propagates).

        Ctrl-B is tmux's and screen's prefix key and never reaches us there, so Alt-← goes
        back too (terminals send it as Escape + ←). In a list, Enter or Space on the
        "← back" entry goes back (a checkbox list would otherwise tick it)."""
        from prompt_toolkit.filters import Condition
        from prompt_toolkit.key_binding import KeyBindings, merge_key_bindings

        if back:
            kb = KeyBindings()

            @kb.add("c-b", eager=True)
            @kb.add("escape", "left", eager=True)
            def _back(event: Any) -> None:
                event.app.exit(result=_BACK_VALUE)

            app = question.application
            pointer = _list_control(app)
            if pointer is not None:
                on_back = Condition(lambda: _pointed_value(pointer) == _BACK_VALUE)

                @kb.add("enter", filter=on_back, eager=True)
                @kb.add(" ", filter=on_back, eager=True)
                def _back_entry(event: Any) -> None:
                    event.app.exit(result=_BACK_VALUE)

            # Ours last: among equally specific bindings prompt_toolkit runs the last one.
            app.key_bindings = merge_key_bindings([app.key_bindings, kb])
        result = question.unsafe_ask()
        return BACK if result == _BACK_VALUE else result

    def _echo(self, message: str, answer: str) -> None:
        """The line that replaces an answered prompt: "✔ Village  Kara-Suu"."""
        from rich.console import Console
        from rich.text import Text

        message = message.removesuffix(f" ({t('required_mark', self.lang)})")
        line = Text("✔ ", style="green")
        line.append(plain(message), style="bold")
        line.append("  ")
        line.append(plain(answer), style="cyan")
        Console(highlight=False).print(line)

    def _refused(self, message: str, answer: str, error: str) -> None:
        """The lines that replace a refused prompt: what was given, and right under it why
        it was refused; the prompt is asked again below them. (questionary's validation
        line sits at the bottom of the terminal, far from its question on a tall screen.)"""
        from rich.console import Console
        from rich.text import Text

        message = message.removesuffix(f" ({t('required_mark', self.lang)})")
        line = Text("✗ ", style="bold red")
        line.append(plain(message), style="bold")
        if answer:
            line.append("  ")
            line.append(plain(answer), style="cyan")
        console = Console(highlight=False)
        console.print(line)
        console.print(Text(f"  {plain(error)}", style="red"))  # may be the form's message

    def _select_value(
        self,
        step: Step,
        title: str,
        options: list[tuple[str, Any]],
        validate: Validator | None,
    ) -> Any:
        """A list answer (select_one, short range), with "leave blank" when optional."""
        default = step.value
        if not step.required:
            options = [*options, (t("skip_choice", self.lang), _SKIP_VALUE)]
            if default is None and step.answered:
                # Left blank earlier: Enter keeps it blank instead of picking the first choice.
                default = _SKIP_VALUE
        result = self._select(title, options, default, back=True, echo=True, validate=validate)
        return None if result == _SKIP_VALUE else result

    def _select(
        self,
        message: str,
        options: list[tuple[str, Any]],
        default: Any,
        *,
        back: bool,
        echo: bool,
        validate: Validator | None = None,
    ) -> Any:
        import questionary

        values = [v for _, v in options]
        choices: list[Any] = [
            questionary.Choice(title=plain(title), value=v) for title, v in options
        ]
        if back:
            choices += [
                questionary.Separator(" "),
                questionary.Choice(t("back_choice", self.lang), _BACK_VALUE),
            ]
        while True:
            question = questionary.select(
                plain(message),
                choices=choices,
                default=default if default in values else None,
                instruction=self._instruction(t("keys_select", self.lang)),
                qmark="?",
                erase_when_done=True,
            )
            result = self._run(question, back)
            if result is BACK:
                return result
            value = None if result == _SKIP_VALUE else result
            if value is None:
                shown = t("no_answer", self.lang)
            else:
                shown = next((title for title, v in options if v == result), "")
            error = validate(value) if validate is not None else None
            if error is None:
                break
            # Refused (a constraint): "✗ why" under it, and the same list again.
            self._refused(message, shown, error)
            default = result
        if echo:
            self._echo(message, shown)
        return result

    def _checkbox(self, step: Step, title: str, validate: Validator | None) -> Any:
        import questionary

        current = step.value if isinstance(step.value, list) else []
        titles = {c.name: self._choice_title(c) for c in step.choices}
        while True:
            choices: list[Any] = [
                questionary.Choice(title=titles[c.name], value=c.name, checked=c.name in current)
                for c in step.choices
            ]
            # The "← back" entry, as in every other list (Enter or Space on it: see `_run`).
            choices += [
                questionary.Separator(" "),
                questionary.Choice(t("back_choice", self.lang), _BACK_VALUE),
            ]
            question = questionary.checkbox(
                title,
                choices=choices,
                instruction=self._instruction(t("keys_checkbox", self.lang)),
                qmark="?",
                erase_when_done=True,
            )
            result = self._run(question, back=True)
            if result is BACK:
                return BACK
            result = [v for v in result if v != _BACK_VALUE]  # ticked by "a" (all)
            shown = ", ".join(titles[v] for v in result) or t("no_answer", self.lang)
            error = validate(result) if validate else None
            if error is None:
                break
            self._refused(title, shown, error)
            current = result
        self._echo(title, shown)
        return result

    def _search(self, step: Step, title: str, validate: Validator | None) -> Any:
        """A long select: type part of a label or name, pick a match (Tab or ↓), Enter.
        Enter on an empty line leaves an optional question blank."""
        import questionary

        assert step.question is not None
        multiple = step.question.base_type == "select_multiple"
        search = ChoiceSearch(step.choices, self._choice_title)
        if multiple:
            default = " ".join(step.value) if isinstance(step.value, list) else ""
        else:
            default = "" if step.value is None else str(step.value)

        keys = t("keys_search_multiple" if multiple else "keys_search", self.lang)
        while True:
            question = questionary.autocomplete(
                f"{title} {self._instruction(keys)}",
                choices=[],
                default=default,
                completer=search.completer(multiple),
                qmark="?",
                erase_when_done=True,
            )
            result = self._run(question, back=True)
            if result is BACK or result.strip() == BACK_TYPED:
                return BACK
            # Checked on Enter; a refusal is shown under the prompt (see `_refused`).
            value, error = search.read(result, multiple, self.lang)
            if error is None and validate is not None:
                error = validate(value)
            if error is None:
                break
            self._refused(title, result.strip(), error)
            default = result
        names = value if isinstance(value, list) else [] if value is None else [value]
        shown = ", ".join(search.title(n) for n in names) or t("no_answer", self.lang)
        self._echo(title, shown)
        return value

    def _entry(
        self,
        message: str,
        default: str,
        validate: Validator | None,
        fmt: str,
        back: bool = True,
        *,
        path: bool = False,
        shown: str = "",
    ) -> Any:
        """A line of text, or with `path` a file path with Tab completion (questionary.path;
        `shown` is the current answer, said above the prompt: Enter alone keeps it)."""
        import questionary

        instruction = self._instruction(t("keys_text", self.lang), fmt) if back else None
        if path and shown:
            from rich.console import Console
            from rich.text import Text

            Console(highlight=False).print(
                Text(f"  {t('media_current', self.lang, name=plain(shown))}", style="dim")
            )
        while True:
            if path:
                question = questionary.path(
                    f"{plain(message)} {instruction}",
                    default=default,
                    qmark="?",
                    erase_when_done=True,
                )
            else:
                question = questionary.text(
                    plain(message),
                    default=default,
                    instruction=instruction,
                    qmark="?",
                    erase_when_done=True,
                )
            result = self._run(question, back)
            if result is BACK or (back and result.strip() == BACK_TYPED):
                return BACK
            if path and shown and not result.strip():
                result = KEEP_MEDIA
            # Checked on Enter, not while the first digit of "34" is being typed.
            error = validate(result) if validate else None
            if error is None:
                break
            kept = result == KEEP_MEDIA
            self._refused(message, shown if kept else result.strip(), error)
            default = "" if kept else result  # to be corrected, not typed again
        echoed = shown if result == KEEP_MEDIA else result
        self._echo(message, echoed if echoed.strip() else t("no_answer", self.lang))
        return result


class ScriptedPrompter:
    """Replays answers for tests. Each item answers the next prompt; an item may be
    `(where, value)` to also check which prompt it answers: a step's `where`
    ("incidents[2]/resolved", "add:incidents[3]" for "add another?") or a menu's key
    ("review", "jump", "enumerator"). `KEEP` answers with the current value (Enter on a
    default); an exception (KeyboardInterrupt) is raised. Running out raises EOFError, as
    a closed terminal does."""

    KEEP: Any = object()

    def __init__(self, script: Iterable[Any]) -> None:
        self.script = list(script)
        self.asked: list[str] = []  # where/key of every prompt, in order
        self.steps: list[Step] = []  # the steps asked, as the engine described them
        self.errors: list[str] = []  # messages text() refused answers with

    def _next(self, where: str) -> Any:
        self.asked.append(where)
        if not self.script:
            raise EOFError(f"script ran out at {where}")
        item = self.script.pop(0)
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            expected, item = item
            if expected != where:
                raise AssertionError(f"script expected prompt {expected!r}, got {where!r}")
        if isinstance(item, BaseException) or (
            isinstance(item, type) and issubclass(item, BaseException)
        ):
            raise item
        return item

    def ask(self, step: Step, validate: Validator | None = None) -> Any:
        self.steps.append(step)
        where = step.where if step.kind != "add_repeat" else f"add:{step.where}"
        answer = self._next(where)
        return step.value if answer is self.KEEP else answer

    def choose(
        self, key: str, message: str, options: Sequence[tuple[str, Any]], default: Any = None
    ) -> Any:
        answer = self._next(key)
        if answer is not BACK and answer not in [v for _, v in options]:
            raise AssertionError(f"{answer!r} is not an option of {key!r}: {options!r}")
        return answer

    def text(self, key: str, message: str, validate: Validator | None = None) -> str:
        while True:
            answer = self._next(key)
            error = validate(answer) if validate else None
            if error is None:
                return answer
            self.errors.append(error)
