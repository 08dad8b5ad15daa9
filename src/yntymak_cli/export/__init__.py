"""Exporting submissions: xlsx (Kobo layout), CSV (folder or zip), JSON / JSON Lines,
GeoJSON (the geo answers, geojson.py) and SPSS / Stata (stats.py, an optional extra).

The caller (the CLI) picks and filters the records; this package streams them to a
file without ever holding the whole dataset, so memory stays flat as data grows:

    result = export(forms, store.iter_records(...), Path("out.xlsx"), ExportOptions("xlsx"))
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yntymak_cli.errors import InvalidInput, YntymakError
from yntymak_cli.export.layout import Layout, RowBuilder, SheetNames, build_layout
from yntymak_cli.export.output import (
    FORMATS,
    STATS_FORMATS,
    TABLE_FORMATS,
    check_csv_tables,
    check_output,
    csv_target,
    is_folder_output,
    make_dirs,
    remove_dirs,
    temp_file,
)
from yntymak_cli.forms.model import Form
from yntymak_cli.outputs import check_overwrite

if TYPE_CHECKING:
    from yntymak_cli.quality.progress import Targets

# Write errors that mean "no room": told as such, with what to do, not as an errno.
_DISK_FULL = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}
PROGRESS_EVERY = 1000  # submissions between progress callbacks

__all__ = ["FORMATS", "ExportOptions", "ExportResult", "Layout", "build_layout", "export"]


def _t(key: str, **params: object) -> str:
    """An exporter's message in the language of this command's messages."""
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


@dataclass(frozen=True)
class ExportOptions:
    fmt: str  # "xlsx" | "csv" | "json" | "jsonl" | "geojson" | "sav" | "dta"
    # None: headers are question paths and values choice names (Kobo "XML values and
    # headers"); a language code: question and choice labels in that language.
    lang: str | None = None
    no_sensitive: bool = False  # drop questions marked `sensitive: true` in any version
    summary: bool = False  # xlsx only: a first `summary` sheet with counts and a chart
    # Records carry `paradata`: also one row per submission x question (export/paradata.py).
    paradata: bool = False
    # HQ only: the form's targets, for the summary sheet's progress tables and charts
    # (quality/progress.py export_targets); None without targets, and on a laptop.
    targets: Targets | None = None
    # `--media DIR`: where the media files are copied (by the caller, which has the store);
    # the `_URL` links start with DIR as seen from the output's folder. None: `media`.
    media_dir: Path | None = None


@dataclass
class ExportResult:
    fmt: str
    paths: list[Path]  # files written (the CSV files, or the one xlsx/json/zip file)
    submissions: int
    # Data rows (header excluded) per sheet / CSV file; for json, {form_id: submissions};
    # for geojson, {form_id: features}.
    rows: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def export(
    forms: Sequence[Form],
    records: Iterable[dict[str, Any]],
    out: Path,
    options: ExportOptions,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Stream `records` (already filtered) of one form to `out`.

    `forms` are all versions of the form present in the data, newest first.
    `progress(n)` is called every PROGRESS_EVERY submissions and once at the end with
    the number of submissions written so far. Output appears at `out` only when
    complete (written to a temporary name, then renamed).
    """
    out = Path(out)
    _check(forms, options)
    check_output(out, options.fmt, forms[0].id)
    reserved = ("summary",) if options.summary else ()
    reserved = (*reserved, "paradata") if options.paradata else reserved  # its sheet / file
    names = SheetNames(reserved)
    stats = options.fmt in STATS_FORMATS
    if stats:  # before anything is read: the clear "install the extra" message
        from yntymak_cli.export.stats import require_pyreadstat

        require_pyreadstat()
    # SPSS/Stata read the values as names (then coded); labels come from the plan.
    lang = None if stats else options.lang
    xlsx = options.fmt == "xlsx"
    link_root = "media"
    if options.media_dir is not None:
        import os

        base = out if is_folder_output(out, options.fmt) else out.parent
        relative = os.path.relpath(Path(options.media_dir).resolve(), base.resolve())
        link_root = Path(relative).as_posix()
    layout = build_layout(
        forms, lang, options.no_sensitive, names=names, title_sheet=xlsx, link_root=link_root
    )
    if options.fmt in TABLE_FORMATS:  # `-o out.csv` is one file: refused with repeats
        check_csv_tables(out, [table.name for table in layout.tables], options.fmt)

    folder = is_folder_output(out, options.fmt)
    if folder:  # each file of the folder, and its temporary name, replaces what is there
        for table in layout.tables:
            if stats:
                check_overwrite(out / f"{table.name}.{options.fmt}", options.fmt)
            else:
                check_overwrite(out / f"{table.name}.csv", "csv")
                check_overwrite(out / f"{table.name}.csv.part", "csv")
        if stats:
            check_overwrite(out / "_variables.csv", "stats-variables")
    elif stats and csv_target(out, options.fmt) == "file":
        check_overwrite(out.with_name(f"{out.stem}_variables.csv"), "stats-variables")
    if options.paradata:
        from yntymak_cli.export.paradata import check_paradata_output

        check_paradata_output(out, options.fmt)
    created: list[Path] = []
    try:
        created += make_dirs(out if folder else out.parent)
        # Create (and drop) a file where the output goes, so an unwritable -o fails
        # now, not after every record has been read.
        temp_file(out / "probe" if folder else out).unlink()
    except OSError as exc:
        remove_dirs(created)
        if exc.errno in _DISK_FULL:
            raise _disk_full(out, exc) from None
        raise InvalidInput(_t("cannot_write", path=out, reason=_reason(exc))) from None
    try:
        result = _write(forms, layout, names, records, out, options, progress)
    except OSError as exc:
        remove_dirs(created)
        if exc.errno in _DISK_FULL:
            raise _disk_full(out, exc) from None
        raise YntymakError(_t("export_write_failed", path=out, reason=_reason(exc))) from None
    except BaseException:
        remove_dirs(created)
        raise
    return result


def _write_json_paradata(
    out: Path,
    layout: Layout,
    records: Iterable[dict[str, Any]],
    fmt: str,
    progress: Callable[[int], None] | None,
) -> ExportResult:
    """A JSON / JSON Lines export with its paradata rows beside it (paradata.sibling)."""
    from yntymak_cli.export.json_ import write_json
    from yntymak_cli.export.paradata import Feed, JsonlParadata, sibling, untimed_warning

    path = sibling(out, fmt)
    assert path is not None
    rows = JsonlParadata(path)
    feed = Feed(rows.write)
    try:
        n = write_json(out, layout, feed(records), fmt == "jsonl", progress, PROGRESS_EVERY)
        rows.finish()
    except BaseException:
        rows.abort()
        raise
    if progress is not None:
        progress(n)
    warnings = [untimed_warning(feed.untimed)] if feed.untimed else []
    counts = {layout.form_id: n, path.name: rows.rows}
    return ExportResult(fmt, [out, path], n, counts, warnings)


def _write(
    forms: Sequence[Form],
    layout: Layout,
    names: SheetNames,
    records: Iterable[dict[str, Any]],
    out: Path,
    options: ExportOptions,
    progress: Callable[[int], None] | None,
) -> ExportResult:
    if options.fmt == "geojson":
        from yntymak_cli.export.geojson import write_geojson

        count = write_geojson(out, layout, records, progress, PROGRESS_EVERY)
        if progress is not None:
            progress(count.submissions)
        unread = [_t("export_geojson_unread", n=count.unread)] if count.unread else []
        rows = {layout.form_id: count.features}
        return ExportResult("geojson", [out], count.submissions, rows, unread)
    if options.fmt in ("json", "jsonl"):
        from yntymak_cli.export.json_ import write_json

        if options.paradata:
            return _write_json_paradata(out, layout, records, options.fmt, progress)
        n = write_json(out, layout, records, options.fmt == "jsonl", progress, PROGRESS_EVERY)
        if progress is not None:
            progress(n)
        return ExportResult(options.fmt, [out], n, {layout.form_id: n})

    counter = None
    sink: Any
    if options.fmt == "xlsx":
        from yntymak_cli.export.summary import SummaryCounter
        from yntymak_cli.export.xlsx import XlsxSink

        if options.summary:
            counter = SummaryCounter(forms, options.lang, layout.dropped, options.targets)
        sink = XlsxSink(out, layout, names, counter, paradata=options.paradata)
    elif options.fmt in STATS_FORMATS:
        from yntymak_cli.export.stats import StatsSink

        lang = options.lang or forms[0].language or "en"
        sink = StatsSink(out, layout, forms, options.fmt, lang)
    else:
        from yntymak_cli.export.csv_ import CsvSink

        sink = CsvSink(out, layout, paradata=options.paradata)
    feed = None
    if options.paradata:  # the sinks hold its table: rows written as the records pass
        from yntymak_cli.export.paradata import Feed

        feed = Feed(sink.write_paradata)
        records = feed(records)

    builder = RowBuilder(layout)
    n = 0
    try:
        write = sink.write
        for record in records:
            for table, row in builder.rows(record):
                write(table, row)
            if counter is not None:
                counter.add(record)
            n += 1
            if progress is not None and n % PROGRESS_EVERY == 0:
                progress(n)
        paths = sink.finish()
    except BaseException:
        sink.abort()
        raise
    if progress is not None:
        progress(n)
    warnings = []
    truncated = getattr(sink, "truncated", 0)
    if truncated:
        warnings.append(_t("export_truncated", n=truncated, option="--format csv"))
    for name, sheet in getattr(sink, "split", {}).items():
        keys = ", ".join(next(table.keys for table in layout.tables if table.name == name))
        option = "--format csv"
        warnings.append(_t("export_split", name=repr(name), sheet=sheet, keys=keys, option=option))
    if counter is not None and counter.field is None and forms[0].summary_by:
        warnings.append(_t("export_summary_by_unknown", name=repr(forms[0].summary_by)))
    if feed is not None and feed.untimed:
        warnings.append(_t("paradata_untimed", n=feed.untimed))
    return ExportResult(options.fmt, paths, n, dict(sink.rows), warnings)


def _disk_full(out: Path, exc: OSError) -> YntymakError:
    # Where the space ran out: the output's disk, unless the error names the temporary
    # folder, where openpyxl stages xlsx sheets until they are packed (see xlsx.py).
    import tempfile

    staging = Path(tempfile.gettempdir()).absolute()
    where = Path(exc.filename or out).absolute()
    if staging in (where, where.parent) and staging != out.absolute().parent:
        return YntymakError(
            _t("export_disk_full_temp", reason=_reason(exc), folder=staging, path=out)
        )
    return YntymakError(_t("export_disk_full", reason=_reason(exc), path=out))


def _reason(exc: OSError) -> str:
    from yntymak_cli.i18n import current_lang, os_error_text

    if exc.errno in _DISK_FULL:  # "disk full" / "disk quota exceeded", as said before
        key = "os_disk_full" if exc.errno == errno.ENOSPC else "os_quota"
        return _t(key)
    return os_error_text(exc, current_lang())


def _check(forms: Sequence[Form], options: ExportOptions) -> None:
    if not forms:
        raise InvalidInput(_t("export_nothing"))
    if options.fmt not in FORMATS:
        raise InvalidInput(
            _t("export_unknown_format", format=repr(options.fmt), formats=", ".join(FORMATS))
        )
    if options.summary and options.fmt != "xlsx":
        raise InvalidInput(_t("export_summary_needs_xlsx"))
    if options.paradata and options.fmt in STATS_FORMATS:
        raise InvalidInput(_t("export_stats_no_paradata"))
    if options.paradata and options.fmt == "geojson":
        raise InvalidInput(_t("export_geojson_no_paradata"))
    ids = {f.id for f in forms}
    if len(ids) > 1:
        raise InvalidInput(_t("export_one_form", forms=", ".join(sorted(ids))))
    languages = [lang for f in forms for lang in f.languages]
    if options.lang and languages and options.lang not in languages:
        known = ", ".join(dict.fromkeys(languages))
        raise InvalidInput(_t("export_no_language", lang=repr(options.lang), langs=known))
