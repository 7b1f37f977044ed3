"""Per-client limits of the web app: questions per minute, and a lockout after failed logins.

Both are kept in memory, per client key (the client's IP address), behind one lock; the clock is
injectable so that tests step time by hand. A restart forgets them, which is acceptable for a
limit meant to stop one client from taking the workers every user shares.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]

WINDOW_S = 60.0
# Keys are forgotten once they have nothing to remember, and at most this many are kept (oldest dropped).
MAX_CLIENTS = 10_000


def too_many_requests(wait_s: float) -> str:
    return f"Trop de demandes : réessayez dans {max(1, math.ceil(wait_s))} s."


def locked_out(wait_s: float) -> str:
    return (f"Trop de tentatives de connexion échouées : réessayez dans {max(1, math.ceil(wait_s))} s.")


class RateLimiter:
    """At most ``per_minute`` requests per key in any 60-second window (0: no limit)."""

    def __init__(self, per_minute: int, *, clock: Clock = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def acquire(self, key: str) -> float:
        """Count one request of ``key``: 0 when allowed, else the seconds to wait (the request is not counted)."""
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and hits[0] <= now - WINDOW_S:
                hits.popleft()
            self._hits[key] = hits  # re-inserted last: the dict stays ordered by last use
            if len(hits) >= self.per_minute:
                return hits[0] + WINDOW_S - now
            hits.append(now)
            while len(self._hits) > MAX_CLIENTS:
                del self._hits[next(iter(self._hits))]
            return 0.0


class LoginGuard:
    """After ``max_failures`` failed logins in a row, a key is locked out for ``lockout_s`` seconds."""

    def __init__(self, max_failures: int, lockout_s: float, *, clock: Clock = time.monotonic) -> None:
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}

    def wait(self, key: str) -> float:
        """Seconds before ``key`` may try again (0: it may try now)."""
        with self._lock:
            until = self._locked_until.get(key)
            if until is None:
                return 0.0
            left = until - self._clock()
            if left <= 0:
                del self._locked_until[key]
                return 0.0
            return left

    def failed(self, key: str) -> None:
        with self._lock:
            count = self._failures.pop(key, 0) + 1
            if count >= self.max_failures:
                self._locked_until[key] = self._clock() + self.lockout_s
                count = 0
            self._failures[key] = count
            for store in (self._failures, self._locked_until):
                while len(store) > MAX_CLIENTS:
                    del store[next(iter(store))]

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
