"""The server's limits that need no database: a per-device request rate, one upload at a
time per device. Pure asyncio-free bookkeeping (the event loop is one thread), testable
with a fake clock."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    """At most `per_minute` requests per key in any 60-second window (a sliding log).

    `check(key)` returns 0 when the request may go ahead (and counts it), else the seconds
    until it would be allowed (for Retry-After). Keys seen once and idle for a minute are
    dropped, so spoofed ids cannot grow the table without bound for long.
    """

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    window: float = 60.0
    _log: dict[str, deque[float]] = field(default_factory=dict)
    _last_sweep: float = 0.0

    def check(self, key: str) -> int:
        now = self.clock()
        self._sweep(now)
        log = self._log.setdefault(key, deque())
        while log and log[0] <= now - self.window:
            log.popleft()
        if len(log) >= self.per_minute:
            return max(1, math.ceil(log[0] + self.window - now))
        log.append(now)
        return 0

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self.window:
            return
        self._last_sweep = now
        for key in [k for k, log in self._log.items() if not log or log[-1] <= now - self.window]:
            del self._log[key]


@dataclass
class DeviceLocks:
    """One upload at a time per device: the second is refused, not queued (the laptop
    retries), so a stuck connection cannot pile bodies up in memory."""

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
