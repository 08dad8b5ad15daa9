"""HQ's status page (`GET /`): what has arrived, from `sync.hq.status`, in ky, ru or en.

Counts only: submissions by district and by form, and per device its name, last bundle and
missing bundles. Never an answer or a review comment (status() holds none). Every value
from the database goes through html.escape; the page loads nothing from anywhere.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from yntymak_cli.i18n import LANGUAGES, t

DEFAULT_LANG = "ky"  # the programme's language; ?lang= or Accept-Language choose another
GAPS_SHOWN = 20
# No scripts, no outside resources, no referrer (the URL may hold the token), no caching.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}"
    "td.n{text-align:right}nav a{margin-right:.8em}.note{color:#555}"
)


def choose_lang(query: str | None, headers: Mapping[str, str]) -> str:
    """?lang= when it names a language, else the best of Accept-Language, else ky."""
    if query in LANGUAGES:
        return query
    best, best_q = DEFAULT_LANG, 0.0
    for part in headers.get("accept-language", "").split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang in LANGUAGES and q > best_q:
            best, best_q = lang, q
    return best


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _doc(lang: str, title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def forbidden(lang: str) -> str:
    message = t("serve_page_forbidden", lang)
    return _doc(lang, message, f"<p>{_e(message)}</p>")


def _table(headings: list[str], rows: list[list[tuple[str, bool]]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headings)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if num else f"<td>{c}</td>" for c, num in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _problems(d: dict[str, Any], lang: str) -> str:
    out = []
    if d["revoked_at"]:
        out.append(t("hq_status_revoked", lang, date=d["revoked_at"][:10]))
    if d["gaps"]:
        more = ""
        if d["gaps_total"] > GAPS_SHOWN:
            more = t("hq_status_gaps_more", lang, n=d["gaps_total"] - GAPS_SHOWN)
        seqs = ", ".join(str(s) for s in d["gaps"][:GAPS_SHOWN])
        out.append(t("hq_status_gaps", lang, seqs=seqs, more=more))
    if d["chain_breaks"]:
        seqs = ", ".join(str(s) for s in d["chain_breaks"])
        out.append(t("hq_status_chain_break", lang, seqs=seqs))
    return "<br>".join(_e(p) for p in out) or _e(t("hq_status_ok", lang))


def render(status: dict[str, Any], lang: str, token: str | None = None) -> str:
    """The page for `status` (sync.hq.status); `token` is kept in the language links."""
    title = t("serve_page_title", lang)
    totals = status["totals"]
    no_district = t("hq_status_no_district", lang)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    links = []
    for other in LANGUAGES:
        query = urlencode({"lang": other, **({"token": token} if token else {})})
        links.append(f'<a href="?{_e(query)}" hreflang="{other}">{other}</a>')
    parts = [
        f"<h1>{_e(title)}</h1>",
        f'<nav aria-label="{_e(t("serve_page_language", lang))}">{"".join(links)}</nav>',
        f'<p class="note">{_e(t("serve_page_updated", lang, time=now))}. '
        f"{_e(t('serve_page_counts_only', lang))}</p>",
        "<p><strong>"
        + _e(t("hq_status_totals", lang, submissions=totals["submissions"], void=totals["void"]))
        + "</strong></p>",
        f"<h2>{_e(t('serve_page_by_district', lang))}</h2>",
        _table(
            [t("serve_page_district", lang), t("hq_status_submissions", lang)],
            [
                [(_e(k or no_district), False), (_e(n), True)]
                for k, n in totals["by_district"].items()
            ],
        ),
        f"<h2>{_e(t('serve_page_by_form', lang))}</h2>",
        _table(
            [t("hq_status_form", lang), t("hq_status_submissions", lang)],
            [[(_e(k), False), (_e(n), True)] for k, n in totals["by_form"].items()],
        ),
        f"<h2>{_e(t('hq_status_devices', lang))}</h2>",
    ]
    devices = status["devices"]
    if not devices:
        parts.append(f"<p>{_e(t('hq_status_no_devices', lang))}</p>")
    else:
        rows = []
        for d in devices:
            if d["last_seq"] is None:
                last = t("serve_page_no_bundle", lang)
            else:
                date = (d["last_received_at"] or "")[:10]
                last = t("serve_page_last_bundle", lang, seq=d["last_seq"], date=date)
            subs = sum(d["submissions_by_form"].values())
            rows.append(
                [
                    (f"{_e(d['name'])}<br><small>{_e(d['device_id'])}</small>", False),
                    (_e(d["district"] or no_district), False),
                    (_e(last), False),
                    (_e(subs), True),
                    (_problems(d, lang), False),
                ]
            )
        headings = [
            t("hq_status_device", lang),
            t("serve_page_district", lang),
            t("hq_status_last_bundle", lang),
            t("hq_status_submissions", lang),
            t("hq_status_problems", lang),
        ]
        parts.append(_table(headings, rows))
    return _doc(lang, title, "".join(parts))
