"""Whether docproc can take documents now: broker, worker heartbeats, inbox and outbox."""

from __future__ import annotations

import logging
import time
from typing import Any

from redis import RedisError

from docproc.broker import broker_problem
from docproc.holding import Holding
from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import Settings
from docproc.status.timestamps import iso
from docproc.status.watchers import inbox_problem

log = logging.getLogger("docproc.api")


def health_check(settings: Settings, probe: RedisLedger) -> dict[str, Any]:
    """Return the health check's answer: status ok, degraded or unavailable, and why not ok."""
    problem = broker_problem(settings, probe.redis)
    workers: list[str] = []
    status = "unavailable"
    if problem is None:
        workers = online_workers(probe)
        if not workers:
            problem = "no worker sent a heartbeat in the last few seconds"
        else:
            problem = watched_inbox_problem(probe)
    if problem is None and (held := Holding(probe.redis).state()).count:
        status = "degraded"
        problem = (f"the outbox cannot be written since {iso(held.since)}: "
                   f"{held.reason}; {held.count} documents held")
    body: dict[str, Any] = {"status": "ok" if problem is None else status, "workers": workers}
    if problem is not None:
        body["reason"] = problem
    return body


def online_workers(ledger: RedisLedger) -> list[str]:
    """Return the names of the workers whose heartbeat is current (every second, 4 s TTL).

    Read from Redis, not by pinging the workers: a health check answers in milliseconds.
    """
    try:
        nodes = ledger.live_nodes()
    except RedisError as exc:  # the broker went away between the checks
        log.warning("cannot read the workers' heartbeats: %s", exc)
        return []
    return sorted({node.rsplit("/", 1)[0] for node in nodes})


def watched_inbox_problem(ledger: RedisLedger) -> str | None:
    """Return why the watchers cannot see the inbox, as they published it, or None."""
    try:
        published = ledger.published("watcher")
    except RedisError as exc:  # the broker went away between the checks
        return f"cannot read the watchers' state: {exc}"
    return inbox_problem(published.values(), time.time())
