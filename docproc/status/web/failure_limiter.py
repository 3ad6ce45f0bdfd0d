"""Refuse a client that showed too many wrong tokens, for a while."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("docproc.status_api")

# Addresses remembered at most (the oldest are forgotten first): a flood of addresses
# cannot grow the API's memory without end.
MAX_CLIENTS = 10_000


class FailureLimiter:
    """Count wrong tokens per client address; refuse a client that made too many, for a while.

    In-process and a dozen lines: it counts failed checks, not requests, which is what a
    request limiter (Flask-Limiter) would need a storage backend and per-route hooks for;
    one API process answers a deployment, so there is nothing to share.
    """

    def __init__(self, limit: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._failed: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failed.get(client) or deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, client: str) -> int | None:
        """Return in how many seconds client may try again, or None when it may now."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            if len(times) < self.limit:
                return None
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def failed(self, client: str) -> None:
        """Count one wrong token from client."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            times.append(now)
            self._failed.pop(client, None)
            self._failed[client] = times  # newest last: the oldest entries are dropped first
            while len(self._failed) > MAX_CLIENTS:
                del self._failed[next(iter(self._failed))]
        if len(times) == self.limit:
            log.warning("%d wrong tokens from %s within %g s: its attempts are refused (429) "
                        "for a while", self.limit, client, self.window)

    def succeeded(self, client: str) -> None:
        """Forget client's wrong tokens: it has shown the right one."""
        with self._lock:
            self._failed.pop(client, None)
