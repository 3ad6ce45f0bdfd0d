"""What the blueprints of one app share: settings, ledgers, caches and the token check."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from flask import current_app
from prometheus_client import CollectorRegistry

from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import Settings
from docproc.status.reports import ReportCache
from docproc.status.web.access import Access

EXTENSION = "docproc"


class TimedCache:
    """Keep one computed value for a short time, shared by the server's threads."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._value: Any = None
        self._at = float("-inf")
        self._lock = threading.Lock()

    def get(self, compute: Callable[[], Any]) -> Any:
        """Return the kept value, computing it again when it is older than the time kept."""
        with self._lock:
            if time.monotonic() - self._at > self.seconds:
                self._value = compute()
                self._at = time.monotonic()
            return self._value

    def clear(self) -> None:
        """Forget the kept value: the next get computes it."""
        with self._lock:
            self._at = float("-inf")


@dataclass(frozen=True)
class StatusContext:
    """One status app's settings, its ledger and probe, caches, metrics and access check."""

    settings: Settings
    ledger: RedisLedger
    # The health check's own client: short timeouts, so a hung broker answers fast.
    probe: RedisLedger
    reports: ReportCache
    stats_cache: TimedCache
    collectors: CollectorRegistry
    access: Access


def current() -> StatusContext:
    """Return the context of the app handling the request."""
    return cast(StatusContext, current_app.extensions[EXTENSION])
