"""Every number of the status page and `docproc status`, in one snapshot."""

from __future__ import annotations

import time
from typing import Any

from docproc.holding import Holding
from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import Settings
from docproc.status.queues import queue_depths
from docproc.status.timestamps import iso
from docproc.status.timings import CHART_MINUTES, throughput, timings
from docproc.status.watchers import watcher_view


def workers(ledger: RedisLedger) -> list[dict[str, Any]]:
    """Return the worker nodes beating now and how many documents each holds."""
    return [{"name": node.rsplit("/", 1)[0], "node": node, "holding": len(held)}
            for node, held in sorted(ledger.live_nodes().items())]


def collect(settings: Settings, ledger: RedisLedger, now: float | None = None) -> dict[str, Any]:
    """Return every number of the status page and `docproc status`."""
    now = time.time() if now is None else now
    minutes = ledger.minutes(CHART_MINUTES + 1, now)
    watcher, spool = watcher_view(settings, ledger, now)
    oldest = ledger.oldest_active()
    held = Holding(ledger.redis).state()
    ocr_pages, ocr_rate = ledger.ocr_pages()
    return {
        "generated_at": iso(now),
        "counts": ledger.state_counts(),
        "throughput": throughput(minutes, now),
        "stages": timings(ledger, minutes),
        "queues": queue_depths(settings, ledger),
        "ocr": {"pages": ocr_pages, "pages_per_minute": round(ocr_rate, 1)},
        "workers": workers(ledger),
        "watcher": watcher,
        "spool": spool,
        "held": {"count": held.count, "since": iso(held.since), "reason": held.reason},
        "oldest_unfinished": None if oldest is None else {
            "key": oldest[0], "received_at": iso(oldest[1]),
            "age_seconds": round(max(0.0, now - oldest[1]), 1),
        },
    }
