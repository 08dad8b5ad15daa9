"""`yntymak collect`, `yntymak drafts`, `yntymak resume` and `yntymak submissions edit`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

ENUMERATOR_KEY = "enumerator"
# UUIDs in tables: their first 8 characters, which every command taking a UUID accepts
# back (the store resolves a unique prefix, as git does with hashes).
SHORT_UUID = 8


# collect and submissions edit: where --answers may take media files from.
MEDIA_FROM: Any = typer.Option(
    None,
    "--media-from",
    metavar="DIR",
    help="With --answers: also take media files from DIR (repeatable). Without it a "
    "file an answer names must be inside the answers file's folder (no absolute path "
    "outside it, no '..', no symlink leading out).",
)


def _device_id() -> str:
    from yntymak_cli.home import home_dir
    from yntymak_cli.sync.keys import load_or_create_device_identity

    return load_or_create_device_identity(home_dir()).device_id


def _enumerator(store, given: str | None, interactive: bool, lang: str | None = None) -> str:
    """--enumerator wins and is remembered; else the remembered one; else ask once."""
    if given:
        from yntymak_cli.store.db import check_enumerator

        check_enumerator(given)  # before it is remembered
        if given != store.get_setting(ENUMERATOR_KEY):
            store.set_setting(ENUMERATOR_KEY, given)
        return given
    remembered = store.get_setting(ENUMERATOR_KEY)
    if remembered:
        return remembered
    if not interactive:
        from yntymak_cli.i18n import current_lang, t

        typer.echo(t("warning_no_enumerator", current_lang()), err=True)
        return ""
    from yntymak_cli.collect.interactive import ask_enumerator

    name = ask_enumerator(lang)
    store.set_setting(ENUMERATOR_KEY, name)
    return name


def _check_lang(form, lang: str | None, previous: str | None = None) -> str:
    """The survey's language: this command's --lang > the global --lang > `previous` (the
    draft's) > YNTYMAK_LANG > `config set lang` > the form's default > en. One the form
    does not have is refused when given with --lang, else the form's default is used."""
    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.i18n import LANGUAGES, chosen_lang, current_lang, set_lang, t

    explicit = lang or chosen_lang()
    if explicit:
        if explicit not in LANGUAGES or (form.languages and explicit not in form.languages):
            raise InvalidInput(
                t(
                    "lang_not_in_form",
                    current_lang() if explicit not in LANGUAGES else explicit,
                    lang=explicit,
                    form=form.id,
                    langs=", ".join(form.languages or LANGUAGES),
                )
            )
        set_lang(explicit)  # the command's own --lang wins for its messages too
        return explicit
    wanted = previous or current_lang(form.language)
    if form.languages and wanted not in form.languages:
        return form.language or "en"
    return wanted


def collect(
    form: str = typer.Argument(
        ..., help="Path to a YAML form, or a form id (see `yntymak forms list`)."
    ),
    lang: str | None = typer.Option(None, "--lang", help="ky, ru or en (default: the form's)."),
    enumerator: str | None = typer.Option(
        None, "--enumerator", help="Your name; remembered for next time."
    ),
    answers: list[Path] | None = typer.Option(
        None,
        "--answers",
        help="Fill non-interactively from a YAML/JSON file of question name -> value, a .jsonl "
        "file (one submission per line) or a .csv file (one row per submission, columns named "
        "like the export's); more files may follow. Nothing is saved unless all are valid. "
        "Prints the new submissions' UUIDs, one per line.",
    ),
    more_answers: list[Path] | None = typer.Argument(
        None,
        metavar="[FILE…]",
        help="More answers files, after --answers FILE.",
        show_default=False,
    ),
    keep_going: bool = typer.Option(
        False, "--keep-going", help="With --answers: save the valid submissions, report the rest."
    ),
    media_from: list[Path] | None = MEDIA_FROM,
) -> None:
    """Run a survey. Every answer is saved the moment it is given."""
    from yntymak_cli.collect.library import changed_without_new_version, resolve_form
    from yntymak_cli.store.db import Store

    the_form = resolve_form(form)
    language = _check_lang(the_form, lang)
    with Store.open() as store:
        warning = changed_without_new_version(store, the_form)
        if warning:
            from yntymak_cli.i18n import current_lang, t
            from yntymak_cli.plain import plain

            typer.echo(t("warning", current_lang(), message=plain(warning)), err=True)
        if answers or more_answers:
            files = [*(answers or ()), *(more_answers or ())]
            _collect_files(
                store,
                the_form,
                files,
                language,
                enumerator,
                keep_going,
                bool(answers),
                media_from or [],
            )
            return
        from yntymak_cli.collect import prompts
        from yntymak_cli.collect.interactive import run_survey
        from yntymak_cli.collect.session import Session

        prompter = prompts.make_prompter(language)  # refuses without a terminal, before a draft
        name = _enumerator(store, enumerator, interactive=True, lang=language)
        session = Session.start(
            store, the_form, lang=language, enumerator=name, device_id=_device_id()
        )
        raise typer.Exit(run_survey(session, language, prompter=prompter))


def _collect_files(
    store,
    form,
    paths: list[Path],
    lang: str,
    enumerator: str | None,
    keep_going: bool,
    given_answers: bool,
    media_from: list[Path],
) -> None:
    """`--answers FILE [FILE…]`: UUIDs to stdout; refused submissions to stderr, exit 2."""
    from yntymak_cli.collect.bulk import collect_many
    from yntymak_cli.errors import EXIT_INVALID, InvalidInput
    from yntymak_cli.i18n import t
    from yntymak_cli.plain import plain

    if not given_answers:
        raise InvalidInput(t("bulk_needs_answers", lang, file=paths[0]))
    name = _enumerator(store, enumerator, interactive=False)
    device_id = _device_id()
    result = collect_many(
        store,
        form,
        paths,
        lang=lang,
        enumerator=name,
        device_id=device_id,
        keep_going=keep_going,
        media_from=media_from,
    )
    for uuid in result.uuids:
        typer.echo(uuid)
    if result.refused:
        for line in result.problems:
            typer.echo(plain(line), err=True)
        saved, total = len(result.uuids), result.total
        summary = t("bulk_summary", lang, saved=saved, total=total, refused=result.refused)
        typer.echo(summary, err=True)
        raise typer.Exit(EXIT_INVALID)


def drafts() -> None:
    """List unfinished surveys (new ones and edits in progress)."""
    from rich.console import Console
    from rich.table import Table

    from yntymak_cli.i18n import current_lang, t
    from yntymak_cli.plain import text
    from yntymak_cli.store.db import Store

    lang = current_lang()
    with Store.open() as store:
        rows = store.list_drafts()
    if not rows:
        typer.echo(t("no_drafts", lang))
        return
    # `yntymak resume` takes the first 8 characters of the UUID (as every command does):
    # shown short and never broken, the line fits 80 columns.
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    table.add_column("UUID", no_wrap=True, min_width=SHORT_UUID)
    table.add_column(t("col_form", lang), overflow="fold")
    table.add_column(t("col_enumerator", lang), overflow="fold")
    # The date (10 characters) is never cut: the time goes on a second line, so a long
    # form id or enumerator wraps instead.
    table.add_column(t("col_updated", lang), no_wrap=True, min_width=10)
    for r in rows:
        form = r["form_id"]
        if r["base_revision"]:
            form += " " + t("draft_edit_of", lang, revision=r["base_revision"])
        # Form ids and names came from forms and answers: plain text cells, never markup.
        table.add_row(
            text(r["uuid"][:SHORT_UUID]),
            Wrapped(form),
            Wrapped(r["enumerator"]),
            text(_local_minute(r["updated_at"]).replace(" ", "\n"), keep_newlines=True),
        )
    Console().print(table)


class Wrapped:
    """A table cell of plain text that wraps at spaces and after hyphens
    ("Бекмуратова-" / "Сатыбалдиева"), folding only a piece longer than its column: rich
    alone wraps at spaces only and would cut a hyphenated name inside a word."""

    def __init__(self, value: object) -> None:
        from yntymak_cli.plain import plain

        self.value = " ".join(plain(value).split())

    def _pieces(self) -> list[str]:
        import re

        return [p for p in re.split(r"(?<=-)|\s+", self.value) if p]

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.cells import cell_len
        from rich.measure import Measurement

        longest = max((cell_len(p) for p in self._pieces()), default=1)
        return Measurement(longest, max(longest, cell_len(self.value))).with_maximum(
            options.max_width
        )

    def __rich_console__(self, console: Any, options: Any) -> Any:
        import textwrap

        from rich.text import Text

        width = max(options.max_width, 1)
        lines = textwrap.wrap(self.value, width, break_on_hyphens=True) or [""]
        yield Text("\n".join(lines), overflow="fold")


def _local_minute(stamp: str) -> str:
    """A stored UTC timestamp as local "YYYY-MM-DD HH:MM" (what the volunteer's clock says)."""
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp[:16]
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


def resume(
    uuid: str = typer.Argument(..., help="Draft UUID (or its first characters)."),
    lang: str | None = typer.Option(None, "--lang", help="ky, ru or en."),
    reopen: bool = typer.Option(
        False, "--reopen", help="Finish an edit of a submission HQ approved meanwhile."
    ),
) -> None:
    """Continue a draft at its first unanswered question."""
    from yntymak_cli.collect import prompts
    from yntymak_cli.collect.interactive import run_survey
    from yntymak_cli.collect.session import Session, draft_language
    from yntymak_cli.store.db import Store

    with Store.open() as store:
        draft = store.get_draft(uuid)
        # Without --lang, continue in the language the draft was being filled in.
        language = _check_lang(draft.form, lang, draft_language(draft.paradata))
        # The lock first: no need of a terminal to be told the edit is refused.
        session = Session.resume(store, draft.uuid, lang=language, reopen=reopen)
        prompter = prompts.make_prompter(language)
        raise typer.Exit(run_survey(session, language, resume=True, prompter=prompter))


def edit(
    uuid: str = typer.Argument(..., help="Submission UUID (or its first characters)."),
    lang: str | None = typer.Option(None, "--lang", help="ky, ru or en."),
    enumerator: str | None = typer.Option(None, "--enumerator", help="Who makes the edit."),
    answers: Path | None = typer.Option(
        None,
        "--answers",
        metavar="FILE",
        help="Edit without prompts: the answers in FILE (one submission, as `collect "
        "--answers` reads them) replace the latest revision's, the others are kept (a repeat "
        "given replaces the whole repeat); checked like `collect --answers`, then finalised "
        "as a new revision.",
    ),
    reopen: bool = typer.Option(
        False, "--reopen", help="Edit a submission HQ approved; it is then pending review again."
    ),
    media_from: list[Path] | None = MEDIA_FROM,
) -> None:
    """Reopen a finalised submission; saving stores a new revision, the old ones are kept.

    HQ's comment on a submission it returned is shown first; one HQ approved is edited
    only with --reopen."""
    from yntymak_cli.collect.hq_review import check_edit_allowed, returned_note
    from yntymak_cli.collect.interactive import run_survey
    from yntymak_cli.collect.session import Session, draft_language
    from yntymak_cli.store.db import Store

    with Store.open() as store:
        record = store.get_record(uuid)
        # An approved submission is refused before anything else (--reopen edits it).
        decision = check_edit_allowed(store, record["uuid"], reopen=reopen)
        form = store.form_by_hash(record["form_hash"])
        previous = None
        # Without --lang, continue in the language of the edit in progress, or of the last
        # revision.
        if lang is None:
            existing = store.get_draft(record["uuid"], missing_ok=True)
            paradata = (
                existing.paradata
                if existing is not None
                else store.revision_paradata(record["uuid"], record["revision"])
            )
            previous = draft_language(paradata)
        language = _check_lang(form, lang, previous)
        # HQ's comment on a submission it returned, shown before anything is changed.
        note = returned_note(decision, language)
        if answers is not None:
            _edit_from_file(
                store, record["uuid"], answers, language, enumerator, reopen, note, media_from
            )
            return
        from yntymak_cli.collect import prompts

        prompter = prompts.make_prompter(language)
        name = _enumerator(store, enumerator, interactive=True, lang=language)
        session = Session.edit(
            store,
            record["uuid"],
            lang=language,
            enumerator=name,
            device_id=_device_id(),
            reopen=reopen,
        )
        # On the review: the volunteer picks the answer to change, no walk from the first.
        raise typer.Exit(
            run_survey(session, language, prompter=prompter, review_first=True, notice=note)
        )


def _edit_from_file(
    store,
    uuid: str,
    path: Path,
    lang: str,
    enumerator: str | None,
    reopen: bool,
    note: str | None,
    media_from: list[Path] | None = None,
) -> None:
    """`submissions edit UUID --answers FILE`: HQ's comment to stderr (as warnings go), the
    new revision to stdout; refused answers exit 2 through the one exit point."""
    from yntymak_cli.collect.edit_answers import edit_from_file
    from yntymak_cli.i18n import t

    if note:
        typer.echo(note, err=True)  # HQ's parts are already plain text (hq_review)
    name = _enumerator(store, enumerator, interactive=False)
    outcome = edit_from_file(
        store,
        uuid,
        path,
        lang=lang,
        enumerator=name,
        device_id=_device_id(),
        reopen=reopen,
        media_from=media_from or [],
    )
    typer.echo(t("finalised", lang, uuid=outcome.uuid, revision=outcome.revision))
