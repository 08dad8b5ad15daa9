"""`yntymak submissions ...` and `yntymak drafts`: list, show, edit, void."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="List, show, edit and void stored submissions.", no_args_is_help=True)

LIST_FIELDS = (
    "uuid",
    "revision",
    "form_id",
    "form_version",
    "status",
    "created_at",
    "updated_at",
    "enumerator",
    "device_id",
    "answers",
)


def _public(record: dict) -> dict:
    """The documented --json shape: stable field names, answers in the answers-file shape."""
    out = {key: record.get(key) for key in LIST_FIELDS}
    out["submission_time"] = record.get("submission_time")
    out["instance_name"] = record.get("instance_name")
    out["void_reason"] = record.get("void_reason")
    return out


@app.command("list")
def list_(
    form: str | None = typer.Option(None, "--form", help="Only this form id."),
    status: str | None = typer.Option(None, "--status", help="draft, final or void."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List submissions and drafts, oldest first."""
    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.plain import json_text, text
    from yntymak_cli.store.db import Store

    if status not in (None, "draft", "final", "void"):
        raise InvalidInput(f"--status must be draft, final or void, not '{status}'")
    records = Store.open().list_records(form, status)
    if as_json:
        typer.echo(
            json_text(json.dumps([_public(r) for r in records], ensure_ascii=False, indent=2))
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("uuid", "form", "version", "rev", "status", "name", "enumerator", "updated")
    for r in records:
        # Names and values came from forms and answers: cells of plain text, never markup.
        table.add_row(
            *map(
                text,
                (
                    r["uuid"][:8],
                    r["form_id"],
                    r["form_version"],
                    str(r["revision"]),
                    r["status"],
                    r.get("instance_name") or "",
                    r["enumerator"],
                    r["updated_at"][:19],
                ),
            )
        )
    Console().print(table)
    typer.echo(f"{len(records)} submission(s)")


@app.command()
def show(
    uuid: str = typer.Argument(..., help="Submission UUID (or its first characters)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one submission: metadata, answers and its revision history."""
    from yntymak_cli.plain import json_text, plain, text
    from yntymak_cli.store.db import Store

    store = Store.open()
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
    from rich.pretty import Pretty

    console = Console()
    for key in (
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
    ):
        if out.get(key) not in (None, ""):
            console.print(text(key, style="bold").append(f": {plain(out[key])}"))
    # Pretty shows strings as Python reprs: escapes and markup stay inert.
    console.print(Pretty(out["answers"]))
    console.print(f"{len(out['revisions'])} revision(s)")


@app.command()
def void(
    uuid: str = typer.Argument(..., help="Submission UUID (or its first characters)."),
    reason: str = typer.Option(..., "--reason", help="Why it is void (kept with the record)."),
) -> None:
    """Mark a submission void: kept, but left out of exports by default. Nothing is deleted."""
    from yntymak_cli.store.db import Store

    store = Store.open()
    row = store.get_submission_row(uuid)
    store.void(row["uuid"], reason)
    typer.echo(f"{row['uuid']} void")
