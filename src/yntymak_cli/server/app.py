"""The ASGI app of `yntymak hq serve` (starlette): the API under /api/v1, /healthz and the
status page. See docs/http-api.md for the contract (paths, status codes, error JSON).

Everything that touches the database runs in a worker thread with its own `HqDb` (a
sqlite3 connection belongs to the thread that opened it); writes serialise on SQLite's
`BEGIN IMMEDIATE` and busy timeout, as two `hq import` processes would. The event loop only
reads bodies and keeps the limits (rate, one upload per device, the import cap).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from yntymak_cli.errors import InvalidInput, NotFound
from yntymak_cli.server.limits import DeviceLocks, RateLimiter
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


@dataclass(frozen=True)
class Settings:
    """What `hq serve` was started with. Defaults are the documented ones."""

    db_path: Path | None  # HQ's SQLite file; None: PostgreSQL at db_url
    hq: HqIdentity
    page_token: str  # the status page's ?token= (needed off loopback and through proxies)
    db_url: str | None = None  # HQ on PostgreSQL
    public: bool = False  # bound to an address other than loopback
    max_bundle: int = 0  # bytes; 0: container.MAX_BUNDLE_FILE_SIZE
    upload_timeout: float = 600.0  # seconds for a whole request body
    rate: int = 60  # requests per minute per device
    max_imports: int = 2  # bundles verified and imported at once


def error(status: int, code: str, message: str, retry_after: int | None = None) -> JSONResponse:
    """A refusal: `{"error": CODE, "message": TEXT}` (English; the laptop localizes CODE)."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


class _Api:
    def __init__(self, settings: Settings) -> None:
        from yntymak_cli.sync.container import MAX_BUNDLE_FILE_SIZE

        self.settings = settings
        self.max_bundle = settings.max_bundle or MAX_BUNDLE_FILE_SIZE
        self.rate = RateLimiter(settings.rate)
        self.locks = DeviceLocks()
        self.imports = asyncio.Semaphore(max(1, settings.max_imports))

    # -- helpers ----------------------------------------------------------------------

    def _in_store(self, fn: Callable[[HqDb], T]) -> T:
        with HqDb.at(self.settings.db_path, self.settings.db_url) as store:
            return fn(store)

    async def db(self, fn: Callable[[HqDb], T]) -> T:
        return await run_in_threadpool(self._in_store, fn)

    def limited(self, device_id: str) -> JSONResponse | None:
        wait = self.rate.check(device_id)
        if wait:
            return error(
                429,
                "too-many-requests",
                f"too many requests from device {device_id}: retry in {wait} s",
                retry_after=wait,
            )
        return None

    async def read_body(self, request: Request) -> bytes | JSONResponse:
        """The body, at most max_bundle bytes, within upload_timeout seconds."""
        limit = self.max_bundle
        body = bytearray()

        async def read() -> None:
            async for chunk in request.stream():
                if len(body) + len(chunk) > limit:
                    raise _TooLarge
                body.extend(chunk)

        try:
            await asyncio.wait_for(read(), self.settings.upload_timeout)
        except _TooLarge:
            return _too_large(limit)
        except asyncio.TimeoutError:
            log.warning("upload timed out after %s s", self.settings.upload_timeout)
            return error(
                408,
                "upload-timeout",
                f"the bundle did not arrive within {self.settings.upload_timeout:g} s",
            )
        return bytes(body)

    # -- endpoints ------------------------------------------------------------------------

    async def post_bundle(self, request: Request) -> Response:

        device_id = request.headers.get(DEVICE_HEADER, "")
        if not DEVICE_ID_RE.fullmatch(device_id):
            return error(400, "invalid", f"the {DEVICE_HEADER} header must name a device id")
        refused = self.limited(device_id)
        if refused is not None:
            return refused
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return error(400, "invalid", "bad Content-Length")
            if int(length) > self.max_bundle:
                return _too_large(self.max_bundle)
        # Known before the body is read: an unknown id costs one lookup, not an upload.
        # (A revoked device is told after its signature is checked, as `hq import` does.)
        if not await self.db(lambda s: hq_store.device_by_id(s.conn, device_id) is not None):
            return error(403, "unknown-device", f"device {device_id} is not enrolled at this HQ")
        if not self.locks.acquire(device_id):
            return error(
                429,
                "upload-in-progress",
                f"an upload from device {device_id} is still being handled",
                retry_after=BUSY_RETRY_AFTER,
            )
        try:
            try:
                data = await self.read_body(request)
            except ClientDisconnect:
                log.info("device %s disconnected during its upload", device_id)
                return error(400, "invalid", "the upload was cut off")
            if isinstance(data, Response):
                return data
            return await self._import(device_id, data)
        finally:
            self.locks.release(device_id)

    async def _import(self, device_id: str, data: bytes) -> Response:
        from yntymak_cli.sync import container
        from yntymak_cli.sync.hq import import_for_receipt

        try:
            named = container.inspect_bundle(data)["device_id"]
        except container.BundleError as exc:
            return _bundle_refusal(exc)
        if named != device_id:
            return error(
                400,
                "wrong-device",
                f"the bundle is from device {named}, the request names {device_id}",
            )
        hq = self.settings.hq
        try:
            async with self.imports:
                result, receipt, _sent = await self.db(lambda s: import_for_receipt(s, hq, data))
        except container.BundleError as exc:
            return _bundle_refusal(exc)
        except InvalidInput as exc:
            return error(400, "invalid", exc.message)
        except sqlite3.OperationalError as exc:
            log.warning("database busy during an import from %s: %s", device_id, exc)
            return error(503, "busy", "HQ's database is busy", retry_after=BUSY_RETRY_AFTER)
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
        refused = self.limited(device_id)
        if refused is not None:
            return refused

        def find(store: HqDb) -> bytes | None | bool:
            if hq_store.device_by_id(store.conn, device_id) is None:
                return False
            from yntymak_cli.sync.hq import latest_receipt

            return latest_receipt(store, device_id)

        found = await self.db(find)
        if found is False:
            return error(404, "unknown-device", f"device {device_id} is not enrolled at this HQ")
        if not isinstance(found, bytes):
            return error(404, "no-receipt", f"HQ has no receipt for device {device_id}")
        return Response(found, media_type=OCTETS)

    async def get_decisions(self, request: Request) -> Response:
        from yntymak_cli.sync.review import current_decisions_receipt

        device_id = request.path_params["device_id"]
        if not DEVICE_ID_RE.fullmatch(device_id):
            return error(400, "invalid", "not a device id")
        refused = self.limited(device_id)
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
        if self.settings.public or any(h in request.headers for h in _PROXY_HEADERS):
            if token is None or not secrets.compare_digest(
                token.encode("utf-8", "replace"), self.settings.page_token.encode("utf-8")
            ):
                return HTMLResponse(page.forbidden(lang), status_code=403, headers=headers)
        else:
            token = None  # not needed here: links stay short
        data = await self.db(status)
        return HTMLResponse(page.render(data, lang, token), headers=headers)


class _TooLarge(Exception):
    pass


def _too_large(limit: int) -> JSONResponse:
    return error(413, "too-large", f"the bundle is larger than this server takes ({limit} bytes)")


def _bundle_refusal(exc: Any) -> JSONResponse:
    return error(_REASON_STATUS.get(exc.reason, 400), exc.reason, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not-found", 405: "method-not-allowed"}
    return error(exc.status_code, codes.get(exc.status_code, "invalid"), str(exc.detail))


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
        routes=routes, exception_handlers={HTTPException: _http_error, Exception: _internal}
    )
