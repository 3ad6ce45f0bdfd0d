"""The watchers' counters, waiting files, inbox state and spool size: published, and read back.

Each watcher publishes its own to Redis; the status sums them across watchers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis import RedisError

from docproc.inbox.candidates import WAIT_REASONS
from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import Settings
from docproc.status.timestamps import iso

if TYPE_CHECKING:
    from docproc.watcher import InboxWatcher

# The publisher's warnings kept the logger name of the module it came from.
log = logging.getLogger("docproc.metrics")

# A watcher publishes its counters this often; they expire when it stops.
WATCHER_PUBLISH_SECONDS = 2.0
WATCHER_STATS_TTL = 10.0
# The status shows this many of the files waiting longest for their writer.
WAITING_SHOWN = 20


def spool_size(spool_dir: Path) -> dict[str, int]:
    """Return the files claimed into the spool and not finished yet, and their bytes."""
    files = size = 0
    try:
        with os.scandir(spool_dir) as entries:
            for entry in entries:
                if entry.name.endswith(".data"):
                    files += 1
                    with contextlib.suppress(OSError):
                        size += entry.stat(follow_symlinks=False).st_size
    except OSError:
        pass
    return {"files": files, "bytes": size}


def watcher_view(
    settings: Settings, ledger: RedisLedger, now: float | None = None,
) -> tuple[dict[str, Any], dict[str, int]]:
    """Return the watchers' summed counters and waiting files, and the spool's size."""
    now = time.time() if now is None else now
    published = ledger.published("watcher")
    watcher: dict[str, Any] = {"online": len(published)}
    for name in ("seen", "pending", "claimed", "retrying"):
        watcher[name] = sum(int(stats.get(name, 0)) for stats in published.values())
    watcher["backlog"] = watcher["pending"] + watcher["retrying"]
    watcher["waiting"] = waiting_files(published.values(), now)
    watcher["waiting_by_reason"] = {
        reason: sum(int((stats.get("waiting_by_reason") or {}).get(reason, 0))
                    for stats in published.values())
        for reason in WAIT_REASONS
    }
    watcher["inbox"] = inbox_view(published.values(), now)
    if published:
        # Watchers sharing one spool each report all of it.
        spool = {name: max(int(stats.get(f"spool_{name}", 0)) for stats in published.values())
                 for name in ("files", "bytes")}
    else:
        spool = spool_size(settings.spool_dir)
    return watcher, spool


def inbox_view(published: Iterable[dict[str, Any]], now: float) -> dict[str, Any] | None:
    """Return the inbox as the watchers see it: the one missing longest, else watched."""
    states = [stats["inbox"] for stats in published if isinstance(stats.get("inbox"), dict)]
    if not states:
        return None
    missing = sorted((s for s in states if s.get("state") == "missing"),
                     key=lambda s: float(s.get("since") or now))
    chosen = missing[0] if missing else states[0]
    since = float(chosen.get("since") or now)
    return {"state": chosen.get("state"), "path": chosen.get("path"), "since": iso(since),
            "seconds": round(max(0.0, now - since), 1), "reason": chosen.get("reason")}


def inbox_problem(published: Iterable[dict[str, Any]], now: float) -> str | None:
    """Return why a watcher cannot see files dropped into its inbox, or None."""
    inbox = inbox_view(published, now)
    if inbox is None or inbox["state"] != "missing":
        return None
    return (f"the inbox {inbox['path']} is missing ({inbox['reason']}) since {inbox['since']}: "
            "files dropped there are not seen until it is back")


def waiting_files(published: Iterable[dict[str, Any]], now: float,
                  limit: int = WAITING_SHOWN) -> list[dict[str, Any]]:
    """Return the files longest waiting for their writer across watchers, oldest first."""
    files = sorted((entry for stats in published for entry in stats.get("waiting") or ()),
                   key=lambda entry: float(entry["since"]))[:limit]
    return [{
        "relpath": entry["relpath"], "bytes": int(entry["bytes"]),
        "since": iso(entry["since"]),
        "waiting_seconds": round(max(0.0, now - float(entry["since"])), 1),
        "reason": entry["reason"],
    } for entry in files]


def publish_watcher_stats(
    watcher: InboxWatcher, settings: Settings, stop: threading.Event,
    interval: float = WATCHER_PUBLISH_SECONDS,
) -> threading.Thread:
    """Publish a watcher's counters, waiting files and the spool's size to Redis until stop."""
    from docproc.broker import redis_client
    from docproc.model import printable

    ledger = RedisLedger(redis_client(settings))
    name = f"{socket.gethostname()}/{os.getpid()}"

    def run() -> None:
        failing = False
        spool, spool_due = {"files": 0, "bytes": 0}, 0.0
        while True:
            started = time.monotonic()
            if started >= spool_due:
                spool = spool_size(settings.spool_dir)
                # At a backlog of 100,000 files a scan takes a while: it may use at most a
                # twentieth of the watcher's time, so the spool figures then lag by seconds.
                spool_due = started + max(interval, 20 * (time.monotonic() - started))
            summary = watcher.waiting()
            try:
                ledger.publish("watcher", name, {
                    **watcher.stats(), "spool_files": spool["files"],
                    "spool_bytes": spool["bytes"], "at": time.time(),
                    # Names as the ledger keeps them: undecodable bytes would break the JSON.
                    "waiting": [{**w.to_dict(), "relpath": printable(w.relpath)}
                                for w in summary.oldest],
                    "waiting_by_reason": summary.counts,
                    "inbox": watcher.inbox_state(),
                }, WATCHER_STATS_TTL)
                failing = False
            except RedisError as exc:
                if not failing:
                    log.warning("cannot publish the watcher's counters: %s", exc)
                failing = True
            if stop.wait(interval):
                break

    thread = threading.Thread(target=run, name="docproc-watcher-stats", daemon=True)
    thread.start()
    return thread
