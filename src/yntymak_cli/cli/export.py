"""`yntymak export` (and `yntymak hq export`, the same command over HQ's merged database)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import typer


def since_utc(since: str | None, lang: str) -> str | None:
    """--since DATE as the stored submission times compare with it (exit 2 if no date).

    DATE is a day on this computer's clock (Bishkek is UTC+6), while submission times are
    stored in UTC: compare from local midnight, expressed in UTC."""
    if since is None:
        return None
    import datetime as dt

    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.i18n import t

    try:
        day = dt.date.fromisoformat(since)
    except ValueError:
        raise InvalidInput(t("bad_since", lang, option="--since", value=since)) from None
    try:
        midnight = dt.datetime.combine(day, dt.time()).astimezone(dt.timezone.utc)
        return midnight.strftime("%Y-%m-%dT%H:%M:%S")
    except (ValueError, OverflowError):  # years 1 and 9999 may not shift
        return day.isoformat()


def _exporter(hq: bool) -> Callable[..., None]:
    """`export` over the laptop's database, or (`hq`) over HQ's: SQLite or PostgreSQL."""

    def export(
        form_id: str = typer.Argument(..., help="Id of a registered form."),
        fmt: str | None = typer.Option(
            None,
            "--format",
            help="xlsx, csv, json, jsonl, geojson (the geopoint, geotrace and geoshape "
            "answers), or sav (SPSS) / dta (Stata) with the stats extra "
            "(default: as the -o name says).",
        ),
        output: str = typer.Option(
            ...,
            "-o",
            "--output",
            metavar="<path>",
            help="File to write; for csv, sav and dta a folder, a .zip, or one file (forms "
            "without repeats). "
            "A name asking for another format than --format is refused.",
        ),
        lang: str | None = typer.Option(
            None,
            "--lang",
            help="Headers and choices as labels in ky, ru or en (default: names; sav/dta "
            "labels: the form's default language).",
        ),
        status: str = typer.Option(
            "final",
            "--status",
            help="final, all (adds drafts), or final submissions by HQ's review of their current "
            "revision: pending, approved, rejected or on_hold.",
        ),
        include_void: bool = typer.Option(
            False, "--include-void", help="Include void submissions."
        ),
        since: str | None = typer.Option(
            None, "--since", help="Only submissions finalised on or after DATE (YYYY-MM-DD)."
        ),
        no_sensitive: bool = typer.Option(
            False, "--no-sensitive", help="Drop every question marked sensitive."
        ),
        summary: bool = typer.Option(
            False, "--summary", help="xlsx: a first sheet with counts and a bar chart."
        ),
        paradata: bool = typer.Option(
            False,
            "--paradata",
            help="Also how each question was answered (first and last answer time, seconds "
            "spent, changes, back-steps), one row per submission and question: xlsx a "
            "`paradata` sheet; csv `paradata.csv` (beside a single NAME.csv: "
            "NAME.paradata.csv); json/jsonl NAME.paradata.jsonl beside it. Submissions "
            "filled with --answers have no rows.",
        ),
        media: Path | None = typer.Option(
            None,
            "--media",
            metavar="<dir>",
            help="Also copy the files of image, audio, video and file answers into "
            "DIR/FORM/UUID/; the xlsx/CSV QUESTION_URL links point there from the output's "
            "folder (e.g. -o out/data.xlsx --media out/media). At HQ, the files bundles brought.",
        ),
    ) -> None:
        """Export a form's submissions in the layout KoboToolbox users know.

        The format is --format, else the -o name's: out.xlsx, out.csv, out.zip, outdir/ (or
        an existing folder: csv), out.json, out.jsonl, out.geojson, out.sav, out.dta; a name
        without a suffix is xlsx, any other suffix needs --format.

        geojson: a FeatureCollection with one Feature per geopoint (Point), geotrace
        (LineString) and geoshape (Polygon) answer, properties _uuid, _id, question (its path,
        incidents[2]/where in a repeat), _submission_time, _enumerator and _form_version.

        sav and dta (pip install 'yntymak-cli[stats]'): choices as numeric codes with value
        labels, select_multiple as 0/1 variables, names made valid for SPSS/Stata; the
        mapping is in _variables.csv beside the data (see docs/export.md).

        One sheet (or CSV file) for the form and one per repeat. An xlsx sheet holds up to
        1,048,576 rows and 16,384 columns: more rows continue on a sheet named "TABLE (2)",
        more columns on "TABLE (c2)", each part ending with the key columns to join them on
        (_uuid and _index; a repeat's _index and link columns).

        HQ's review of each submission's current revision closes the main table:
        _validation_status holds KoboToolbox's validation_status_approved,
        validation_status_not_approved or validation_status_on_hold (a word of the language
        with --lang; empty while pending) and _review_comment the reviewer's comment.
        """

        from yntymak_cli.errors import InvalidInput
        from yntymak_cli.export import ExportOptions
        from yntymak_cli.export import export as run_export
        from yntymak_cli.export.output import output_format
        from yntymak_cli.i18n import current_lang, set_lang, t
        from yntymak_cli.store import reviews
        from yntymak_cli.store.db import Store
        from yntymak_cli.store.hqdb import HqDb

        words = current_lang()  # messages (`--lang` also names the language of the data)
        allowed = ("final", "all", reviews.PENDING, *reviews.STATUSES)
        if status not in allowed:
            raise InvalidInput(
                t(
                    "bad_option_value",
                    words,
                    option="--status",
                    value=status,
                    allowed=", ".join(allowed),
                )
            )
        # A review status keeps the final submissions (and voids, with --include-void) whose
        # current revision has it; `all` adds drafts, which have none.
        review = None if status in ("final", "all") else status
        drafts = status == "all"
        since = since_utc(since, words)
        with HqDb.open() if hq else Store.open() as store:
            forms = store.form_versions(form_id)
            if not forms:
                known = ", ".join(store.form_ids()) or t("none_yet", words)
                raise InvalidInput(t("export_no_form", words, form=form_id, known=known))
            # From here on, messages (ours and the exporter's) follow the form's default language
            # unless --lang, YNTYMAK_LANG or the config chose one.
            set_lang(current_lang(forms[0].language))
            words = current_lang()
            fmt = output_format(output, fmt, form_id)  # the name's format, or a mismatch refused
            # Format, --summary and --lang are checked by the exporter before any record is read.
            records = store.iter_records(
                form_id,
                include_drafts=drafts,
                include_void=include_void,
                since=since,
                review=review,
                include_paradata=paradata,
            )
            options = ExportOptions(
                fmt=fmt,
                lang=lang,
                no_sensitive=no_sensitive,
                summary=summary,
                paradata=paradata,
                media_dir=media,
            )
            if summary and isinstance(store, HqDb):  # progress against HQ's targets, if any
                from dataclasses import replace

                from yntymak_cli.quality.progress import export_targets

                options = replace(options, targets=export_targets(store, form_id))
            if sys.stderr.isatty():
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

                total = store.count_records(
                    form_id,
                    include_drafts=drafts,
                    include_void=include_void,
                    since=since,
                    review=review,
                )
                progress_text = t("export_progress", words).replace("[", "\\[")  # never markup
                columns = (TextColumn(progress_text), BarColumn(), MofNCompleteColumn())
                with Progress(*columns, transient=True) as bar:
                    task = bar.add_task("export", total=total)
                    result = run_export(
                        forms,
                        records,
                        Path(output),
                        options,
                        progress=lambda n: bar.update(task, completed=n),
                    )
            else:  # not a terminal (a script, a log file): stay quiet
                result = run_export(forms, records, Path(output), options)
            from yntymak_cli.plain import plain

            for warning in result.warnings:  # may quote the form's text (summary_by)
                typer.echo(t("warning", words, message=plain(warning)), err=True)
            paths = ", ".join(
                plain(p) for p in result.paths
            )  # named after the form and its repeats
            typer.echo(t("export_done", words, n=result.submissions, paths=paths))
            # Counted apart: erased here after HQ's receipt, so not in the files (HQ exports them).
            purged = store.count_purged(
                form_id, include_void=include_void, since=since, review=review
            )
            if purged:
                typer.echo(t("export_purged_apart", words, n=purged))
            if media is not None:
                from yntymak_cli.export.media import (
                    copy_media,
                    laptop_locate,
                    media_question_names,
                )

                if isinstance(store, Store):
                    locate = laptop_locate(store)
                else:  # HQ keeps the files bundles brought (sync/hq_media.py)
                    from yntymak_cli.sync.hq_media import locate as hq_locate

                    locate = functools.partial(hq_locate, store)
                copied = copy_media(
                    locate,
                    form_id,
                    store.iter_records(
                        form_id,
                        include_drafts=drafts,
                        include_void=include_void,
                        since=since,
                        review=review,
                    ),
                    media_question_names(forms, no_sensitive),
                    media,
                )
                typer.echo(t("export_media_done", words, n=copied.files, dir=plain(media)))
                if copied.missing:
                    missing = ", ".join(plain(m) for m in copied.missing[:5])
                    typer.echo(
                        t("export_media_missing", words, n=len(copied.missing), files=missing),
                        err=True,
                    )

    return export


export = _exporter(hq=False)
hq_export = _exporter(hq=True)
