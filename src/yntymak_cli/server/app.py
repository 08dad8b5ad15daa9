"""The ASGI app of `yntymak hq serve` (starlette): the API under /api/v1, /healthz and the
status page. See docs/http-api.md for the contract (paths, status codes, error JSON).

Everything that touches the database runs in a worker thread with its own `HqDb` (a
sqlite3 connection belongs to the thread that opened it); writes serialise on SQLite's
`BEGIN IMMEDIATE` and busy timeout, as two `hq import` processes would. The event loop only
reads bodies and keeps the limits (request rates per client address and in all, the bytes
in flight, one upload per device, verified bundles per device, the import cap).

A body is never held in memory: it streams into a file of its own in HQ_HOME/spool
(server/spool.py), a quarter megabyte at a time, and is imported from that file by what
`hq import FILE` runs. The file goes however the request ends.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from yntymak_cli.errors import InvalidInput, NotFound
from yntymak_cli.server import spool
from yntymak_cli.server.limits import DeviceLocks, DeviceRate, InFlight, RateLimiter
from yntymak_cli.store import hq as hq_store
from yntymak_cli.store.hqdb import HqDb
from yntymak_cli.sync.keys import HqIdentity

log = logging.getLogger("yntymak.server")

T = TypeVar("T")

DEVICE_HEADER = "X-Yntymak-Device"
DEVICE_ID_RE = re.compile(r"[a-z2-7]{16}")
OCTETS = "application/octet-stream"
# Bundle refusal reasons (container.BundleError.reason) that are not 400.
_REASON_STATUS = {"unknown-device": 403, "revoked-device": 403, "too-large": 413}
# Seconds a laptop is asked to wait when its previous upload is still being handled, or
# when SQLite stayed busy past its timeout.
BUSY_RETRY_AFTER = 5
# Headers a reverse proxy adds: such a request did not come from this machine, whatever
# address the socket shows, so the status page asks it for the token.
_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
# Names this machine answers to: a page request whose Host is anything else came through a
# proxy or a rebound DNS name (a web page elsewhere reading ours), so it needs the token.
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# Default cap on upload bytes in the spool at once, all uploads together: see max_inflight.
MAX_INFLIGHT = 4 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """What `hq serve` was started with. Defaults are the documented ones."""

    db_path: Path | None  # HQ's SQLite file; None: PostgreSQL at db_url
    hq: HqIdentity
    page_token: str  # the status page's ?token= (needed off loopback and through proxies)
    db_url: str | None = None  # HQ on PostgreSQL
    public: bool = False  # bound to an address other than loopback
    port: int = 0  # the bound port, which a loopback Host must name (0: any)
    max_bundle: int = 0  # bytes; 0: container.MAX_BUNDLE_FILE_SIZE
    upload_timeout: float = 600.0  # seconds for a whole request body
    rate: int = 60  # API requests per minute per client address
    total_rate: int = 1200  # API requests per minute from all clients together
    # Bundles per minute per device, counted only once their signature verified with the
    # device's enrolled key, each bundle_id once (a replay costs nothing more).
    device_rate: int = 30
    max_imports: int = 2  # bundles verified and imported at once
    # Upload bytes in the spool at once, all uploads together; 0: the smaller of four times
    # the bundle limit and 4 GiB. One upload alone may always use up to the bundle limit.
    max_inflight: int = 0
    # Where bodies wait while they arrive; None: "spool" beside HQ's SQLite file, or in the
    # home (PostgreSQL).
    spool: Path | None = None
    # HQ's home (`--home`), for worker processes: spawned, they do not inherit the CLI's
    # override, and HQ's media files on PostgreSQL live in the home (sync/hq_media.py).
    home: Path | None = None


def error(status: int, code: str, message: str, retry_after: int | None = None) -> JSONResponse:
    """A refusal: `{"error": CODE, "message": TEXT}` (English; the laptop localizes CODE)."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


class _Api:
    def __init__(self, settings: Settings) -> None:
        from yntymak_cli.sync.container import MAX_BUNDLE_FILE_SIZE

        self.settings = settings
        # No bundle is larger than MAX_BUNDLE_FILE_SIZE: a larger --max-bundle takes nothing more.
        self.max_bundle = min(settings.max_bundle or MAX_BUNDLE_FILE_SIZE, MAX_BUNDLE_FILE_SIZE)
        self.rate = RateLimiter(settings.rate, total=settings.total_rate)
        self.locks = DeviceLocks()
        self.device_rate = DeviceRate(settings.device_rate)
        self.imports = asyncio.Semaphore(max(1, settings.max_imports))
        self.inflight = InFlight(settings.max_inflight or min(4 * self.max_bundle, MAX_INFLIGHT))
        self.spool = spool.prepare(settings.spool or _spool_dir(settings))

    # -- helpers ----------------------------------------------------------------------

    def _in_store(self, fn: Callable[[HqDb], T]) -> T:
        with HqDb.at(self.settings.db_path, self.settings.db_url) as store:
            return fn(store)

    async def db(self, fn: Callable[[HqDb], T]) -> T:
        return await run_in_threadpool(self._in_store, fn)

    def limited(self, request: Request) -> JSONResponse | None:
        """429 past the rate of the request's client address or of all clients together.
        Never counted by a device id the request claims: anyone can name any device."""
        client = request.client.host if request.client else "-"
        wait = self.rate.check(client)
        if wait:
            return error(
                429,
                "too-many-requests",
                f"too many requests: retry in {wait} s",
                retry_after=wait,
            )
        return None

    async def read_body(
        self, request: Request, upload: spool.SpoolFile, held: list[int]
    ) -> JSONResponse | None:
        """The body into `upload`, at most max_bundle bytes, within upload_timeout seconds;
        None once it is all on disk, else the refusal. `held[0]`: the bytes reserved in the
        in-flight budget so far (a declared length up front, else as chunks come).

        Only waiting for the client is bound by the timeout: a write to disk, in a worker
        thread, is never abandoned halfway (the file is closed and removed after it)."""
        limit = self.max_bundle
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.upload_timeout
        size = 0
        pending = bytearray()
        chunks = request.stream().__aiter__()
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise asyncio.TimeoutError
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), left)
                except StopAsyncIteration:
                    break
                size += len(chunk)
                if size > limit:
                    return _too_large(limit)
                if size > held[0]:
                    if not self.inflight.reserve(size - held[0], held[0]):
                        return _server_busy()
                    held[0] = size
                pending += chunk
                if len(pending) >= spool.WRITE_SIZE:
                    data, pending = pending, bytearray()
                    await run_in_threadpool(upload.write, data)
            if pending:
                await run_in_threadpool(upload.write, pending)
            await run_in_threadpool(upload.finish)
        except asyncio.TimeoutError:
            log.warning("upload timed out after %s s", self.settings.upload_timeout)
            return error(
                408,
                "upload-timeout",
                f"the bundle did not arrive within {self.settings.upload_timeout:g} s",
            )
        except OSError as exc:  # the spool's disk: full, or failing
            log.error("cannot write an upload to %s: %s", self.spool, exc)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return error(
                    500, "internal", "HQ's disk is full: nothing was stored; HQ must free space"
                )
            return error(500, "internal", "HQ could not store the upload; see HQ's server log")
        return None

    # -- endpoints ------------------------------------------------------------------------

    async def post_bundle(self, request: Request) -> Response:

        device_id = request.headers.get(DEVICE_HEADER, "")
        if not DEVICE_ID_RE.fullmatch(device_id):
            return error(400, "invalid", f"the {DEVICE_HEADER} header must name a device id")
        refused = self.limited(request)
        if refused is not None:
            return refused
        length = request.headers.get("content-length")
        declared = 0
        if length is not None:
            if not length.isdigit():
                return error(400, "invalid", "bad Content-Length")
            declared = int(length)
            if declared > self.max_bundle:
                return _too_large(self.max_bundle)
        # Known before the body is read: an unknown id costs one lookup, not an upload.
        # (A revoked device is told after its signature is checked, as `hq import` does.)
        if not await self.db(lambda s: hq_store.device_by_id(s.conn, device_id) is not None):
            return error(403, "unknown-device", f"device {device_id} is not enrolled at this HQ")
        # The in-flight budget: a declared length is taken up front, before any byte.
        if declared and not self.inflight.reserve(declared):
            return _server_busy()
        held = [declared]
        upload: spool.SpoolFile | None = None
        try:
            upload = await run_in_threadpool(self._new_upload)
            try:
                refused = await self.read_body(request, upload, held)
            except ClientDisconnect:
                log.info("a client disconnected during its upload (device %s)", device_id)
                return error(400, "invalid", "the upload was cut off")
            if refused is not None:
                return refused
            return await self._import(device_id, upload.path)
        finally:
            # Whatever happened (imported, refused, cut off, a server error, the task
            # cancelled at shutdown): the file goes, then its bytes leave the budget.
            if upload is not None:
                upload.remove()
            self.inflight.release(held[0])

    def _new_upload(self) -> spool.SpoolFile:
        try:
            return spool.SpoolFile(self.spool)
        except FileNotFoundError:  # the folder was removed while serving: made again
            spool.prepare(self.spool)
            return spool.SpoolFile(self.spool)

    async def _import(self, device_id: str, path: Path) -> Response:
        from yntymak_cli.sync import container
        from yntymak_cli.sync import hq as hq_mod

        # Opened once, by what `hq import FILE` opens a bundle with; every read below is
        # one pass of its own that authenticates exactly the bytes it parses.
        try:
            with hq_mod.open_bundle_file(path) as data:
                return await self._import_file(device_id, data)
        except container.BundleError as exc:
            return _bundle_refusal(exc)

    async def _import_file(self, device_id: str, data: BinaryIO) -> Response:
        from yntymak_cli.sync import container
        from yntymak_cli.sync.hq import device_lookup, import_for_receipt

        hq = self.settings.hq
        # Bundles wait on disk for an import slot: at most --workers are read at once.
        async with self.imports:
            named = await run_in_threadpool(_inspect, data)
            if isinstance(named, container.BundleError):
                return _bundle_refusal(named)
            if named != device_id:
                return error(
                    400,
                    "wrong-device",
                    f"the bundle is from device {named}, the request names {device_id}",
                )
            # Only now, with the whole body here and naming this device, one upload per
            # device: an idle connection that merely claims the id holds nothing.
            if not self.locks.acquire(device_id):
                return error(
                    429,
                    "upload-in-progress",
                    f"an upload from device {device_id} is still being handled",
                    retry_after=BUSY_RETRY_AFTER,
                )
            try:
                # The signature, checked against the enrolled key (cheap: nothing is
                # decrypted), before the device's rate counts the bundle: only the device
                # itself can spend its budget. Refusals answer as the import's would.
                header = await self.db(
                    lambda s: container.verify_bundle_signature(data, device_lookup(s))
                )
                wait = self.device_rate.check(device_id, header["bundle_id"])
                if wait:
                    log.warning(
                        "device %s is over --device-rate; told to wait %d s", device_id, wait
                    )
                    return error(
                        429,
                        "too-many-requests",
                        f"device {device_id} sent more than {self.settings.device_rate} bundles "
                        f"this minute: retry in {wait} s",
                        retry_after=wait,
                    )
                result, receipt, _sent = await self.db(lambda s: import_for_receipt(s, hq, data))
            except container.BundleError as exc:
                return _bundle_refusal(exc)
            except InvalidInput as exc:
                return error(400, "invalid", exc.message)
            finally:
                self.locks.release(device_id)
        log.info(
            "bundle %s of device %s: %d new, %d updated, %d unchanged, %d refused%s",
            result.seq,
            device_id,
            result.new,
            result.updated,
            result.unchanged,
            len(result.refused),
            " (replay)" if result.replay else "",
        )
        return Response(receipt, media_type=OCTETS)

    async def get_receipt(self, request: Request) -> Response:
        device_id = request.path_params["device_id"]
        if not DEVICE_ID_RE.fullmatch(device_id):
            return error(400, "invalid", "not a device id")
        refused = self.limited(request)
        if refused is not None:
            return refused

        def find(store: HqDb) -> bytes | None | bool:
            if hq_store.device_by_id(store.conn, device_id) is None:
                return False
            from yntymak_cli.sync.hq import latest_receipt

            return latest_receipt(store, device_id)

        found = await self.db(find)
        if found is False:
            return error(403, "unknown-device", f"device {device_id} is not enrolled at this HQ")
        if not isinstance(found, bytes):
            return error(404, "no-receipt", f"HQ has no receipt for device {device_id}")
        return Response(found, media_type=OCTETS)

    async def get_decisions(self, request: Request) -> Response:
        from yntymak_cli.sync.review import current_decisions_receipt

        device_id = request.path_params["device_id"]
        if not DEVICE_ID_RE.fullmatch(device_id):
            return error(400, "invalid", "not a device id")
        refused = self.limited(request)
        if refused is not None:
            return refused
        hq = self.settings.hq
        try:
            data = await self.db(lambda s: current_decisions_receipt(s, hq, device_id))
        except NotFound:
            return error(403, "unknown-device", f"device {device_id} is not enrolled at this HQ")
        except InvalidInput:
            return error(403, "revoked-device", f"device {device_id} was revoked")
        if data is None:
            return Response(status_code=204)
        return Response(data, media_type=OCTETS)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def page(self, request: Request) -> Response:
        from yntymak_cli.server import page
        from yntymak_cli.sync.hq import status

        lang = page.choose_lang(request.query_params.get("lang"), request.headers)
        headers = page.HEADERS
        token = request.query_params.get("token")
        if not self._from_this_machine(request):
            if token is None or not secrets.compare_digest(
                token.encode("utf-8", "replace"), self.settings.page_token.encode("utf-8")
            ):
                return HTMLResponse(page.forbidden(lang), status_code=403, headers=headers)
        else:
            token = None  # not needed here: links stay short
        data = await self.db(status)
        return HTMLResponse(page.render(data, lang, token), headers=headers)

    def _from_this_machine(self, request: Request) -> bool:
        """A loopback bind, no proxy's header, and a Host naming loopback (and the bound
        port): only then is the page served without its token. nginx's default Host is its
        upstream's address, hence the forwarding headers docs/http-api.md asks it to add."""
        if self.settings.public or any(h in request.headers for h in _PROXY_HEADERS):
            return False
        host, port = _split_host(request.headers.get("host", ""))
        if host not in _LOOPBACK_NAMES:
            return False
        return not self.settings.port or port in (None, self.settings.port)


def _split_host(value: str) -> tuple[str, int | None]:
    """("localhost", 8080) from "LOCALHOST:8080", ("::1", None) from "[::1]"; a port that
    is not a number gives ("", None)."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if not port:
        return host, None
    if not port.isdigit() or len(port) > 5:
        return "", None
    return host, int(port)


def _inspect(data: BinaryIO) -> Any:
    """The device a bundle file's clear header names, or the BundleError that header
    earned (its media section is seeked over, not read). Runs in a worker thread."""
    from yntymak_cli.sync import container

    try:
        return container.inspect_bundle(data)["device_id"]
    except container.BundleError as exc:
        return exc


def _spool_dir(settings: Settings) -> Path:
    if settings.db_path is not None:
        return settings.db_path.parent / spool.SPOOL
    from yntymak_cli.home import home_dir

    return home_dir() / spool.SPOOL


def _server_busy() -> JSONResponse:
    return error(
        429,
        "server-busy",
        "HQ is receiving as much as it takes at once; retry in a moment",
        retry_after=BUSY_RETRY_AFTER,
    )


def _too_large(limit: int) -> JSONResponse:
    return error(413, "too-large", f"the bundle is larger than this server takes ({limit} bytes)")


def _bundle_refusal(exc: Any) -> JSONResponse:
    return error(_REASON_STATUS.get(exc.reason, 400), exc.reason, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not-found", 405: "method-not-allowed"}
    return error(exc.status_code, codes.get(exc.status_code, "invalid"), str(exc.detail))


async def _database_error(request: Request, exc: Exception) -> Response:
    """SQLite stayed locked past its busy timeout: 503, try again. Anything else (a full
    disk, a damaged file) is HQ's problem to fix: 500, said plainly, details in the log."""
    text = str(exc).lower()
    where = f"{request.method} {request.url.path}"
    if "locked" in text or "busy" in text:
        log.warning("database busy on %s: %s", where, exc)
        return error(503, "busy", "HQ's database is busy", retry_after=BUSY_RETRY_AFTER)
    log.error("database error on %s: %s", where, exc)
    if "full" in text:
        return error(500, "internal", "HQ's disk is full: nothing was stored; HQ must free space")
    return error(500, "internal", "HQ's database failed; see HQ's server log")


async def _internal(request: Request, exc: Exception) -> Response:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error(500, "internal", "internal server error; see HQ's server log")


def create_app(settings: Settings) -> Starlette:
    api = _Api(settings)
    routes = [
        Route("/", api.page, methods=["GET"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/api/v1/bundles", api.post_bundle, methods=["POST"]),
        Route("/api/v1/devices/{device_id}/receipt", api.get_receipt, methods=["GET"]),
        Route("/api/v1/devices/{device_id}/decisions", api.get_decisions, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_error,
            sqlite3.OperationalError: _database_error,
            Exception: _internal,
        },
    )
