"""`yntymak hq review ...`, `yntymak hq receipt` (HQ) and `yntymak inbox` (laptop).

Thin layer over sync/review.py and store/reviews.py. Comments are text HQ staff typed and
names came from devices: everything from the database is printed as plain text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from yntymak_cli.i18n import current_lang, t

review_app = typer.Typer(
    help="HQ: review submissions (approve, reject with a comment, hold) and see decisions.",
    no_args_is_help=True,
)

_STATUS_KEYS = {
    "approved": "review_status_approved",
    "rejected": "review_status_rejected",
    "on_hold": "review_status_on_hold",
    "pending": "review_status_pending",
}


def status_word(status: str, lang: str) -> str:
    """A review status in the reader's words (JSON keeps the codes)."""
    return t(_STATUS_KEYS[status], lang) if status in _STATUS_KEYS else status


def _default_reviewer() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container): ask for --reviewer
        return ""


def _day(timestamp: str | None) -> str:
    return (timestamp or "")[:10]


@review_app.command("list")
def review_list(
    status: str | None = typer.Option(
        None, "--status", help="pending, approved, rejected or on_hold."
    ),
    form: str | None = typer.Option(None, "--form", help="Only this form id."),
    district: str | None = typer.Option(None, "--district", help="Only devices of this district."),
    enumerator: str | None = typer.Option(None, "--enumerator", help="Only this enumerator."),
    flagged: bool = typer.Option(
        False,
        "--flagged",
        help="Run the quality checks (hq checks) and list flagged submissions first, with "
        "their flag codes.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """One row per submission (latest revision): review status, enumerator, district, time
    and the last comment. Pending: no decision on the latest revision."""
    from yntymak_cli.plain import json_text, text
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync.review import review_list as rows_for

    lang = current_lang()
    flags: dict[str, list[str]] = {}
    with HqDb.open() as store:
        rows = rows_for(
            store, status=status, form_id=form, district=district, enumerator=enumerator
        )
        if flagged:
            from yntymak_cli.cli.quality import run_reports

            for form_id in sorted({r.form_id for r in rows}):
                for report in run_reports(store, form_id):
                    flags.update((s.uuid, s.flags) for s in report.submissions if s.flags)
            # Flagged first (most flags first), the listing's own order kept within each.
            rows = sorted(rows, key=lambda r: -len(flags.get(r.uuid, [])))
    if as_json:
        found = [
            {**r._asdict(), **({"flags": flags.get(r.uuid, [])} if flagged else {})} for r in rows
        ]
        typer.echo(json_text(json.dumps(found, ensure_ascii=False, indent=2)))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    table.add_column("UUID", no_wrap=True, min_width=8)
    for key in ("col_form", "col_rev", "col_review", "col_enumerator", "col_district"):
        table.add_column(t(key, lang), overflow="fold")
    table.add_column(t("col_updated", lang), no_wrap=True)
    table.add_column(t("col_comment", lang), overflow="fold")
    if flagged:
        table.add_column(t("checks_flags_column", lang), overflow="fold")
    for r in rows:
        extra = [text(" ".join(flags.get(r.uuid, [])))] if flagged else []
        table.add_row(
            text(r.uuid[:8]),
            text(r.form_id),
            text(str(r.revision)),
            text(status_word(r.status, lang)),
            text(r.enumerator),
            text(r.district or ""),
            text(_day(r.submission_time)),
            text(r.last_comment or ""),
            *extra,
        )
    Console().print(table)
    typer.echo(t("review_list_count", lang, n=len(rows)))


def _decide(uuid: str, status: str, comment: str | None, reviewer: str | None) -> None:
    from yntymak_cli.plain import plain
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync.review import decide

    with HqDb.open() as store:
        d = decide(store, uuid, status, comment, reviewer or _default_reviewer())
    typer.echo(
        t(
            "review_decided",
            current_lang(),
            uuid=d.uuid,
            revision=d.revision,
            status=status_word(d.status, current_lang()),
            reviewer=plain(d.reviewer),
        )
    )


_REVIEWER = typer.Option(None, "--reviewer", help="Who decides (default: your login name).")


@review_app.command("approve")
def review_approve(
    uuid: str = typer.Argument(..., help="Submission UUID (or its first characters)."),
    comment: str | None = typer.Option(None, "--comment", help="Optional note."),
    reviewer: str | None = _REVIEWER,
) -> None:
    """Approve the revision HQ holds now; the laptop then locks it against edits."""
    _decide(uuid, "approved", comment, reviewer)


@review_app.command("reject")
def review_reject(
    uuid: str = typer.Argument(..., help="Submission UUID (or its first characters)."),
    comment: str = typer.Option(..., "--comment", help="What the volunteer must fix."),
    reviewer: str | None = _REVIEWER,
) -> None:
    """Return a submission to its volunteer with a comment saying what to fix."""
    _decide(uuid, "rejected", comment, reviewer)


@review_app.command("hold")
def review_hold(
    uuid: str = typer.Argument(..., help="Submission UUID (or its first characters)."),
    comment: str = typer.Option(..., "--comment", help="Why it is on hold."),
    reviewer: str | None = _REVIEWER,
) -> None:
    """Put a submission on hold, with a comment."""
    _decide(uuid, "on_hold", comment, reviewer)


@review_app.command("show")
def review_show(
    uuid: str = typer.Argument(..., help="Submission UUID (or its first characters)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Every decision on a submission: when, who, on which revision, status and comment."""
    from yntymak_cli.plain import json_text, plain
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync.review import history

    lang = current_lang()
    with HqDb.open() as store:
        row, decisions = history(store, uuid)
        current = None
        for d in decisions:
            if d.revision == row["revision"]:
                current = d
    status = current.status if current is not None else "pending"
    if as_json:
        data: dict[str, Any] = {
            "uuid": row["uuid"],
            "revision": row["revision"],
            "status": status,
            "decisions": [d._asdict() for d in decisions],
        }
        typer.echo(json_text(json.dumps(data, ensure_ascii=False, indent=2)))
        return
    typer.echo(
        t(
            "review_show_head",
            lang,
            uuid=row["uuid"],
            form=plain(row["form_id"]),
            revision=row["revision"],
            status=status_word(status, lang),
        )
    )
    if not decisions:
        typer.echo("  " + t("review_show_none", lang))
    for d in decisions:
        typer.echo(
            "  "
            + t(
                "review_show_line",
                lang,
                at=plain(d.decided_at[:19].replace("T", " ")),
                reviewer=plain(d.reviewer),
                revision=d.revision,
                status=status_word(d.status, lang),
            )
            + (f": {plain(d.comment)}" if d.comment else "")
        )


def hq_receipt(
    device_id: str = typer.Argument(..., help="Device id (see `yntymak hq status`)."),
    output: Path = typer.Option(
        Path("."),
        "-o",
        "--output",
        metavar="DIR",
        help="Folder for the receipt; created if missing.",
    ),
    again: bool = typer.Option(
        False,
        "--all",
        help="Send the newest decision of every submission again (after a lost receipt).",
    ),
) -> None:
    """Write a receipt with the review decisions waiting for a device.

    For a laptop that has nothing new to send. The decisions are sealed to that laptop's
    encryption key: whoever carries the file cannot read them.
    """
    from yntymak_cli.home import home_dir
    from yntymak_cli.plain import plain
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync.hq import check_receipts_dir
    from yntymak_cli.sync.keys import load_hq_identity
    from yntymak_cli.sync.review import write_decisions_receipt

    lang = current_lang()
    hq = load_hq_identity(home_dir())
    check_receipts_dir(output)
    with HqDb.open() as store:
        path, sent = write_decisions_receipt(store, hq, device_id, output, again=again)
    if path is None:
        if not sent.no_key:  # else the line below says why nothing was written
            typer.echo(t("hq_receipt_nothing", lang, device=plain(device_id)))
    else:
        typer.echo(
            t("hq_receipt_written", lang, path=plain(path), n=len(sent.decisions), device=device_id)
        )
    print_waiting(sent, lang)


def print_waiting(sent: Any, lang: str) -> None:
    """HQ's note on decisions a receipt could not carry."""
    if sent is None or not sent.waiting:
        return
    key = "hq_decisions_need_key" if sent.no_key else "hq_decisions_next_receipt"
    typer.echo("  " + t(key, lang, n=sent.waiting, device=sent.device_id))


def inbox(
    show_all: bool = typer.Option(
        False, "--all", help="Also approved submissions (every current decision)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Submissions HQ returned with a comment (rejected or on hold), to fix with
    `yntymak submissions edit UUID`."""
    from yntymak_cli.plain import json_text, plain
    from yntymak_cli.store import reviews
    from yntymak_cli.store.db import Store

    lang = current_lang()
    statuses = reviews.STATUSES if show_all else ("rejected", "on_hold")
    with Store.open() as store:
        rows = reviews.inbox(store.conn, statuses)
    if as_json:
        typer.echo(json_text(json.dumps([r._asdict() for r in rows], ensure_ascii=False, indent=2)))
        return
    if not rows:
        typer.echo(t("inbox_empty", lang))
        return
    for r in rows:
        # One block per submission: the frame in the volunteer's language, HQ's comment
        # whole and as HQ wrote it (its language), as plain text.
        typer.echo(
            t(
                "inbox_line",
                lang,
                uuid=r.uuid[:8],
                form=plain(r.form_id),
                name=plain(r.instance_name or "-"),
                revision=r.revision,
                status=status_word(r.status, lang),
                date=_day(r.decided_at),
                reviewer=plain(r.reviewer),
            )
        )
        if r.comment:
            typer.echo("    " + plain(r.comment, keep_newlines=True).replace("\n", "\n    "))
    typer.echo(t("inbox_count", lang, n=len(rows)))
    if any(r.status == "rejected" for r in rows):
        typer.echo(t("inbox_fix_hint", lang))
