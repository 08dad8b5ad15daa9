"""`yntymak collect`, `yntymak drafts`, `yntymak resume` and `yntymak submissions edit`."""

from __future__ import annotations

from pathlib import Path

import typer

ENUMERATOR_KEY = "enumerator"


def _device_id() -> str:
    from yntymak_cli.home import home_dir
    from yntymak_cli.sync.keys import load_or_create_device_identity

    return load_or_create_device_identity(home_dir()).device_id


def _enumerator(store, given: str | None, interactive: bool, lang: str | None = None) -> str:
    """--enumerator wins and is remembered; else the remembered one; else ask once."""
    if given:
        if given != store.get_setting(ENUMERATOR_KEY):
            store.set_setting(ENUMERATOR_KEY, given)
        return given
    remembered = store.get_setting(ENUMERATOR_KEY)
    if remembered:
        return remembered
    if not interactive:
        typer.echo("warning: no enumerator given (use --enumerator NAME)", err=True)
        return ""
    from yntymak_cli.collect.interactive import ask_enumerator

    name = ask_enumerator(lang)
    store.set_setting(ENUMERATOR_KEY, name)
    return name


def _check_lang(form, lang: str | None) -> str:
    from yntymak_cli.errors import InvalidInput

    if lang and form.languages and lang not in form.languages:
        raise InvalidInput(
            f"--lang {lang}: form '{form.id}' has languages {', '.join(form.languages)}"
        )
    return lang or form.language or "en"


def collect(
    form: str = typer.Argument(..., help="Path to a YAML form, or the id of a registered form."),
    lang: str | None = typer.Option(None, "--lang", help="ky, ru or en (default: the form's)."),
    enumerator: str | None = typer.Option(
        None, "--enumerator", help="Your name; remembered for next time."
    ),
    answers: Path | None = typer.Option(
        None,
        "--answers",
        help="Fill non-interactively from a YAML/JSON file of question name -> value; prints "
        "the new submission's UUID.",
    ),
) -> None:
    """Run a survey. Every answer is saved the moment it is given."""
    from yntymak_cli.forms.library import changed_without_new_version, resolve_form
    from yntymak_cli.store.db import Store

    the_form = resolve_form(form)
    language = _check_lang(the_form, lang)
    store = Store.open()
    warning = changed_without_new_version(store, the_form)
    if warning:
        from yntymak_cli.plain import plain

        typer.echo(f"warning: {plain(warning)}", err=True)
    if answers is not None:
        from yntymak_cli.collect.answers_file import read_answers
        from yntymak_cli.collect.session import submit_answers

        data = read_answers(answers)
        name = _enumerator(store, enumerator, interactive=False)
        uuid = submit_answers(
            store, the_form, data, lang=language, enumerator=name, device_id=_device_id()
        )
        typer.echo(uuid)
        return
    from yntymak_cli.collect import prompts
    from yntymak_cli.collect.interactive import run_survey
    from yntymak_cli.collect.session import Session

    prompter = prompts.make_prompter(language)  # refuses without a terminal, before a draft
    name = _enumerator(store, enumerator, interactive=True, lang=language)
    session = Session.start(store, the_form, lang=language, enumerator=name, device_id=_device_id())
    raise typer.Exit(run_survey(session, language, prompter=prompter))


def drafts() -> None:
    """List unfinished surveys (new ones and edits in progress)."""
    from rich.console import Console
    from rich.table import Table

    from yntymak_cli.plain import text
    from yntymak_cli.store.db import Store

    rows = Store.open().list_drafts()
    if not rows:
        typer.echo("no drafts")
        return
    # The UUID is what `yntymak resume` needs: never shortened, even on an 80-column screen.
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    table.add_column("uuid", no_wrap=True, min_width=36)
    table.add_column("form", overflow="fold")
    table.add_column("enumerator", overflow="fold")
    table.add_column("updated", no_wrap=True)
    for r in rows:
        form = r["form_id"]
        if r["base_revision"]:
            form += f" (edit of rev {r['base_revision']})"
        # Form ids and names came from forms and answers: plain text cells, never markup.
        table.add_row(
            *map(text, (r["uuid"], form, r["enumerator"], _local_minute(r["updated_at"])))
        )
    Console().print(table)


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
) -> None:
    """Continue a draft at its first unanswered question."""
    from yntymak_cli.collect import prompts
    from yntymak_cli.collect.interactive import run_survey
    from yntymak_cli.collect.session import Session, draft_language
    from yntymak_cli.store.db import Store

    store = Store.open()
    draft = store.get_draft(uuid)
    # Without --lang, continue in the language the draft was being filled in.
    language = _check_lang(draft.form, lang or draft_language(draft.paradata))
    prompter = prompts.make_prompter(language)
    session = Session.resume(store, draft.uuid, lang=language)
    raise typer.Exit(run_survey(session, language, resume=True, prompter=prompter))


def edit(
    uuid: str = typer.Argument(..., help="Submission UUID (or its first characters)."),
    lang: str | None = typer.Option(None, "--lang", help="ky, ru or en."),
    enumerator: str | None = typer.Option(None, "--enumerator", help="Who makes the edit."),
) -> None:
    """Reopen a finalised submission; saving stores a new revision, the old ones are kept."""
    from yntymak_cli.collect.interactive import run_survey
    from yntymak_cli.collect.session import Session, draft_language
    from yntymak_cli.store.db import Store

    store = Store.open()
    record = store.get_record(uuid)
    form = store.form_by_hash(record["form_hash"])
    if lang is None:  # continue in the language of the edit in progress, or of the last revision
        existing = store.get_draft(record["uuid"], missing_ok=True)
        paradata = (
            existing.paradata
            if existing is not None
            else store.revision_paradata(record["uuid"], record["revision"])
        )
        lang = draft_language(paradata)
    language = _check_lang(form, lang)
    from yntymak_cli.collect import prompts

    prompter = prompts.make_prompter(language)
    name = _enumerator(store, enumerator, interactive=True, lang=language)
    session = Session.edit(
        store, record["uuid"], lang=language, enumerator=name, device_id=_device_id()
    )
    raise typer.Exit(run_survey(session, language, prompter=prompter))
