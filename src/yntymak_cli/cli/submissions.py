"""`yntymak submissions ...` and `yntymak drafts`: list, show, edit, void."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from yntymak_cli.store.records import SubmissionRecord

app = typer.Typer(help="List, show, edit and void stored submissions.", no_args_is_help=True)


def _public(record: SubmissionRecord) -> dict[str, Any]:
    """The documented --json shape: stable field names, answers in the answers-file shape."""
    from yntymak_cli.store.records import public_record

    return public_record(record)


@app.command("list")
def list_(
    form: str | None = typer.Option(None, "--form", help="Only this form id."),
    status: str | None = typer.Option(None, "--status", help="draft, final or void."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List submissions and drafts, oldest first."""
    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.i18n import current_lang, t
    from yntymak_cli.plain import json_text, text
    from yntymak_cli.store.db import Store

    lang = current_lang()
    if status not in (None, "draft", "final", "void"):
        allowed = "draft, final, void"
        raise InvalidInput(
            t("bad_option_value", lang, option="--status", value=status, allowed=allowed)
        )
    with Store.open() as store:
        records = store.list_records(form, status)
        refused = store.hq_refusals()
        if as_json:
            typer.echo(
                json_text(json.dumps([_public(r) for r in records], ensure_ascii=False, indent=2))
            )
            return
        from rich.console import Console
        from rich.table import Table

        from yntymak_cli.cli.collect import SHORT_UUID, Wrapped, _local_minute

        # 80 columns: no borders, one space between columns; the short UUID (accepted back by
        # every command) and the revision are never cut, the other cells wrap at spaces (the
        # version under the form id), and fold only a word longer than its column.
        table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
        table.add_column("UUID", no_wrap=True, min_width=SHORT_UUID)
        # A form id whole, the version under it, unless an id is very long (then it folds):
        # a column rich never narrows, so the columns it does narrow are the text ones (a
        # min_width here would push the table past 80 columns and cut the last one, the date).
        longest_id = max((len(r["form_id"]) for r in records), default=0)
        table.add_column(
            f"{t('col_form', lang)} ({t('col_version', lang)})",
            overflow="fold",
            no_wrap=longest_id <= 20,
        )
        table.add_column(t("col_rev", lang), no_wrap=True, justify="right")
        for key in ("status", "name", "enumerator"):
            table.add_column(t(f"col_{key}", lang), overflow="fold")
        # The date (10 characters) is never cut: the time goes on a second line.
        table.add_column(t("col_updated", lang), no_wrap=True, min_width=10)
        for r in records:
            # Names and values came from forms and answers: cells of plain text, never markup.
            # Names wrap at spaces and after hyphens (a word is folded only when it is longer
            # than its column).
            table.add_row(
                text(r["uuid"][:SHORT_UUID]),
                text(f"{r['form_id']}\n({r['form_version']})", keep_newlines=True),
                text(str(r["revision"])),
                Wrapped(_list_status(r, lang, r["uuid"] in refused)),
                Wrapped(r.get("instance_name") or ""),
                Wrapped(r["enumerator"]),
                text(_local_minute(r["updated_at"]).replace(" ", "\n"), keep_newlines=True),
            )
        Console().print(table)
        typer.echo(t("submissions_count", lang, n=len(records)))


def _list_status(record: SubmissionRecord, lang: str, refused: bool = False) -> str:
    """The status cell: `purged` once the answers were erased here after HQ's receipt;
    `refused by HQ` when HQ refused the latest revision (it is not sent again)."""
    if record.get("purged_at"):
        words = [_status("purged", lang)]
        if record["status"] == "void":
            words.insert(0, _status("void", lang))
    else:
        words = [_status(record["status"], lang)]
    if refused:
        words.append(_status("refused", lang))
    return ", ".join(words)


def _status(status: str, lang: str) -> str:
    from yntymak_cli.i18n import t

    key = f"status_{status}"
    shown = t(key, lang)
    return status if shown == key else shown


@app.command()
def show(
    uuid: str = typer.Argument(..., help="Submission UUID (or its first characters)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one submission: metadata, answers and its revision history."""
    from yntymak_cli.plain import json_text, plain, text
    from yntymak_cli.store.db import Store

    with Store.open() as store:
        draft = store.get_draft(uuid, missing_ok=True)
        if draft is not None and draft.base_revision == 0:
            record = store.draft_record(draft)
        else:
            record = store.get_record(uuid)
        out = _public(record)
        out["revisions"] = store.revisions(record["uuid"])
        if as_json:
            typer.echo(json_text(json.dumps(out, ensure_ascii=False, indent=2)))
            return
        from rich.console import Console
        from rich.table import Table

        from yntymak_cli.i18n import current_lang, t

        form = draft.form if record["status"] == "draft" and draft is not None else None
        form = form or store.form_by_hash(record["form_hash"])
        lang = current_lang(form.language)  # messages; labels fall back to the form's default
        console = Console()
        for key in SHOW_FIELDS:
            value = out.get(key)
            if value in (None, ""):
                continue
            if key == "status":
                value = _status(value, lang)
            elif key.endswith(("_at", "_time")):
                value = str(value)[:19].replace("T", " ")  # UTC, to the second
            label = "UUID" if key == "uuid" else t(f"field_{key}", lang)
            console.print(text(label, style="bold").append(f": {plain(value)}"))
        refusal = store.hq_refusals().get(record["uuid"])
        if refusal is not None:
            from yntymak_cli.sync.reasons import localize

            reason = plain(localize(refusal, lang))
            console.print(text(t("show_refused", lang, reason=reason), style="bold red"))
        purged_at = record["purged_at"]
        if purged_at:  # no answers to show: say why, without an empty table
            when = plain(purged_at[:19].replace("T", " "))
            console.print(text(t("show_purged", lang, when=when), style="bold yellow"))
        else:
            # Every cell is the form's or the volunteer's text: plain Text, never markup.
            answers = Table(t("review_question", lang), t("review_answer", lang))
            for label, value in answer_rows(form, record["answers"] or {}, lang):
                answers.add_row(text(label), text(value))  # cells wrap: nothing is cut
            console.print(answers)
        history = Table(
            *(t(f"col_{k}", lang) for k in ("rev", "time", "enumerator", "changed")),
            title=t("revisions_title", lang),
        )
        stored = store.revision_answers(record["uuid"])
        previous: dict | None = None
        for rev in out["revisions"]:
            current = stored.get(rev["revision"])
            if current is None:  # erased after HQ acknowledged it
                what = t("revision_erased", lang)
            elif rev is out["revisions"][0]:
                what = t("revision_first", lang)
            else:
                changed = changed_labels(form, previous or {}, current, lang)
                what = "; ".join(changed) if changed else t("revision_no_change", lang)
            previous = current
            history.add_row(
                str(rev["revision"]),
                text((rev["submission_time"] or "")[:19].replace("T", " ")),
                text(rev["enumerator"] or ""),
                text(what),
            )
        if out["revisions"]:
            console.print(history)
        else:
            console.print(t("revisions_none", lang))


SHOW_FIELDS = (
    "uuid",
    "form_id",
    "form_version",
    "revision",
    "status",
    "enumerator",
    "device_id",
    "created_at",
    "updated_at",
    "submission_time",
    "instance_name",
    "void_reason",
)


def answer_rows(form, answers: dict, lang: str) -> list[tuple[str, str]]:
    """(question label, answer label) in `lang` for every answered question: choice labels,
    not codes; repeat instances numbered ("Incident 2 › Date")."""
    return [(label, value) for _, label, value in _flat(form, form.questions, answers, lang, "")]


def changed_labels(form, before: dict, after: dict, lang: str) -> list[str]:
    """Labels of the questions whose answers differ between two revisions."""

    def shown(answers: dict) -> dict[str, tuple[str, str]]:
        rows = _flat(form, form.questions, answers, lang, "")
        return {key: (label, value) for key, label, value in rows}

    old, new = shown(before), shown(after)
    changed = [key for key in dict.fromkeys([*new, *old]) if old.get(key) != new.get(key)]
    return [(new.get(key) or old[key])[0] for key in changed]


def _flat(form, questions, answers: dict, lang: str, prefix: str) -> list[tuple[str, str, str]]:
    """(stable key, label, displayed value) of the answered questions, depth first."""
    from yntymak_cli.engine.survey import display_value
    from yntymak_cli.forms.model import METADATA_TYPES, text_in

    rows: list[tuple[str, str, str]] = []
    for q in questions:
        label = text_in(q.label, lang, form.language) or q.name
        if q.base_type == "group":
            rows += _flat(form, q.questions, answers, lang, prefix)
        elif q.base_type == "repeat":
            for n, instance in enumerate(answers.get(q.name) or [], 1):
                if isinstance(instance, dict):
                    inner = f"{prefix}{label} {n} › "
                    rows += _flat(form, q.questions, instance, lang, inner)
        elif q.base_type in METADATA_TYPES:
            continue  # today, username, ...: the record's own fields above say it
        elif q.holds_value and answers.get(q.name) not in (None, "", []):
            shown = display_value(form, q, answers[q.name], lang)
            rows.append((f"{prefix}{q.name}", f"{prefix}{label}", shown))
    return rows


@app.command()
def void(
    uuid: str = typer.Argument(..., help="Submission UUID (or its first characters)."),
    reason: str = typer.Option(..., "--reason", help="Why it is void (kept with the record)."),
    reopen: bool = typer.Option(
        False, "--reopen", help="Void a submission HQ approved (HQ then holds it as void)."
    ),
) -> None:
    """Mark a submission void: kept, but left out of exports by default. Nothing is deleted."""
    from yntymak_cli.collect.hq_review import check_void_allowed
    from yntymak_cli.i18n import current_lang, t
    from yntymak_cli.store.db import Store

    with Store.open() as store:
        row = store.get_submission_row(uuid)
        check_void_allowed(store, row["uuid"], reopen=reopen)  # approved at HQ: a lock
        store.void(row["uuid"], reason)
        typer.echo(t("voided", current_lang(), uuid=row["uuid"]))
