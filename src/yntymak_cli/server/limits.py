"""The server's limits that need no database: request rates per client address and in all,
verified bundles per device, one upload at a time per device, a budget of body bytes in
flight. Pure bookkeeping for the event loop (one thread), testable with a fake clock.

Nothing here is keyed by a device id a request merely claims: anyone can name any device,
so such a count would let a stranger lock a laptop out. A device id is only used once a
whole body has arrived whose bundle header names that device (the upload lock), and only
counted once that bundle's signature verified with the device's enrolled key (the
per-device rate): a stranger cannot make such a bundle.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_KEYS = 10_000  # client addresses remembered at most (each a deque of a minute's times)
MAX_DEVICES = 10_000  # devices remembered at most by DeviceRate (each a minute's bundle ids)


@dataclass
class RateLimiter:
    """At most `per_minute` requests per key (client address) and `total` from all keys
    together in any 60-second window (sliding logs).

    `check(key)` returns 0 when the request may go ahead (and counts it), else the seconds
    until it would be allowed (for Retry-After). A refused request is not counted. Keys idle
    for a minute are dropped, and the table never holds more than `max_keys` keys (the
    longest idle go first), so made-up addresses cannot grow it.
    """

    per_minute: int
    total: int = 0  # 0: no cap on all keys together
    clock: Callable[[], float] = time.monotonic
    window: float = 60.0
    max_keys: int = MAX_KEYS
    _log: dict[str, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)
    _last_sweep: float = 0.0

    def check(self, key: str) -> int:
        now = self.clock()
        self._sweep(now)
        log = self._log.get(key)
        if log is not None:
            self._trim(log, now)
            if len(log) >= self.per_minute:
                return self._wait(log, now)
        if self.total:
            self._trim(self._all, now)
            if len(self._all) >= self.total:
                return self._wait(self._all, now)
            self._all.append(now)
        if log is None:
            while len(self._log) >= self.max_keys:
                del self._log[next(iter(self._log))]
            log = self._log[key] = deque()
        else:
            del self._log[key]  # re-inserted last: dict order is least recently used first
            self._log[key] = log
        log.append(now)
        return 0

    def __len__(self) -> int:
        return len(self._log)

    def _trim(self, log: deque[float], now: float) -> None:
        while log and log[0] <= now - self.window:
            log.popleft()

    def _wait(self, log: deque[float], now: float) -> int:
        return max(1, math.ceil(log[0] + self.window - now))

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self.window:
            return
        self._last_sweep = now
        for key in [k for k, log in self._log.items() if not log or log[-1] <= now - self.window]:
            del self._log[key]


@dataclass
class DeviceRate:
    """At most `per_minute` distinct bundles per device in any 60-second window (sliding).

    Only for bundles whose signature verified with the device's enrolled key, so only the
    device can spend its budget; and a bundle_id already counted in the window costs nothing
    again, so a captured genuine bundle replayed many times costs its device one unit.
    `check(device_id, bundle_id)` returns 0 when the bundle may be imported (and counts it),
    else the seconds until it would be (for Retry-After). Devices idle for a minute are
    dropped, and the table never holds more than `max_keys` devices (the longest idle go
    first; forgetting one only lets it send more).
    """

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    window: float = 60.0
    max_keys: int = MAX_DEVICES
    # device id -> bundle id -> when it was first counted; dicts keep insertion order, so
    # the oldest bundle (and the least recently counting device) come first.
    _log: dict[str, dict[str, float]] = field(default_factory=dict)
    _last_sweep: float = 0.0

    def check(self, device_id: str, bundle_id: str) -> int:
        now = self.clock()
        self._sweep(now)
        seen = self._log.get(device_id)
        if seen is None:
            while len(self._log) >= self.max_keys:
                del self._log[next(iter(self._log))]
            seen = self._log[device_id] = {}
        else:
            while seen and next(iter(seen.values())) <= now - self.window:
                del seen[next(iter(seen))]
            if bundle_id in seen:
                return 0  # counted already in this window: a replay costs nothing more
            if len(seen) >= self.per_minute:
                return max(1, math.ceil(next(iter(seen.values())) + self.window - now))
            del self._log[device_id]  # re-inserted last: least recently used first
            self._log[device_id] = seen
        seen[bundle_id] = now
        return 0

    def __len__(self) -> int:
        return len(self._log)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self.window:
            return
        self._last_sweep = now
        cutoff = now - self.window
        # The last bundle of a device is its newest: idle when that one left the window.
        idle = [k for k, seen in self._log.items() if next(reversed(seen.values()), 0) <= cutoff]
        for key in idle:
            del self._log[key]


@dataclass
class DeviceLocks:
    """One upload at a time per device: the second is refused, not queued (the laptop
    retries). Taken only for a body that has fully arrived and whose bundle header names the
    device, so an idle connection claiming a device's id cannot hold it."""

    _busy: set[str] = field(default_factory=set)

    def acquire(self, device_id: str) -> bool:
        if device_id in self._busy:
            return False
        self._busy.add(device_id)
        return True

    def release(self, device_id: str) -> None:
        self._busy.discard(device_id)

    def busy(self, device_id: str) -> bool:
        return device_id in self._busy


@dataclass
class InFlight:
    """A budget of request-body bytes held at once (in the spool, on disk), across all uploads.

    `reserve(n, held)` takes n more bytes for an upload that holds `held` already, if they
    fit or if no other upload holds any (so one bundle as large as the bundle limit always
    gets through, alone); `release(n)` gives bytes back.
    """

    budget: int
    used: int = 0

    def reserve(self, n: int, held: int = 0) -> bool:
        if self.used > held and self.used + n > self.budget:
            return False
        self.used += n
        return True

    def release(self, n: int) -> None:
        self.used = max(0, self.used - n)
