"""Wrong tokens from one address: refused for a while after too many, others unaffected."""

from __future__ import annotations

from docproc.status.web.failure_limiter import FailureLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_too_many_wrong_tokens_are_refused_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    limiter = FailureLimiter(3, 60.0, clock)
    for _ in range(3):
        assert limiter.retry_after("192.0.2.1") is None
        limiter.failed("192.0.2.1")
        clock.now += 10
    assert limiter.retry_after("192.0.2.1") == 30
    assert limiter.retry_after("192.0.2.2") is None
    clock.now += 30
    assert limiter.retry_after("192.0.2.1") is None


def test_the_right_token_forgets_the_wrong_ones() -> None:
    limiter = FailureLimiter(2, 60.0, Clock())
    limiter.failed("192.0.2.1")
    limiter.succeeded("192.0.2.1")
    limiter.failed("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") is None
