"""Binding the socket and running uvicorn for `yntymak hq serve`.

The socket is bound here, before uvicorn starts, so that `--bind HOST:0` works: the caller
learns the real port and prints it first. uvicorn then serves on that socket.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yntymak_cli.errors import InvalidInput
from yntymak_cli.i18n import current_lang, t
from yntymak_cli.server.app import Settings

if TYPE_CHECKING:
    import uvicorn

_BIND = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})")


@dataclass
class Bound:
    sock: socket.socket
    host: str  # numeric, as the socket reports it
    port: int
    loopback: bool

    def url(self, tls: bool) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if tls else 'http'}://{host}:{self.port}"


def bind(text: str, *, shared: bool = False) -> Bound:
    """Listen on HOST:PORT ([::1]:PORT for IPv6; port 0 picks a free one).

    `shared`: only hold the address (SO_REUSEPORT, not listening), for worker processes
    that each listen on it with `listen_shared` (server/workers.py)."""
    lang = current_lang()
    found = _BIND.fullmatch(text.strip())
    if not found or int(found["port"]) > 65535:
        raise InvalidInput(t("serve_bad_bind", lang, bind=text))
    host, port = found["v6"] or found["host"], int(found["port"])
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise InvalidInput(t("serve_cannot_bind", lang, bind=text, error=exc)) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if not shared:
            sock.listen(128)
    except OSError as exc:
        sock.close()
        raise InvalidInput(
            t("serve_cannot_bind", lang, bind=text, error=exc.strerror or exc)
        ) from None
    real_host, real_port = sock.getsockname()[:2]
    loopback = ipaddress.ip_address(real_host.split("%")[0]).is_loopback
    return Bound(sock, real_host, real_port, loopback)


def listen_shared(family: int, address: tuple[Any, ...]) -> socket.socket:
    """A worker's own listening socket on the address a `bind(shared=True)` holds. The
    kernel spreads new connections over these sockets; one shared listening socket would
    not: the first event loop to wake accepts every connection waiting."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(128)
    return sock


def serve(
    bound: Bound,
    settings: Settings,
    *,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    max_connections: int = 256,
) -> None:
    """Run until SIGINT or SIGTERM, then finish the requests in flight and return.

    `max_connections`: connections (and requests) at once; more are answered 503 at once.
    uvicorn has no timeout for request headers, so this is what keeps a few connections
    that trickle their headers from taking the server's every file descriptor."""
    import uvicorn

    from yntymak_cli.server.app import create_app

    logging.getLogger("yntymak.server").setLevel(logging.INFO)
    config = uvicorn.Config(
        create_app(settings),
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        lifespan="off",
        # Our own log lines name device and seq; uvicorn's access log would also write the
        # page's ?token= to the log.
        access_log=False,
        # The socket's peer is the client; forwarded headers are not trusted (the status
        # page treats a request that carries them as coming from outside).
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=30,
        limit_concurrency=max_connections,
        # An idle kept-alive connection is closed after this long (uvicorn's default too,
        # pinned here: a longer one would let idle connections fill max_connections).
        timeout_keep_alive=5,
        log_config=LOG_CONFIG,
    )
    _server(config).run(sockets=[bound.sock])


def _server(config: uvicorn.Config) -> uvicorn.Server:
    """uvicorn.Server whose SIGINT/SIGTERM end `run` normally: uvicorn raises the signal
    again after its graceful shutdown, which would kill the process with it."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    captured = getattr(self, "_captured_signals", None)
                    if isinstance(captured, list):
                        captured.clear()

    return Server(config)


LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"}
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "yntymak.server": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
