"""`yntymak hq targets set|show` and the progress tables of `hq status --form`.

Thin layer over quality/targets.py and quality/progress.py. Names came from a file or from
devices: printed as plain text, never as markup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from yntymak_cli.i18n import current_lang, t

if TYPE_CHECKING:
    from yntymak_cli.quality.progress import Progress, Row

targets_app = typer.Typer(
    help="HQ: targets per district or enumerator, for progress in `hq status --form`.",
    no_args_is_help=True,
)


@targets_app.command("set")
def targets_set(
    form_id: str = typer.Argument(..., help="Id of a form registered at HQ."),
    file: Path = typer.Option(
        ...,
        "--file",
        help="CSV with the header `district,target` or `enumerator,target` (UTF-8; "
        "Excel's `;` works too). Replaces the form's targets of that kind.",
    ),
) -> None:
    """Set a form's targets from a CSV file: one kind per file, replacing that kind's."""
    from yntymak_cli.plain import plain
    from yntymak_cli.quality.targets import set_targets
    from yntymak_cli.store.hqdb import HqDb

    with HqDb.open() as db:
        result = set_targets(db, form_id, file)
    key = "targets_set_district" if result.kind == "district" else "targets_set_enumerator"
    typer.echo(t(key, current_lang(), n=result.count, form=plain(result.form_id)))


@targets_app.command("show")
def targets_show(
    form_id: str = typer.Argument(..., help="Id of a form registered at HQ."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Show a form's targets."""
    from yntymak_cli.plain import json_text, plain, text
    from yntymak_cli.quality.targets import check_form
    from yntymak_cli.store import targets as targets_store
    from yntymak_cli.store.hqdb import HqDb

    lang = current_lang()
    with HqDb.open() as db:
        check_form(db, form_id)
        found = targets_store.of_form(db, form_id)
    if as_json:
        data = {"form": form_id, "targets": [x._asdict() for x in found]}
        typer.echo(json_text(json.dumps(data, ensure_ascii=False, indent=2)))
        return
    if not found:
        typer.echo(t("targets_none", lang, form=plain(form_id)))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD)
    table.add_column(t("targets_col_kind", lang))
    table.add_column(t("targets_col_name", lang), overflow="fold")
    table.add_column(t("progress_col_target", lang), justify="right")
    table.add_column(t("targets_col_set_at", lang), no_wrap=True)
    for x in found:
        kind = t(f"progress_col_{x.kind}", lang)
        table.add_row(text(kind), text(x.name), str(x.target), text(x.set_at))
    Console().print(table)


def render_progress(result: Progress) -> None:
    """`hq status --form FORM`'s tables: per district and per enumerator, done / target /
    percent, furthest behind first."""
    from rich import box
    from rich.console import Console

    from yntymak_cli.plain import plain, text

    lang = current_lang()
    console = Console()
    form = plain(result.form_id)
    for kind, rows, blank in (
        ("district", result.districts, t("hq_status_no_district", lang)),
        ("enumerator", result.enumerators, t("summary_blank", lang)),
    ):
        console.print(text(t(f"progress_title_{kind}", lang, form=form)))
        if not rows:
            console.print(text(t("progress_nothing", lang)))
            continue
        table = _table(box.SIMPLE_HEAD, t(f"progress_col_{kind}", lang), lang)
        for r in rows:
            table.add_row(text(r.name if r.name else blank), *_numbers(r))
        console.print(table)


def _table(box: Any, first: str, lang: str) -> Any:
    from rich.table import Table

    table = Table(box=box)
    table.add_column(first, overflow="fold")
    for key in ("progress_col_done", "progress_col_target", "progress_col_percent"):
        table.add_column(t(key, lang), justify="right", no_wrap=True)
    return table


def _numbers(r: Row) -> tuple[str, str, str]:
    target = "-" if r.target is None else str(r.target)
    shown = "-" if r.percent is None else f"{r.percent:.1f}%"
    return str(r.done), target, shown
