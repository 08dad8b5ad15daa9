"""`hq checks` reports (quality.checks): JSON for scripts, an xlsx workbook for coordinators."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yntymak_cli.i18n import t
from yntymak_cli.quality.checks import CHECKS, Report, reason

SHEET_MAX = 31  # characters in an Excel sheet name


def as_json(reports: Sequence[Report], lang: str | None) -> dict[str, Any]:
    """The `--json` document: per form, totals, counts per check, enumerators, districts
    and every flag with its code, reason (in `lang`) and values."""
    forms = []
    for r in reports:
        by_uuid = {s.uuid: s for s in r.submissions}
        forms.append(
            {
                "form": r.form_id,
                "submissions": len(r.submissions),
                "flagged": len(r.flagged()),
                "checks": r.counts(),
                "near_duplicate_groups_skipped": r.skipped_groups,
                "enumerators": r.by("enumerator"),
                "districts": r.by("district"),
                "flags": [
                    {
                        "uuid": f.uuid,
                        "enumerator": by_uuid[f.uuid].enumerator,
                        "district": by_uuid[f.uuid].district,
                        "code": f.code,
                        "reason": reason(f, lang),
                        "values": f.values,
                    }
                    for f in r.flags
                ],
            }
        )
    return {"forms": forms}


def check_name(code: str, lang: str | None) -> str:
    return t(f"check_name_{code}", lang)


def write_xlsx(reports: Sequence[Report], path: Path, lang: str | None) -> None:
    """A summary sheet (per form: counts per check, per enumerator, per district), then one
    sheet per check listing its flags (_uuid, form, enumerator, district, reason). Written
    to a temporary file and moved into place: a failed write leaves no half workbook."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    from yntymak_cli.export.cells import EXCEL_TEXT_MAX, xml_safe
    from yntymak_cli.files import atomic_path

    wb = Workbook(write_only=True)

    def cell(ws: Any, value: Any) -> Any:
        if isinstance(value, str):
            c = WriteOnlyCell(ws, value=xml_safe(value)[:EXCEL_TEXT_MAX])
            c.data_type = "s"  # names and reasons came from devices: never a formula
            return c
        return value

    summary = wb.create_sheet(_sheet_title(t("checks_summary_sheet", lang), set()))
    for r in reports:
        summary.append([cell(summary, t("checks_form", lang, form=r.form_id))])
        summary.append(
            [
                cell(summary, t("checks_submissions", lang)),
                len(r.submissions),
                cell(summary, t("checks_flagged", lang)),
                len(r.flagged()),
            ]
        )
        summary.append([])
        summary.append([cell(summary, t("checks_check", lang)), cell(summary, t("checks_n", lang))])
        for code, n in r.counts().items():
            summary.append([cell(summary, check_name(code, lang)), n])
        for key in ("enumerator", "district"):
            summary.append([])
            summary.append(
                [
                    cell(summary, t(f"checks_{key}", lang)),
                    cell(summary, t("checks_submissions", lang)),
                    cell(summary, t("checks_flagged", lang)),
                    cell(summary, t("checks_share", lang)),
                    cell(summary, t("checks_median_minutes", lang)),
                ]
            )
            for row in r.by(key):
                summary.append(
                    [
                        cell(summary, row[key] or "-"),
                        row["submissions"],
                        row["flagged"],
                        row["share_flagged"],
                        row["median_minutes"],
                    ]
                )
        summary.append([])
    used: set[str] = {summary.title}
    headers = ["_uuid", t("checks_form_column", lang), t("checks_enumerator", lang),
               t("checks_district", lang), t("checks_reason", lang)]  # fmt: skip
    for code in CHECKS:
        ws = wb.create_sheet(_sheet_title(check_name(code, lang), used))
        used.add(ws.title)
        ws.append([cell(ws, h) for h in headers])
        for r in reports:
            by_uuid = {s.uuid: s for s in r.submissions}
            for f in r.flags:
                if f.code != code:
                    continue
                s = by_uuid[f.uuid]
                ws.append(
                    [
                        cell(ws, f.uuid),
                        cell(ws, r.form_id),
                        cell(ws, s.enumerator),
                        cell(ws, s.district),
                        cell(ws, reason(f, lang)),
                    ]
                )
    with atomic_path(path) as tmp:
        wb.save(tmp)


def _sheet_title(name: str, used: set[str]) -> str:
    """A valid, unique sheet name: no []:*?/\\ characters, at most 31 characters."""
    clean = "".join(" " if c in "[]:*?/\\" else c for c in name).strip() or "sheet"
    title = clean[:SHEET_MAX]
    k = 2
    while title.lower() in {u.lower() for u in used}:
        suffix = f" ({k})"
        title = clean[: SHEET_MAX - len(suffix)] + suffix
        k += 1
    return title
