"""Slows guessing: failed bearer tokens and logins counted per client address, each minute.

An address with FAILURES_ALLOWED failures within the current minute is answered 429 (with
Retry-After) on every request that offers a credential, until the minute ends. The counts
live in this process: one `stickerq api` process guards itself, and N processes behind one
proxy allow N times as many guesses, which still makes a 16-character token unguessable.
At most MAX_ADDRESSES are tracked; a flood of new addresses forgets the oldest first, so
the table never grows past a few megabytes.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from prometheus_client import Counter

FAILURES_ALLOWED = 10
WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 20_000

AUTH_FAILURES = Counter(
    "stickerq_api_auth_failures",
    "Requests to the HTTP API with a wrong bearer token or dashboard login",
    ["kind"],
)
THROTTLED = Counter(
    "stickerq_api_throttled",
    "Requests answered 429 because their address failed to authenticate too often",
)


class FailureThrottle:
    """Failures per client address in fixed windows; thread-safe (logins run in threads)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try again, or None when it may try now."""
        with self._lock:
            window = self._windows.get(address)
            if window is None:
                return None
            started, failures = window
            left = started + WINDOW_SECONDS - self._clock()
            if left <= 0:
                del self._windows[address]
                return None
        if failures < FAILURES_ALLOWED:
            return None
        THROTTLED.inc()
        return max(1, math.ceil(left))

    def failed(self, address: str, kind: str) -> None:
        """Count one failed bearer token or login (`kind`) from `address`."""
        AUTH_FAILURES.labels(kind).inc()
        now = self._clock()
        with self._lock:
            started, failures = self._windows.pop(address, (now, 0))
            if now - started >= WINDOW_SECONDS:
                started, failures = now, 0
            self._windows[address] = (started, failures + 1)
            while len(self._windows) > MAX_ADDRESSES:
                self._windows.popitem(last=False)
