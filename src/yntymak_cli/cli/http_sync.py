"""`yntymak sync [URL]`: send what is unsent to HQ over HTTP and apply HQ's answers.

Thin layer over yntymak_cli.sync.http (which imports httpx: only this command loads it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from yntymak_cli.i18n import current_lang, t

PROGRESS_MIN = 1024 * 1024  # a bar only for bundles that take a while on a mobile link


def sync(
    url: str | None = typer.Argument(
        None,
        metavar="URL",
        help="HQ's address, e.g. https://hq.example.org (default: `yntymak config set "
        "hq_url URL` or `keys trust-hq hq.pub --url URL`).",
    ),
    ca: Path | None = typer.Option(
        None,
        "--ca",
        metavar="FILE",
        help="Check HQ's TLS certificate against this certificate (PEM) instead of the system's.",
    ),
    timeout: float = typer.Option(
        300.0,
        "--timeout",
        metavar="SECONDS",
        min=0.1,
        help="Give up when HQ has not answered a request (retries included) in this time.",
    ),
    max_size: str | None = typer.Option(
        None,
        "--max-size",
        metavar="SIZE",
        help="Make new bundles at most this large (e.g. 200 MB over a slow link; "
        "default and most 1 GB): more parts, each sent and acknowledged in turn.",
    ),
) -> None:
    """Send everything unsent to HQ over the network and apply HQ's answers.

    Uploads each bundle HQ has not acknowledged (oldest first), then a new bundle of
    whatever is still unsent (several, one after another, when it does not fit in one),
    applies each receipt at once (as `bundle ack` does), fetches HQ's review decisions,
    and prints one summary line. Bundles wait in HOME/outbox until
    HQ acknowledges them, then are deleted (HQ holds them, and the database can make them
    again). Network errors, 5xx and 429 are retried with backoff; exit 1 when HQ did not
    answer in time (run `yntymak sync` again: nothing is lost), exit 2 when HQ refused.
    Respects HTTPS_PROXY and HTTP_PROXY; plain http:// to another machine gets a warning.
    """
    from yntymak_cli.cli.sync import _home, _trusted_hq, print_ack_details
    from yntymak_cli.config import check_hq_url, config_hq_url
    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.plain import plain
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync import http, http_parts
    from yntymak_cli.sync.keys import load_or_create_device_identity
    from yntymak_cli.sync.split import read_max_size

    lang = current_lang()
    limit = read_max_size(max_size) if max_size is not None else None
    given = url if url is not None else config_hq_url()
    if not given:
        raise InvalidInput(t("http_no_url", lang))
    hq_url = check_hq_url(given)
    hq = _trusted_hq()
    home = _home()
    device = load_or_create_device_identity(home)
    if http.is_insecure(hq_url):
        typer.echo(t("http_plain_warning", lang, url=plain(hq_url)), err=True)
    bar = _Bar() if sys.stderr.isatty() else None
    try:
        with Store.open() as store:
            result = http_parts.sync_all(
                store,
                device,
                hq,
                hq_url,
                outbox=http.outbox_dir(home),
                timeout=timeout,
                ca=ca,
                progress=bar,
                max_size=limit,
            )
    finally:
        if bar is not None:
            bar.close()
    if result.skipped:  # once per run, however many
        folder = plain(result.skipped[0].parent)
        typer.echo(t("http_skipped_other_hq", lang, n=len(result.skipped), folder=folder), err=True)
    voids = t("sync_counts_voids", lang, voids=result.voids) if result.voids else ""
    typer.echo(
        t(
            "http_synced",
            lang,
            bundles=len(result.sent),
            revisions=result.acknowledged,
            voids=voids,
            refused=len(result.refused),
            decisions=len(result.decisions),
        )
    )
    for line in result.too_large:  # left out, so that the others travel
        typer.echo(t("warning", lang, message=line), err=True)
    print_ack_details(result, lang)


class _Bar:
    """A rich progress bar on stderr for a large upload; nothing for small ones."""

    def __init__(self) -> None:
        self.progress: Any = None
        self.task: Any = None
        self.name: str | None = None

    def __call__(self, name: str, done: int, total: int) -> None:
        if total < PROGRESS_MIN:
            return
        if self.progress is None or name != self.name:
            self.close()
            from rich.console import Console
            from rich.markup import escape
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            self.progress = Progress(
                TextColumn(escape(name)),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("", total=total)
            self.name = name
        self.progress.update(self.task, completed=done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.progress = self.task = self.name = None
