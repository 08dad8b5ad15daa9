"""`yntymak sync`: the same signed, encrypted bundles, sent to HQ over HTTP (docs/http-api.md).

HTTP is only transport: a bundle is exactly the file `bundle create` writes, HQ answers with
exactly the receipt `hq import` writes, and the laptop applies it as `bundle ack` does. So
nothing is trusted because it came over HTTPS, and nothing is lost when a connection drops:

- Bundles are written to HOME/outbox and recorded before they travel. One HQ has not
  acknowledged is uploaded again on the next run; HQ answers a replayed bundle with the same
  receipt, so a receipt lost on the way (connection dropped after the upload) comes back.
- Network errors, 5xx, 408 and 429 are retried with exponential backoff and full jitter,
  until a deadline; a refusal (any other 4xx) stops at once.
- A response is hostile input: its body is read up to a cap, its text printed plain.

httpx is imported here, and this module only by the `sync` command (`yntymak --help` stays
light). It honours HTTPS_PROXY/HTTP_PROXY/NO_PROXY and verifies TLS (`ca`: HQ's own CA).
"""

from __future__ import annotations

import ipaddress
import json
import random
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from yntymak_cli import __version__
from yntymak_cli.errors import InvalidInput, YntymakError
from yntymak_cli.files import sha256_file
from yntymak_cli.i18n import current_lang, t
from yntymak_cli.plain import plain
from yntymak_cli.store import device_sync
from yntymak_cli.store.db import Store
from yntymak_cli.store.device_sync import SentBundle
from yntymak_cli.store.reviews import Decision
from yntymak_cli.sync import container
from yntymak_cli.sync.bundle import AckResult, ack_receipt, create_bundle
from yntymak_cli.sync.keys import DeviceIdentity, HqPublic
from yntymak_cli.sync.reasons import localize
from yntymak_cli.sync.split import NothingFits

API = "/api/v1"
OUTBOX = "outbox"  # HOME/outbox: the bundles `sync` wrote, kept until HQ acknowledges them
DEFAULT_TIMEOUT = 300.0  # seconds without an answer from HQ before `sync` gives up
BACKOFF_BASE = 0.5  # seconds: the first retry waits up to this long
BACKOFF_CAP = 30.0  # the longest wait between two attempts (Retry-After aside)
CHUNK = 256 * 1024  # upload and read size: progress moves, memory stays flat
# The longest one socket operation may wait. The deadline is checked before each, so a
# server that trickles a byte at a time cannot keep `sync` beyond --timeout.
READ_TIMEOUT = 10.0
# The largest receipt there can be: magic, the receipt and the decisions section at their
# limits (tag and length each), the signature. A longer answer is not a receipt: not read.
MAX_RECEIPT_BODY = (
    4 + 5 + container.MAX_RECEIPT_SIZE + 5 + container.MAX_DECISIONS_SIZE + container.SIGNATURE_SIZE
)
MAX_ERROR_BODY = 64 * 1024  # {"error": CODE, "message": TEXT}: a few hundred bytes
MAX_MESSAGE = 500  # characters of HQ's message shown
USER_AGENT = f"yntymak/{__version__}"

# (file name, bytes sent, bytes in all): called as an upload goes.
Progress = Callable[[str, int, int], None]

# HQ's error codes (the bundle reason codes, container.REASONS) in the laptop's words.
_REASON_KEYS = {
    "unknown-device": "http_reason_unknown_device",
    "revoked-device": "http_reason_revoked_device",
    "bad-signature": "http_reason_bad_signature",
    "wrong-hq": "http_reason_wrong_hq",
    "too-large": "http_reason_too_large",
    "unsupported-version": "http_reason_unsupported_version",
    "corrupted": "http_reason_damaged",
    "truncated": "http_reason_damaged",
    "not-a-bundle": "http_reason_damaged",
    "unexpected-member": "http_reason_damaged",
}


class HqUnreachable(YntymakError):
    """HQ did not answer in time (network, 5xx, 429): nothing is lost, run sync again."""


class HqRefused(InvalidInput):
    """HQ refused a request (a 4xx other than 408 and 429). `code` is HQ's error code."""

    def __init__(self, message: str, status: int, code: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class SyncResult:
    url: str
    sent: tuple[int, ...]  # the seq of each bundle uploaded, in order
    created: int | None  # the seq of the bundle made by this run, if any
    acks: tuple[AckResult, ...]  # every receipt applied, in order (decisions last)
    # HQ's decisions this laptop did not hold before this run, each once. HQ sends the
    # newest decision of every submission with each answer (that heals a lost receipt), so
    # the receipts' own lists repeat what earlier runs brought.
    decisions: tuple[Decision, ...] = ()
    # Outbox bundles not sent: addressed to another HQ than the one trusted now (after
    # `keys trust-hq --replace`). Left in place; their records went in a new bundle.
    skipped: tuple[Path, ...] = ()
    # Submissions no bundle can hold (sync/split.py), worded: left out, still pending.
    too_large: tuple[str, ...] = ()

    @property
    def acknowledged(self) -> int:
        return sum(a.acknowledged for a in self.acks)

    @property
    def voids(self) -> int:
        return sum(a.voids for a in self.acks)

    @property
    def refused(self) -> tuple[tuple[str, int, str], ...]:
        return tuple(r for a in self.acks for r in a.refused)

    @property
    def decisions_waiting(self) -> int:
        return self.acks[-1].decisions_waiting if self.acks else 0


def outbox_dir(home: Path) -> Path:
    return Path(home) / OUTBOX


def is_insecure(url: str) -> bool:
    """Plain http:// to a host other than this machine: readable and alterable on the way.
    (Bundles are encrypted and signed, receipts signed, so that costs privacy of metadata
    only; the CLI warns.)"""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def sync_with_hq(
    store: Store,
    device: DeviceIdentity,
    hq_public: HqPublic,
    url: str,
    *,
    outbox: Path,
    timeout: float = DEFAULT_TIMEOUT,
    ca: Path | None = None,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_size: int | None = None,
) -> SyncResult:
    """Upload every unacknowledged bundle of `outbox` (oldest first), then one new bundle of
    whatever is still unsent; apply each receipt at once; then fetch HQ's decisions.

    `timeout`: seconds one request may take, retries included, before HqUnreachable (what
    was acknowledged until then stays acknowledged). A refusal raises HqRefused.
    """
    outbox = Path(outbox)
    acks: list[AckResult] = []
    new: dict[int, Decision] = {}
    sent: list[int] = []
    created_seq: int | None = None
    too_large: tuple[str, ...] = ()
    waiting = _unacknowledged(store, outbox)
    # A bundle sealed to a previous HQ cannot be read by this one and would be refused
    # forever; its records are unacknowledged, so create_bundle below packs them anew.
    skipped = tuple(p for b, p in waiting if b.hq_fingerprint != hq_public.fingerprint)
    with _Hq(url, device.device_id, timeout=timeout, ca=ca, sleep=sleep) as hq:
        for bundle, path in waiting:
            if bundle.hq_fingerprint != hq_public.fingerprint:
                continue
            acks.append(_upload(store, device, hq_public, hq, bundle, path, progress, new))
            sent.append(bundle.seq)
        # What is still unsent (new data, or data of a bundle lost elsewhere) goes now;
        # create_bundle makes nothing when pending_records() is empty. A run killed after
        # recording a bundle leaves that bundle to finish first: then once more.
        for _ in range(2):
            try:
                created = create_bundle(store, device, hq_public, outbox, max_size=max_size)
            except NothingFits as exc:  # said, and the decisions are still fetched
                too_large = (exc.left_out,)
                break
            if created is None:
                break
            created_seq, too_large = created.seq, created.too_large
            made = device_sync.bundle_by_id(store, created.bundle_id)
            assert made is not None
            acks.append(_upload(store, device, hq_public, hq, made, created.path, progress, new))
            sent.append(made.seq)
            if not created.resumed:
                break
        status, data = hq.request("GET", f"{API}/devices/{device.device_id}/decisions")
        if status == 200 and data:
            acks.append(_apply(store, device, hq_public, data, new))
    return SyncResult(
        url=url,
        sent=tuple(sent),
        created=created_seq,
        acks=tuple(acks),
        decisions=tuple(new.values()),
        skipped=skipped,
        too_large=too_large,
    )


def _apply(
    store: Store,
    device: DeviceIdentity,
    hq_public: HqPublic,
    data: bytes,
    new: dict[int, Decision],
) -> AckResult:
    """Apply a receipt as `bundle ack` does; add the decisions it brought first to `new`."""
    result = ack_receipt(store, device, hq_public, data)
    for d in result.received:
        new.setdefault(d.decision_id, d)
    return result


def _upload(
    store: Store,
    device: DeviceIdentity,
    hq_public: HqPublic,
    hq: _Hq,
    bundle: SentBundle,
    path: Path,
    progress: Progress | None,
    new: dict[int, Decision],
) -> AckResult:
    """POST one bundle, apply HQ's receipt, and drop the file once it is acknowledged (the
    database can make it again; HQ holds its content)."""
    status, data = hq.request(
        "POST", f"{API}/bundles", body=path, progress=progress, seq=bundle.seq
    )
    if status != 200 or not data:
        raise HqRefused(
            t("http_no_receipt", current_lang(), url=plain(hq.url), seq=bundle.seq),
            status,
            None,
        )
    result = _apply(store, device, hq_public, data, new)
    if result.seq != bundle.seq:
        # Signed by HQ, so applied; but this bundle stays unacknowledged and goes again.
        raise HqRefused(
            t(
                "http_other_receipt",
                current_lang(),
                url=plain(hq.url),
                seq=bundle.seq,
                got=result.seq if result.seq is not None else "-",
            ),
            status,
            None,
        )
    done = device_sync.bundle_by_id(store, bundle.bundle_id)
    if done is not None and done.acked_at is not None:
        path.unlink(missing_ok=True)
    return result


# -- the outbox ----------------------------------------------------------------------------


def _unacknowledged(store: Store, outbox: Path) -> list[tuple[SentBundle, Path]]:
    """The bundles in `outbox` this laptop recorded and HQ has not acknowledged, oldest
    first. A file the database does not know, or whose bytes are not the recorded ones, is
    left alone; one HQ acknowledged is removed."""
    found: list[tuple[SentBundle, Path]] = []
    if not outbox.is_dir():
        return found
    for path in sorted(outbox.glob(f"*{container.BUNDLE_SUFFIX}")):
        if path.is_symlink() or not path.is_file():
            continue
        bundle_id = _bundle_id(path)
        bundle = device_sync.bundle_by_id(store, bundle_id) if bundle_id else None
        if bundle is None or bundle.file_name != path.name or sha256_file(path) != bundle.file_hash:
            continue
        if bundle.acked_at is not None:
            path.unlink(missing_ok=True)
            continue
        found.append((bundle, path))
    return sorted(found, key=lambda item: item[0].seq)


def _bundle_id(path: Path) -> str | None:
    """The bundle id in a bundle file's clear header, read from its first bytes (only a
    lookup key: the file's hash must still match what the database recorded)."""
    try:
        with path.open("rb") as f:
            head = f.read(9)
            if len(head) != 9 or head[:4] not in (
                container.BUNDLE_MAGIC,
                container.BUNDLE_MAGIC_V1,
            ):
                return None
            if head[4] != container.TAG_HEADER:
                return None
            size = int.from_bytes(head[5:9], "big")
            if size > container.MAX_HEADER_SIZE:
                return None
            doc = json.loads(f.read(size).decode("utf-8"))
    except (OSError, ValueError):
        return None
    value = doc.get("bundle_id") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


# -- HTTP ----------------------------------------------------------------------------------


class _Deadline(Exception):
    """The request's time ran out while a body was still moving."""


class _Hq:
    """One HQ: requests with retries, backoff and a deadline; refusals as HqRefused."""

    def __init__(
        self,
        url: str,
        device_id: str,
        *,
        timeout: float,
        ca: Path | None,
        sleep: Callable[[float], None],
    ) -> None:
        self.url = url.rstrip("/")
        self.device_id = device_id
        self.timeout = max(float(timeout), 0.1)
        self.sleep = sleep
        self.deadline = time.monotonic() + self.timeout  # of the request under way
        self.client = httpx.Client(
            verify=_verify(ca),
            trust_env=True,  # HTTPS_PROXY, HTTP_PROXY, NO_PROXY
            follow_redirects=False,  # a POST is never replayed somewhere else
            headers={"User-Agent": USER_AGENT, "X-Yntymak-Device": device_id},
        )
        _watch_deadline(self.client, lambda: self.deadline)

    def __enter__(self) -> _Hq:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Path | None = None,
        progress: Progress | None = None,
        seq: int | None = None,
    ) -> tuple[int, bytes]:
        """(status, body) of a 2xx answer, retrying what may pass on a second try."""
        lang = current_lang()
        deadline = self.deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            wait = 0.0
            try:
                status, headers, data = self._once(method, path, body, progress, deadline)
            except httpx.ConnectError as exc:
                if _tls_failure(exc):
                    raise YntymakError(
                        t("http_tls_failed", lang, url=plain(self.url), error=plain(exc))
                    ) from None
                detail = t("http_detail_connect", lang)
            except (httpx.TimeoutException, _Deadline):
                detail = t("http_detail_timeout", lang)
            except httpx.TransportError:
                detail = t("http_detail_dropped", lang)
            else:
                if 200 <= status < 300:
                    return status, data
                if status not in (408, 429) and status < 500:
                    raise self._refusal(status, data, seq, lang)
                detail = t("http_detail_status", lang, status=status)
                wait = _retry_after(headers.get("retry-after"))
            attempt += 1
            # Full jitter: waiting laptops spread out instead of knocking again together.
            delay = max(wait, random.uniform(0, _backoff(attempt)))
            if time.monotonic() + delay >= deadline:
                raise HqUnreachable(
                    t(
                        "http_gave_up",
                        lang,
                        url=plain(self.url),
                        seconds=f"{self.timeout:g}",
                        detail=detail,
                    )
                )
            self.sleep(delay)

    def _once(
        self,
        method: str,
        path: str,
        body: Path | None,
        progress: Progress | None,
        deadline: float,
    ) -> tuple[int, httpx.Headers, bytes]:
        # Per socket operation; the whole request is bound by `deadline` (_DeadlineStream).
        left = min(max(deadline - time.monotonic(), 0.05), READ_TIMEOUT)
        timeout = httpx.Timeout(left)
        headers = {}
        content: Iterator[bytes] | None = None
        if body is not None:
            size = body.stat().st_size
            # A known length: HQ can refuse an oversized bundle before reading it.
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            # Sent from the file a piece at a time, never read whole; a retry comes back
            # here and opens the file again.
            content = _chunks(body, size, deadline, progress)
            # HQ answers once it has checked and imported the bundle, which takes a while
            # for one of many photos: that answer is waited for as long as the deadline
            # allows, since giving up after READ_TIMEOUT would send the whole bundle again.
            timeout = httpx.Timeout(left, read=max(deadline - time.monotonic(), 0.05))
        request = self.client.build_request(
            method, self.url + path, content=content, headers=headers, timeout=timeout
        )
        response = self.client.send(request, stream=True)
        try:
            status = response.status_code
            limit = MAX_RECEIPT_BODY if 200 <= status < 300 else MAX_ERROR_BODY
            data = _read(response, limit, deadline, strict=200 <= status < 300, url=self.url)
        finally:
            response.close()
        return status, response.headers, data

    def _refusal(self, status: int, data: bytes, seq: int | None, lang: str) -> HqRefused:
        code, message = _error_body(data)
        key = _REASON_KEYS.get(code or "")
        if key is None and code is None and status == 413:
            key = "http_reason_too_large"  # a proxy's own page, without HQ's JSON
        if key is not None:
            reason = t(key, lang, device=self.device_id)
        elif code is None and status == 404:
            reason = t("http_reason_not_found", lang, url=plain(self.url))
        else:
            shown = plain(localize(message, lang)) if message else ""
            reason = t("http_reason_other", lang, status=status, code=plain(code or "-"))
            if shown:
                reason += f": {shown}"
        if seq is not None:
            text = t("http_refused_bundle", lang, url=plain(self.url), seq=seq, reason=reason)
        else:
            text = t("http_refused", lang, url=plain(self.url), reason=reason)
        return HqRefused(text, status, code)


def _backoff(attempt: int) -> float:
    """The longest wait before attempt `attempt + 1` (full jitter picks below it)."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt, 32))


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake waits no longer than the
    request's deadline allows, and fails once it has passed: httpx's timeouts are per
    operation, so a server sending its headers or body a byte at a time would otherwise
    keep a request going for hours."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: Callable[[], float]) -> None:
        self._stream = stream
        self._deadline = deadline

    def _left(self, timeout: float | None) -> float:
        left = self._deadline() - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the request's deadline passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, self._left(timeout))
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend, deadline: Callable[[], float]) -> None:
        self._backend = backend
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline() - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the request's deadline passed")
        timeout = left if timeout is None else min(timeout, left)
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - sync speaks TCP only
        stream = self._backend.connect_unix_socket(path, timeout, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:  # pragma: no cover - used for retries we skip
        self._backend.sleep(seconds)


def _watch_deadline(client: httpx.Client, deadline: Callable[[], float]) -> None:
    """Put _DeadlineBackend under every connection pool of `client` (the direct one and
    those of proxies from the environment). httpx has no public hook for the network
    backend, so this reaches into httpcore's pools; tests/test_http_sync.py proves it
    works (a server trickling its answer), and without it the per-read timeouts and the
    checks between body pieces still bound a request, only more loosely."""
    transports = [client._transport, *client._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend):
            pool._network_backend = _DeadlineBackend(backend, deadline)  # type: ignore[union-attr]


def _verify(ca: Path | None) -> ssl.SSLContext | bool:
    if ca is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        error = getattr(exc, "strerror", None) or exc
        raise InvalidInput(
            t("http_bad_ca", current_lang(), path=plain(ca), error=plain(error))
        ) from None


def _tls_failure(exc: BaseException) -> bool:
    """A certificate HQ's name or our CAs do not vouch for: retrying cannot help."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _chunks(path: Path, size: int, deadline: float, progress: Progress | None) -> Iterator[bytes]:
    done = 0
    if progress is not None:
        progress(path.name, 0, size)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if time.monotonic() > deadline:
                raise _Deadline
            yield chunk
            done += len(chunk)
            if progress is not None:
                progress(path.name, done, size)


def _read(
    response: httpx.Response, limit: int, deadline: float, *, strict: bool, url: str
) -> bytes:
    """At most `limit` bytes of the body. Beyond it: an error when `strict` (an answer that
    cannot be a receipt), else the rest is not read (an error page's start is enough)."""
    declared = response.headers.get("content-length", "")
    if strict and declared.isdigit() and int(declared) > limit:
        raise _too_long(url, limit)
    out = bytearray()
    for chunk in response.iter_bytes():  # as each read brings it: the deadline is checked
        if time.monotonic() > deadline:
            raise _Deadline
        out += chunk
        if len(out) > limit:
            if strict:
                raise _too_long(url, limit)
            return bytes(out[:limit])
    return bytes(out)


def _too_long(url: str, limit: int) -> YntymakError:
    return InvalidInput(t("http_answer_too_long", current_lang(), url=plain(url), limit=limit))


def _error_body(data: bytes) -> tuple[str | None, str | None]:
    """HQ's {"error": CODE, "message": TEXT}; (None, None) for anything else."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    code, message = doc.get("error"), doc.get("message")
    code = code[:100] if isinstance(code, str) and code else None
    message = message[:MAX_MESSAGE] if isinstance(message, str) and message else None
    return code, message


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (a number or an HTTP date); 0 when absent or odd."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return min(float(value), 24 * 3600.0)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if when is None or when.tzinfo is None:
        return 0.0
    return max(0.0, min(when.timestamp() - time.time(), 24 * 3600.0))
