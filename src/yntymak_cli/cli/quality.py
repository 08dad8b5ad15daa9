"""`yntymak hq checks`: which interviews need a second look (docs/quality.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from yntymak_cli.i18n import current_lang, t

# Flags printed in the terminal; the rest are in -o/--json (a line says how many).
SHOWN_FLAGS = 50


# From this many submissions on, rows are read in several processes (one per core, at
# most MAX_JOBS): below it, starting them costs more than it saves.
PARALLEL_FROM = 20_000
MAX_JOBS = 4


def run_reports(
    db: Any,
    form: str | None,
    *,
    since: str | None = None,
    district: str | None = None,
    jobs: int | None = None,
) -> list[Any]:
    """The checks over one form (or every form HQ holds, when `form` is None). `jobs`:
    processes reading the rows (default: by the number of submissions and cores)."""
    import os

    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.quality.checks import run_checks

    lang = current_lang()
    known = db.form_ids()
    if form is not None and form not in known:
        raise InvalidInput(
            t("export_no_form", lang, form=form, known=", ".join(known) or t("none_yet", lang))
        )
    reports = []
    for form_id in [form] if form is not None else known:
        versions = db.form_versions(form_id)
        workers = jobs
        if workers is None:
            many = db.count_records(form_id, since=since) >= PARALLEL_FROM
            workers = min(os.cpu_count() or 1, MAX_JOBS) if many else 1
        rows = (
            db.quality_slices(form_id, since=since)
            if workers > 1
            else db.iter_quality_rows(form_id, since=since)
        )
        reports.append(run_checks(versions, rows, district=district, workers=workers))
    return reports


def hq_checks(
    form: str | None = typer.Argument(None, help="Form id (default: every form at HQ)."),
    since: str | None = typer.Option(
        None, "--since", help="Only submissions finalised on or after DATE (YYYY-MM-DD)."
    ),
    district: str | None = typer.Option(None, "--district", help="Only this district."),
    output: Path | None = typer.Option(
        None, "-o", "--output", metavar="<path>", help="Also write an xlsx report here."
    ),
    lang: str | None = typer.Option(
        None, "--lang", help="Language of the reasons and the report: ky, ru or en."
    ),
    jobs: int | None = typer.Option(
        None,
        "--jobs",
        min=1,
        max=64,
        metavar="N",
        help="Processes reading the submissions (default: one per core, at most 4, from "
        "20,000 submissions on).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Flag submissions that need a second look, and summarise by enumerator and district.

    Checks: too_fast, speeding, duplicate, near_duplicate, outlier, gps_far, odd_time,
    many_missing (docs/quality.md). Timing checks skip submissions filled with --answers.
    The form's `quality:` block sets the thresholds.
    """
    from yntymak_cli.cli.export import since_utc
    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.export.checks_report import as_json as report_json
    from yntymak_cli.export.checks_report import write_xlsx
    from yntymak_cli.i18n import LANGUAGES
    from yntymak_cli.plain import json_text
    from yntymak_cli.store.hqdb import HqDb

    words = current_lang()
    if lang is not None and lang not in LANGUAGES:
        raise InvalidInput(
            t("bad_option_value", words, option="--lang", value=lang, allowed=", ".join(LANGUAGES))
        )
    if output is not None:
        from yntymak_cli.outputs import check_overwrite

        if output.suffix.lower() != ".xlsx":
            raise InvalidInput(t("checks_xlsx_only", words, path=str(output)))
        check_overwrite(output, "xlsx")  # before any work: never a file that is not ours
    lang = lang or words
    with HqDb.open() as db:
        day = since_utc(since, words)
        reports = run_reports(db, form, since=day, district=district, jobs=jobs)
    if output is not None:
        write_xlsx(reports, output, lang)
    if as_json:
        import json

        typer.echo(json_text(json.dumps(report_json(reports, lang), ensure_ascii=False)))
        return
    _print(reports, lang)
    if output is not None:
        from yntymak_cli.plain import plain

        typer.echo(t("checks_written", words, path=plain(output)))


def _print(reports: list[Any], lang: str) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from yntymak_cli.export.checks_report import check_name
    from yntymak_cli.plain import text
    from yntymak_cli.quality.checks import reason

    console = Console()
    if not reports:
        console.print(text(t("checks_no_forms", lang)))
    for r in reports:
        flagged = len(r.flagged())
        console.print(
            text(t("checks_headline", lang, form=r.form_id, n=len(r.submissions), flagged=flagged))
        )
        if not r.submissions:  # a district or a date that matches nothing: say so, no tables
            console.print(text(t("checks_nothing", lang)))
            continue
        counts = Table(box=box.SIMPLE_HEAD)
        counts.add_column(t("checks_check", lang))
        counts.add_column(t("checks_n", lang), justify="right")
        for code, n in r.counts().items():
            counts.add_row(text(f"{check_name(code, lang)} ({code})"), str(n))
        console.print(counts)
        for key in ("enumerator", "district"):
            table = Table(box=box.SIMPLE_HEAD)
            table.add_column(t(f"checks_{key}", lang), overflow="fold")
            table.add_column(t("checks_submissions", lang), justify="right")
            table.add_column(t("checks_flagged", lang), justify="right")
            table.add_column(t("checks_share", lang), justify="right")
            table.add_column(t("checks_median_minutes", lang), justify="right")
            for row in r.by(key):
                minutes = row["median_minutes"]
                table.add_row(
                    text(row[key] or "-"),
                    str(row["submissions"]),
                    str(row["flagged"]),
                    f"{row['share_flagged'] * 100:.0f}%",
                    "-" if minutes is None else f"{minutes:g}",
                )
            console.print(table)
        if r.flags:
            by_uuid = {s.uuid: s for s in r.submissions}
            table = Table(box=box.SIMPLE_HEAD)
            for header in ("_uuid", t("checks_enumerator", lang), t("checks_district", lang),
                           t("checks_check", lang), t("checks_reason", lang)):  # fmt: skip
                table.add_column(header, overflow="fold")
            for f in r.flags[:SHOWN_FLAGS]:
                s = by_uuid[f.uuid]
                cells = (f.uuid[:8], s.enumerator, s.district or "-", f.code, reason(f, lang))
                table.add_row(*(text(c) for c in cells))
            console.print(table)
            if len(r.flags) > SHOWN_FLAGS:
                console.print(text(t("checks_more", lang, n=len(r.flags) - SHOWN_FLAGS)))
        if r.skipped_groups:
            console.print(text(t("checks_skipped_groups", lang, n=r.skipped_groups)))
