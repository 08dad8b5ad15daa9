"""The interactive survey loop: walk the engine's steps through a Prompter, save as we go.

Every accepted answer is autosaved by `Session.answer`, so stopping at any moment (Ctrl-C,
a closed terminal, a flat battery) loses nothing: the draft resumes at its first
unanswered question. The loop only decides what to ask next; prompts live in
`collect.prompts`, words in the i18n catalogs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from yntymak_cli.i18n import LANGUAGES, t
from yntymak_cli.plain import plain

if TYPE_CHECKING:
    from yntymak_cli.collect.prompts import Prompter
    from yntymak_cli.collect.session import Session
    from yntymak_cli.engine.state import NodePath, Step

# Problems listed under each review page (the rest as "… (+N)"), so the page still fits.
PROBLEMS_SHOWN = 3
# Lines of a review page besides its rows: title, header, the menu (question, at most four
# actions, a blank and "← back"), a line for the menu's instruction wrapping on 80 columns,
# the "✔" line of the choice that showed this page, and one for the cursor.
REVIEW_FRAME = 2 + 7 + 1 + 1 + 1


class _Out:
    """What the survey prints besides prompts (rich, imported on first use).

    Labels, hints, answers and constraint messages are the form's or the volunteer's text:
    always `Text` made plain, never rich markup, never a raw escape sequence.
    """

    def __init__(self, lang: str) -> None:
        from rich.console import Console

        self.lang = lang
        self.console = Console(highlight=False)

    def line(self, text: str, style: str | None = None) -> None:
        from rich.text import Text

        # Wrapped by rich at spaces, never inside a word: a UUID stays whole and copyable
        # (the terminal would cut it at column 80). The catalogs put each "yntymak resume
        # UUID" on a line of its own, short enough for 80 columns.
        self.console.print(Text(plain(text, keep_newlines=True), style=style or ""))

    def error(self, message: str) -> None:
        self.line(f"✗ {message}", "bold red")

    def height(self, text: str) -> int:
        """The lines `line(text)` takes on this terminal."""
        from rich.text import Text

        shown = Text(plain(text, keep_newlines=True))
        return len(self.console.render_lines(shown, pad=False))

    def hint(self, text: str) -> None:
        self.line(text, "dim italic")

    def note(self, step: Step, value: str) -> None:
        from rich.panel import Panel
        from rich.text import Text

        body = Text(plain(step.label or "", keep_newlines=True), style="bold")
        if value:  # a read_only question shows its value
            body.append(f"\n{plain(value, keep_newlines=True)}", style="cyan")
        if step.hint:
            body.append(f"\n{plain(step.hint, keep_newlines=True)}", style="italic")
        self.console.print(Panel(body, expand=False))

    def _review_table(self, header: bool) -> Any:
        """A two-column table of fixed widths, so that each row drawn alone lines up with
        the header and the others (and its height can be measured alone)."""
        from rich.table import Table

        width = self.console.width
        question = max(10, (width - 2) * 11 // 20)
        table = Table(
            box=None,
            show_header=header,
            header_style="bold underline",
            padding=(0, 1),
            pad_edge=False,
        )
        table.add_column(t("review_question", self.lang), width=question, overflow="fold")
        table.add_column(
            t("review_answer", self.lang), width=max(10, width - 2 - question), overflow="fold"
        )
        return table

    def review_pages(self, rows: list[tuple[str, str]], reserved: int) -> list[list[Any]]:
        """The review's rows, one table each, in pages that fit the terminal together with
        `reserved` lines (title, header, problems, the menu), so the title and the first
        rows never scroll away on a 24-row screen. Not in a terminal: one page."""
        from rich.text import Text

        room = self.console.size.height - reserved if self.console.is_terminal else None
        pages: list[list[Any]] = [[]]
        used = 0
        for label, value in rows:
            table = self._review_table(header=False)
            table.add_row(
                Text(plain(label), style="bold"),
                Text(plain(value)) if value else Text(t("no_answer", self.lang), style="dim"),
            )
            if room is not None:
                height = len(self.console.render_lines(table, pad=False))
                if pages[-1] and used + height > room:
                    pages.append([])
                    used = 0
                used += height
            pages[-1].append(table)
        return pages

    def review(self, pages: list[list[Any]], page: int, problems: list[tuple[str, str]]) -> None:
        title = t("review_title", self.lang)
        if len(pages) > 1:
            title += f" ({t('review_page', self.lang, n=page + 1, total=len(pages))})"
        self.line(title, "bold")
        self.console.print(self._review_table(header=True))
        for table in pages[page]:
            self.console.print(table)
        if problems:
            self.line(t("problems_title", self.lang), "bold red")
            for label, message in problems[:PROBLEMS_SHOWN]:
                self.line(f"  • {label}: {message}", "red")
            if len(problems) > PROBLEMS_SHOWN:
                self.line(f"  … (+{len(problems) - PROBLEMS_SHOWN})", "red")


def run_survey(
    session: Session,
    lang: str,
    resume: bool = False,
    *,
    prompter: Prompter | None = None,
    review_first: bool = False,
    notice: str | None = None,
) -> int:
    """Run the survey to finalisation (exit code 0) or until stopped (130, draft kept).

    `review_first` (an edit) opens on the review screen, where the volunteer picks the
    answer to change, instead of walking every question from the first. `notice` (HQ's
    comment on a submission it returned) is shown above the review, every time it shows."""
    from yntymak_cli.collect import prompts

    survey = _Survey(session, lang, prompter or prompts.make_prompter(lang), notice)
    return survey.run(resume, review_first=review_first)


class _Survey:
    def __init__(
        self, session: Session, lang: str, prompter: Prompter, notice: str | None = None
    ) -> None:
        self.session = session
        self.notice = notice
        self.engine = session.engine
        self.state = session.state
        self.lang = lang
        self.prompter = prompter
        self.out = _Out(lang)
        # Set while fixing answers picked on the review screen: moving forward then stops
        # only where something needs the volunteer (see `forward`), else back to the review.
        self.fixing = False

    def run(self, resume: bool, review_first: bool = False) -> int:
        from yntymak_cli.collect.prompts import BACK
        from yntymak_cli.engine.state import Step
        from yntymak_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK
        from yntymak_cli.store.db import DiskFull

        uuid = self.session.uuid
        self.out.line(t("draft_resumed" if resume else "draft_started", self.lang, uuid=uuid))
        if not resume and self.engine.username:
            # Remembered from the last run without a word otherwise: say whose name is
            # recorded, and how to record another.
            self.out.hint(t("enumerator_recorded", self.lang, name=self.engine.username))
        if review_first:
            step = self.engine.next_step(self.state, Step("end", ()))
        elif resume:
            step = self.engine.first_unanswered(self.state)
        else:
            step = self.engine.first_step(self.state)
        try:
            while True:
                if step.kind == "end":
                    outcome = self.review(step)
                    if isinstance(outcome, int):
                        self.out.line(
                            t("finalised", self.lang, uuid=uuid, revision=outcome), "bold green"
                        )
                        return EXIT_OK
                    step = outcome
                    continue
                answer = self.ask(step)
                step = self.back(step) if answer is BACK else self.forward(step)
        except (KeyboardInterrupt, EOFError):
            # Everything accepted so far is already in the draft (Session autosaves).
            self.out.line("")
            self.out.line(t("interrupted", self.lang, uuid=uuid), "bold yellow")
            return EXIT_INTERRUPTED
        except DiskFull:
            # Each save is one transaction: the failed one left the draft as it was.
            self.out.line("")
            self.out.line(t("disk_full_draft", self.lang, uuid=uuid), "bold red")
            return EXIT_FAILURE

    # -- one step --------------------------------------------------------------------------

    def ask(self, step: Step) -> Any:
        """Ask one step until it is accepted; returns the accepted answer or BACK."""
        from yntymak_cli.collect.prompts import BACK

        if step.kind in ("note", "unsupported"):
            value = ""
            if step.question is not None and step.kind == "note":
                from yntymak_cli.engine.survey import display_value

                value = display_value(self.session.form, step.question, step.value, self.lang)
            self.out.note(step, value)
            return self.prompter.ask(step)
        if step.kind == "add_repeat":
            answer = self.prompter.ask(step)
            if answer is not BACK:
                if _truthy(answer):
                    self.session.add_repeat(step)
                else:
                    self.session.decline_repeat(step)
            return answer
        if step.hint:
            self.out.hint(step.hint)
        if step.question is not None and step.question.is_media:
            return self._ask_media(step)

        def validate(raw: Any) -> str | None:
            return self.engine.validate(self.state, step.path, raw)[1]

        while True:
            answer = self.prompter.ask(step, validate)
            if answer is BACK:
                return BACK
            error = self.session.answer(step, answer)
            if error is None:
                if step.question is not None and step.question.base_type == "geoshape":
                    self._closed_notice(answer)
                return answer
            self.out.error(error)  # e.g. a constraint message; the same question again

    def _ask_media(self, step: Step) -> Any:
        """A media question: a path, read and checked (collect/media.py) before the engine
        sees the answer's stored text; the file is kept with the answer in one transaction.
        Enter alone on an answered question keeps its file."""
        from pathlib import Path

        from yntymak_cli.collect.media import PreparedMedia, kept_answer, prepare_media
        from yntymak_cli.collect.prompts import BACK, KEEP_MEDIA
        from yntymak_cli.forms.values import InvalidValue
        from yntymak_cli.i18n import os_error_text

        q = step.question
        assert q is not None
        checked: dict[str, PreparedMedia] = {}

        def read(raw: Any) -> PreparedMedia | str | None:
            """The checked file, the stored text to keep, or None (no answer)."""
            text = "" if raw is None else str(raw).strip()
            if raw == KEEP_MEDIA:
                return str(step.value)
            if not text:
                return None
            if kept_answer(self.session.store, text) is not None:
                return text
            if text not in checked:
                checked[text] = prepare_media(self.session.form, q, Path(text))
            return checked[text]

        def validate(raw: Any) -> str | None:
            try:
                given = read(raw)
            except InvalidValue as exc:
                return exc.message(self.lang)
            value = given.ref.text if isinstance(given, PreparedMedia) else given
            return self.engine.validate(self.state, step.path, value)[1]

        while True:
            answer = self.prompter.ask(step, validate)
            if answer is BACK:
                return BACK
            given: PreparedMedia | str | None = None
            try:
                given = read(answer)
                if isinstance(given, PreparedMedia):
                    error = self.session.answer_media(step, given)
                else:
                    error = self.session.answer(step, given)
            except InvalidValue as exc:
                error = exc.message(self.lang)
            except OSError as exc:
                name = given.name if isinstance(given, PreparedMedia) else ""
                reason = os_error_text(exc, self.lang)
                error = t("media_cannot_keep", self.lang, name=name, reason=reason)
            if error is None:
                return answer
            self.out.error(error)

    def _closed_notice(self, answer: Any) -> None:
        """Say so when the shape typed was closed here (its first point added at the end):
        the stored value is not exactly what was typed."""
        from yntymak_cli.forms.values import InvalidValue, read_geo_line

        try:
            closed_here = read_geo_line("geoshape", answer).closed_here
        except InvalidValue:  # accepted a moment ago: cannot happen
            return
        if closed_here:
            self.out.line(t("geoshape_closed", self.lang), "yellow")

    def forward(self, step: Step) -> Step:
        """The step after `step`. While fixing answers from the review screen, steps that
        need nothing are passed over: the next one that does, or the end (the review)."""
        following = self.engine.next_step(self.state, step)
        if not self.fixing:
            return following
        problems = {path for path, _ in self.engine.problems(self.state)}
        while following.kind != "end" and not self.needs_attention(following, problems):
            following = self.engine.next_step(self.state, following)
        if following.kind == "end":
            self.out.line(t("review_return", self.lang), "dim")
        return following

    def needs_attention(self, step: Step, problems: set[NodePath]) -> bool:
        """Never seen (as `Engine.first_unanswered` judges it: no answer stored, an
        unconfirmed default, an undecided "add another?") or listed by `Engine.problems`.
        Notes and unsupported questions are display only: nothing to do there."""
        if step.kind == "add_repeat":
            return step.value is not False  # False: the volunteer already said no
        if step.kind != "question":
            return False
        return not step.answered or step.path in self.state.defaulted or step.path in problems

    def back(self, step: Step) -> Step:
        previous = self.session.back(step)
        if previous is None:
            self.out.line(t("at_first_question", self.lang), "yellow")
            return step
        self.out.line(t("back_choice", self.lang), "dim")  # so the transcript shows the jump
        return previous

    # -- the end ---------------------------------------------------------------------------

    def review(self, end: Step) -> int | Step:
        """Show every answer; finalise (-> revision) or return the step to continue at."""
        from yntymak_cli.collect.prompts import BACK

        self.fixing = False
        rows = self.engine.review(self.state)
        labels = {path: self._label(path, label) for path, label, _ in rows}
        problems = self.engine.problems(self.state, names=False)  # choice labels
        listed = [
            (labels.get(path) or self._label(path, ""), message) for path, message in problems
        ]
        reserved = REVIEW_FRAME
        if self.notice:  # kept on the screen with the page, above its title
            reserved += self.out.height(self.notice)
        if listed:
            reserved += 1 + min(len(listed), PROBLEMS_SHOWN + 1)
        pages = self.out.review_pages([(labels[path], value) for path, _, value in rows], reserved)
        first = t("review_fix", self.lang) if problems else t("review_finalise", self.lang)
        page = 0
        while True:
            if self.notice:
                self.out.line(self.notice, "bold yellow")
            self.out.review(pages, page, listed)
            # The list's own "← back" entry (and Ctrl-B) returns to the last question.
            options = [(first, "finalise"), (t("review_change", self.lang), "change")]
            more = page + 1 < len(pages)
            if more:
                options.append((t("review_next_page", self.lang), "next"))
            if page > 0:
                options.append((t("review_previous_page", self.lang), "previous"))
            action = self.prompter.choose(
                "review", t("review_action", self.lang), options, "next" if more else "finalise"
            )
            if action not in ("next", "previous"):
                break
            page += 1 if action == "next" else -1
        if action is BACK:
            return self.back(end)
        if action == "change":
            picks = [
                (f"{labels[path]}: {value}" if value else labels[path], path)
                for path, _, value in rows
            ]
            # The list starts at the first answer of the page being looked at.
            first_shown = sum(len(p) for p in pages[:page])
            start = picks[first_shown][1] if first_shown < len(picks) else None
            path = self.prompter.choose("jump", t("review_pick", self.lang), picks, start)
            if path is BACK:
                return end
            self.fixing = True
            return self.step_at(path) or end
        if problems:
            self.fixing = True
            return self.step_at(problems[0][0]) or end
        return self.session.finalise()

    def step_at(self, path: NodePath) -> Step | None:
        for step in self.engine.steps(self.state):
            if step.path == path:
                return step
        return None

    def _label(self, path: NodePath, label: str) -> str:
        """A review label, prefixed with its repeat instance ("Incident 2 › Date")."""
        from yntymak_cli.forms.model import text_in

        form = self.session.form
        if not label:
            q = form.index.get(str(path[-1]))
            label = text_in(q.label, self.lang, form.language) if q else str(path[-1])
            label = label or str(path[-1])
        parts = [label]
        # path = (..., repeat, index, name): walk the enclosing instances outwards.
        for i in range(len(path) - 2, 0, -2):
            repeat, k = path[i - 1], path[i]
            r = form.index.get(str(repeat))
            name = (text_in(r.label, self.lang, form.language) if r else "") or str(repeat)
            parts.insert(0, t("repeat_item", self.lang, label=name, n=int(k) + 1))
        return " › ".join(parts)


def _truthy(answer: Any) -> bool:
    if isinstance(answer, str):
        return answer.strip().lower() in {"yes", "y", "true", "1"}
    return bool(answer)


def ask_enumerator(lang: str | None = None) -> str:
    """The enumerator's name, asked once before the first survey. Without a language the
    question is asked in all three, since nobody has chosen one yet."""
    from yntymak_cli.collect import prompts

    langs = [lang] if lang else list(LANGUAGES)
    message = " / ".join(t("enumerator_question", lg) for lg in langs)
    refusal = " / ".join(t("enumerator_required", lg) for lg in langs)

    def validate(raw: Any) -> str | None:
        from yntymak_cli.store.db import enumerator_problem

        name = str(raw).strip()
        return enumerator_problem(name) if name else refusal

    prompter = prompts.make_prompter(lang or "en")
    return str(prompter.text("enumerator", message, validate)).strip()
