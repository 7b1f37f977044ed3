"""Per-client limits of the web app (questions per minute, login lockout), with a clock stepped by hand."""

from __future__ import annotations

import pytest

from webui.limits import LoginGuard, RateLimiter, too_many_requests


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_counts_per_client_in_a_sliding_minute() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    assert limiter.acquire("a") == 0 and limiter.acquire("a") == 0
    clock.now += 10
    assert limiter.acquire("a") == pytest.approx(50.0)  # the first request leaves the window in 50 s
    assert limiter.acquire("b") == 0  # another client is not held up
    clock.now += 50
    assert limiter.acquire("a") == 0
    assert too_many_requests(49.2) == "Trop de demandes : réessayez dans 50 s."
    unlimited = RateLimiter(0, clock=clock)
    assert all(unlimited.acquire("a") == 0 for _ in range(100))


def test_login_guard_locks_out_after_failures_in_a_row() -> None:
    clock = Clock()
    guard = LoginGuard(3, 300, clock=clock)
    guard.failed("a"), guard.failed("a"), guard.succeeded("a"), guard.failed("a"), guard.failed("a")
    assert guard.wait("a") == 0  # a success resets the count
    guard.failed("a")
    assert guard.wait("a") == pytest.approx(300) and guard.wait("b") == 0
    clock.now += 299
    assert guard.wait("a") == pytest.approx(1)
    clock.now += 1
    assert guard.wait("a") == 0
