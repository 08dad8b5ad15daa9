"""`yntymak hq serve`: bundles and receipts over HTTP (docs/http-api.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from yntymak_cli.i18n import current_lang, t


def hq_serve(
    bind: str = typer.Option(
        "127.0.0.1:8080",
        "--bind",
        metavar="HOST:PORT",
        help="Address to listen on ([::1]:PORT for IPv6; port 0 picks a free one). Any "
        "address other than loopback should sit behind TLS.",
    ),
    certfile: Path | None = typer.Option(
        None, "--certfile", metavar="FILE", help="TLS certificate (PEM); with --keyfile."
    ),
    keyfile: Path | None = typer.Option(
        None, "--keyfile", metavar="FILE", help="TLS private key (PEM); with --certfile."
    ),
    workers: int = typer.Option(
        2,
        "--workers",
        min=1,
        max=64,
        metavar="N",
        help="Bundles verified and imported at once. With HQ on PostgreSQL: N server "
        "processes on the one address, each importing one bundle at a time (the request "
        "limits below then hold per process). With SQLite: N threads of this one process "
        "(SQLite writes one at a time anyway). More uploads wait their turn.",
    ),
    upload_timeout: float = typer.Option(
        600.0,
        "--upload-timeout",
        min=0.1,
        metavar="SECONDS",
        help="Time for a whole bundle to arrive; a slower upload gets 408.",
    ),
    rate: int = typer.Option(
        60,
        "--rate",
        min=1,
        metavar="N",
        help="API requests per minute per client address; more get 429 (behind a reverse "
        "proxy every laptop shares the proxy's address).",
    ),
    total_rate: int = typer.Option(
        1200,
        "--total-rate",
        min=1,
        metavar="N",
        help="API requests per minute from all clients together; more get 429.",
    ),
    device_rate: int = typer.Option(
        30,
        "--device-rate",
        min=1,
        metavar="N",
        help="Bundles per minute per device; more get 429. Only bundles whose signature "
        "verifies with the device's enrolled key count, each bundle once (a replay costs "
        "nothing more), so nobody else can spend a laptop's budget.",
    ),
    max_inflight: int | None = typer.Option(
        None,
        "--max-inflight",
        min=1,
        metavar="BYTES",
        help="Upload bytes on disk at once (HOME/spool), all uploads together (default: four "
        "times --max-bundle or 4 GiB, whichever is smaller); an upload beyond it gets 429. "
        "One upload alone always may use up to --max-bundle.",
    ),
    max_connections: int = typer.Option(
        256,
        "--max-connections",
        min=1,
        metavar="N",
        help="Connections at once; more are answered 503. A public bind belongs behind a "
        "reverse proxy with header timeouts (docs/http-api.md).",
    ),
    max_bundle: int | None = typer.Option(
        None,
        "--max-bundle",
        min=1,
        metavar="BYTES",
        help="Largest bundle taken (default: the largest a bundle can be, about 1 GiB); "
        "larger ones get 413.",
    ),
    page_token: str | None = typer.Option(
        None,
        "--page-token",
        metavar="TOKEN",
        help="Token the status page needs (?token=) when reached from another machine or "
        "through a proxy (default: a random one, printed at start).",
    ),
) -> None:
    """Serve bundle uploads and receipts over HTTP, and a status page at /.

    A POSTed bundle is verified and imported exactly as `hq import` does and answered with
    its receipt. The first line printed is `Serving HQ on URL` (with the real port when
    --bind asks for port 0). Ctrl-C or SIGTERM stop it after the requests in flight.
    """
    import secrets

    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.home import home_dir
    from yntymak_cli.i18n import set_lang
    from yntymak_cli.plain import plain
    from yntymak_cli.server.app import Settings
    from yntymak_cli.server.run import bind as bind_socket
    from yntymak_cli.server.run import serve
    from yntymak_cli.server.spool import SPOOL, prepare
    from yntymak_cli.server.workers import run_workers
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync.keys import load_hq_identity

    lang = current_lang()
    if (certfile is None) != (keyfile is None):
        raise InvalidInput(t("serve_cert_pair", lang))
    for path in (certfile, keyfile):
        if path is not None and not path.is_file():
            raise InvalidInput(t("serve_cert_missing", lang, path=plain(path)))
    home = home_dir()
    hq = load_hq_identity(home)
    with HqDb.open() as db:  # created and migrated once, before any request
        db_path = db.store.path if db.store is not None else None
        db_url = db.url
    # Bodies stream to files here while they arrive (server/spool.py); made now, so a
    # folder that cannot be one is told before anything listens.
    spool = prepare(home / SPOOL)
    token = page_token or secrets.token_urlsafe(24)
    # With PostgreSQL, N processes; SQLite writes one at a time, so there N threads.
    processes = workers if db_url is not None and workers > 1 else 1
    bound = bind_socket(bind, shared=processes > 1)
    tls = certfile is not None
    url = bound.url(tls)

    def announce() -> None:
        # Machine-read (tests, scripts): always this English line, first, flushed, once
        # the address takes connections.
        typer.echo(f"Serving HQ on {url}")
        if bound.loopback:
            typer.echo(t("serve_page_loopback", lang, url=f"{url}/"))
            typer.echo(t("serve_page_proxy", lang, token=token))
        else:
            typer.echo(t("serve_page_token", lang, url=f"{url}/?token={token}"))
            if not tls:
                typer.echo(t("serve_tls_advice", lang, bind=plain(bind)))
        if processes > 1:
            typer.echo(t("serve_workers", lang, n=processes))
        typer.echo(t("serve_stop_hint", lang))
        sys.stdout.flush()

    settings = Settings(
        db_path=db_path,
        db_url=db_url,
        hq=hq,
        page_token=token,
        public=not bound.loopback,
        port=bound.port,
        max_bundle=max_bundle or 0,
        upload_timeout=upload_timeout,
        rate=rate,
        total_rate=total_rate,
        device_rate=device_rate,
        max_imports=workers,
        max_inflight=max_inflight or 0,
        spool=spool,
        home=home,
    )
    set_lang("en")  # refusals travel in English: the laptop shows them in its language
    ok = True
    try:
        if processes > 1:
            ok = run_workers(bound, settings, processes, certfile=certfile, keyfile=keyfile,
                             max_connections=max_connections, ready=announce)  # fmt: skip
        else:
            announce()
            serve(bound, settings, certfile=certfile, keyfile=keyfile,
                  max_connections=max_connections)  # fmt: skip
    finally:
        bound.sock.close()
        set_lang(lang)
    if not ok:
        typer.echo(t("serve_workers_failed", lang), err=True)
        raise typer.Exit(1)
    typer.echo(t("serve_stopped", lang))
