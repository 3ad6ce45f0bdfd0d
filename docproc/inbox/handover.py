"""Hand claimed files to their receiver, retrying with backoff when it fails."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from docproc.inbox.spool import Claimed

# The watcher's logger: a failed handover is part of what it says about a claim.
log = logging.getLogger("docproc.watcher")

RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0


class Handover:
    """Call on_claimed for each claim; keep those it failed on for a later attempt."""

    def __init__(
        self, on_claimed: Callable[[Claimed], None],
        on_batch_end: Callable[[], None] | None = None,
    ) -> None:
        self._on_claimed = on_claimed
        # Called whenever claiming pauses, so that a receiver may gather claims into batches.
        self._on_batch_end = on_batch_end
        self._retries: list[tuple[float, int, int, Claimed]] = []
        self._retry_seq = itertools.count()

    def __len__(self) -> int:
        """Return how many claims wait for another attempt."""
        return len(self._retries)

    def next_due(self) -> float:
        """Return the monotonic time of the next retry (inf when none waits)."""
        return self._retries[0][0] if self._retries else float("inf")

    def retry_due(self, now: float, stop: threading.Event) -> None:
        """Attempt again every claim whose retry is due, until stop is set."""
        while self._retries and self._retries[0][0] <= now and not stop.is_set():
            _, _, attempt, claimed = heapq.heappop(self._retries)
            self.deliver(claimed, attempt)

    def deliver(self, claimed: Claimed, attempt: int = 0) -> None:
        """Call on_claimed; on failure keep the claim for a later attempt."""
        try:
            self._on_claimed(claimed)
        except Exception:
            delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2**attempt)
            log.exception(
                "handing over %s (%s) failed; trying again in %.1f s",
                claimed.relpath, claimed.token, delay,
            )
            heapq.heappush(
                self._retries,
                (time.monotonic() + delay, next(self._retry_seq), attempt + 1, claimed),
            )

    def batch_end(self) -> bool:
        """Tell on_batch_end that claiming paused; return False when it failed."""
        if self._on_batch_end is None:
            return True
        try:
            self._on_batch_end()
        except Exception:
            log.exception("handing over the claimed batch failed; trying again shortly")
            return False
        return True
