"""What operators see: counts, throughput, timings, queues, workers and documents, as plain data.

The status API, its page, `/metrics` and `docproc status` all show these same numbers.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from kombu import Connection

from docproc import queues
from docproc.holding import Holding
from docproc.inbox.candidates import WAIT_REASONS
from docproc.ledger import DURATION_BUCKETS, TERMINAL, Ledger
from docproc.settings import Settings, as_redis_url

log = logging.getLogger("docproc.stats")

QUEUES = queues.ALL
STAGES = ("detect", "extract", "analyze", "thumbnail")
END_STATES = ("done", "failed", "duplicate")
# kombu's Redis transport keeps a queue's prioritised messages in lists named queue + sep + step.
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)
CHART_MINUTES = 60
# A watcher publishes its counters this often; they expire when it stops.
WATCHER_PUBLISH_SECONDS = 2.0
WATCHER_STATS_TTL = 10.0
# The status shows this many of the files waiting longest for their writer.
WAITING_SHOWN = 20


def iso(timestamp: float | str | None) -> str | None:
    """Return a Unix time as ISO 8601 UTC with a Z, to the second."""
    if not timestamp:
        return None
    return datetime.fromtimestamp(float(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_since(text: str) -> float:
    """Return the Unix time of `since`: seconds since the epoch, or an ISO 8601 date or time."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"not a time: {text!r}")
        return seconds
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# Reading documents' outputs, only ever inside the outbox.

def inside_outbox(settings: Settings, path: Path) -> Path | None:
    """Return the real path of path when it lies inside the outbox, else None."""
    root = settings.outbox.resolve()
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    return real if real.is_relative_to(root) and real != root else None


def output_file(settings: Settings, record: dict[str, Any], name: str) -> Path | None:
    """Return one of a finished document's output files, if it exists inside the outbox."""
    outdir = record.get("outdir")
    if not outdir:
        return None
    real = inside_outbox(settings, Path(outdir) / name)
    return real if real is not None and real.is_file() else None


class ReportCache:
    """Read report.json files once: a written report never changes."""

    def __init__(self, settings: Settings, size: int = 4096) -> None:
        self.settings = settings
        self.size = size
        self._reports: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Return the report of a finished document, or None when there is none to read."""
        outdir = record.get("outdir")
        if not outdir or record.get("status") not in TERMINAL:
            return None
        with self._lock:
            if outdir in self._reports:
                self._reports.move_to_end(outdir)
                return self._reports[outdir]
        path = output_file(self.settings, record, "report.json")
        if path is None:
            return None
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s: %s", path, exc)
            return None
        if not isinstance(report, dict):
            return None
        with self._lock:
            self._reports[outdir] = report
            while len(self._reports) > self.size:
                self._reports.popitem(last=False)
        return report


# Documents.

def summary(record: dict[str, Any], report: dict[str, Any] | None) -> dict[str, Any]:
    """Return what a listing shows of one document."""
    report = report or {}
    kind = (report.get("type") or {}).get("kind")
    error = report.get("error")
    if error is None and record.get("error_type"):
        error = {"stage": None, "type": record["error_type"], "message": None}
    return {
        "key": record["key"],
        "id": record.get("id"),
        "name": record.get("name"),
        "relpath": record.get("relpath"),
        "bytes": record.get("bytes"),
        "status": record.get("status"),
        "stage": record.get("stage"),
        "worker": record.get("worker") or None,
        "retries": int(record.get("retries") or 0) + int(record.get("recoveries") or 0),
        "kind": kind,
        "pages": report.get("pages"),
        "received_at": record.get("received_at"),
        "finished_at": iso(record.get("finished_ts")),
        "duplicate_of": record.get("duplicate_of") or None,
        "error_type": record.get("error_type") or None,
        "error": error,
        "has_thumbnail": bool(report.get("thumbnail")),
        "has_text": bool(report.get("text")),
    }


def progress(record: dict[str, Any], report: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Return each stage's state and times: done, running, failed, skipped or waiting."""
    times: dict[str, dict[str, float]] = record.get("stages") or {}
    report = report or {}
    failed_in = (report.get("error") or {}).get("stage")
    # The report's timings are finer than the ledger's millisecond timestamps.
    measured: dict[str, float] = report.get("timings_ms") or {}
    status, current = record.get("status"), record.get("stage")
    steps = []
    for stage in STAGES:
        started, ended = times.get(stage, {}).get("started"), times.get(stage, {}).get("ended")
        if stage == failed_in:
            state = "failed"
        elif started and ended:
            state = "done"
        elif started and status == "running" and current == stage:
            state = "running"
        elif started:
            state = "failed" if status == "failed" else "interrupted"
        elif status in ("done", "duplicate", "failed", "retried"):
            state = "skipped"
        else:
            state = "waiting"
        steps.append({
            "stage": stage, "state": state, "started_at": iso(started), "ended_at": iso(ended),
            "duration_ms": measured.get(stage, round((ended - started) * 1000, 1))
            if started and ended else None,
        })
    return steps


def detail(ledger: Ledger, reports: ReportCache, record: dict[str, Any]) -> dict[str, Any]:
    """Return everything about one document: its summary, progress and report."""
    report = reports.get(record)
    body = summary(record, report)
    key = record["key"]
    body.update(
        sha256=record.get("sha256"),
        recoveries=int(record.get("recoveries") or 0),
        progress=progress(record, report),
        report=report,
        retried_at=iso(record.get("retried_ts")),
        retried_as=ledger.retried_as(record) if record.get("status") == "retried" else None,
        links={
            "self": f"/api/documents/{key}",
            "text": f"/api/documents/{key}/text" if body["has_text"] else None,
            "thumbnail": f"/api/documents/{key}/thumbnail" if body["has_thumbnail"] else None,
            "retry": f"/api/documents/{key}/retry" if record.get("status") == "failed" else None,
        },
    )
    return body


def failures(ledger: Ledger, reports: ReportCache, limit: int = 10) -> list[dict[str, Any]]:
    """Return the newest failed documents (not yet retried) with their reasons."""
    records, _ = ledger.page(statuses={"failed"}, limit=limit)
    return [summary(record, reports.get(record)) for record in records]


# Numbers.

def quantile(q: float, buckets: list[int]) -> float | None:
    """Estimate a quantile (seconds) from histogram bucket counts, as Prometheus does."""
    total = sum(buckets)
    if total == 0:
        return None
    rank, seen, lower = q * total, 0, 0.0
    for count, upper in zip(buckets, (*DURATION_BUCKETS, float("inf")), strict=True):
        if count and seen + count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        lower = upper
    return lower


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def timings(ledger: Ledger, minutes: list[tuple[int, dict[str, float]]]) -> dict[str, Any]:
    """Return per-stage timings: count, mean, p50 and p95 ever, and the mean of the last 15 min."""
    durations = ledger.durations()
    recent = minutes[-15:]
    found: dict[str, Any] = {}
    for name in (*STAGES, "wait", "total"):
        metric = "document" if name == "total" else name if name == "wait" else f"stage:{name}"
        buckets, total, count = durations.get(metric, ([0] * (len(DURATION_BUCKETS) + 1), 0.0, 0))
        entry: dict[str, Any] = {
            "count": count,
            "mean_ms": _ms(total / count) if count else None,
            "p50_ms": _ms(quantile(0.5, buckets)),
            "p95_ms": _ms(quantile(0.95, buckets)),
        }
        if name in STAGES:
            n = sum(minute.get(f"{name}:n", 0) for _, minute in recent)
            seconds = sum(minute.get(f"{name}:sum", 0) for _, minute in recent)
            entry["last_15m_mean_ms"] = _ms(seconds / n) if n else None
        found[name] = entry
    return found


def throughput(minutes: list[tuple[int, dict[str, float]]], now: float) -> dict[str, Any]:
    """Return documents finished in the last 1, 5 and 15 minutes and per minute for the chart."""
    def within(window: float) -> int:
        start, total = now - window, 0.0
        for minute, counts in minutes:
            finished = sum(counts.get(state, 0) for state in END_STATES)
            elapsed = min(minute + 60, now) - minute
            if not finished or elapsed <= 0:
                continue
            overlap = min(minute + 60, now) - max(minute, start)
            # A minute the window only partly covers counts in proportion.
            total += finished * max(0.0, min(1.0, overlap / elapsed))
        return round(total)

    return {
        "last_1m": within(60), "last_5m": within(300), "last_15m": within(900),
        "per_minute": [
            {"minute": iso(minute), **{state: int(counts.get(state, 0)) for state in END_STATES}}
            for minute, counts in minutes[-CHART_MINUTES:]
        ],
    }


def _broker_redis(settings: Settings, ledger: Ledger) -> redis.Redis:
    url = as_redis_url(settings.broker)
    return ledger.redis if url == settings.redis_url else _redis_at(url)


@functools.lru_cache(maxsize=4)
def _redis_at(url: str) -> redis.Redis:
    """Return a client of the broker's Redis when it is not the ledger's, made once."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5,
                                decode_responses=True)


def queue_depths(settings: Settings, ledger: Ledger) -> dict[str, int | None]:
    """Return the tasks waiting in each queue (None when the broker cannot tell)."""
    if settings.broker.startswith("amqp"):
        return _amqp_depths(settings)
    try:
        client = _broker_redis(settings, ledger)
        pipe = client.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.llen(queue)
            for step in REDIS_PRIORITY_STEPS:
                pipe.llen(f"{queue}{REDIS_PRIORITY_SEP}{step}")
        lengths = pipe.execute()
    except redis.RedisError as exc:
        log.warning("cannot read the queue lengths: %s", exc)
        return dict.fromkeys(QUEUES)
    per_queue = 1 + len(REDIS_PRIORITY_STEPS)
    return {queue: sum(lengths[i * per_queue:(i + 1) * per_queue])
            for i, queue in enumerate(QUEUES)}


def _amqp_depths(settings: Settings) -> dict[str, int | None]:
    depths: dict[str, int | None] = dict.fromkeys(QUEUES)
    try:
        with Connection(settings.broker, connect_timeout=2) as connection:
            for queue in QUEUES:
                channel = connection.channel()
                try:
                    _, waiting, _ = channel.queue_declare(queue, passive=True)
                    depths[queue] = int(waiting)
                except Exception:  # not declared yet: no worker ever consumed it
                    depths[queue] = 0
                finally:
                    # A failed passive declare closed the channel already.
                    with contextlib.suppress(Exception):
                        channel.close()
    except Exception as exc:  # kombu raises transport-specific errors
        log.warning("cannot read the queue lengths from %s: %s", settings.broker, exc)
    return depths


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
    settings: Settings, ledger: Ledger, now: float | None = None,
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


def workers(ledger: Ledger) -> list[dict[str, Any]]:
    """Return the worker nodes beating now and how many documents each holds."""
    return [{"name": node.rsplit("/", 1)[0], "node": node, "holding": len(held)}
            for node, held in sorted(ledger.live_nodes().items())]


def collect(settings: Settings, ledger: Ledger, now: float | None = None) -> dict[str, Any]:
    """Return every number of the status page and `docproc status`."""
    now = time.time() if now is None else now
    minutes = ledger.minutes(CHART_MINUTES + 1, now)
    watcher, spool = watcher_view(settings, ledger, now)
    oldest = ledger.oldest_active()
    held = Holding(ledger.redis).state()
    return {
        "generated_at": iso(now),
        "counts": ledger.state_counts(),
        "throughput": throughput(minutes, now),
        "stages": timings(ledger, minutes),
        "queues": queue_depths(settings, ledger),
        "workers": workers(ledger),
        "watcher": watcher,
        "spool": spool,
        "held": {"count": held.count, "since": iso(held.since), "reason": held.reason},
        "oldest_unfinished": None if oldest is None else {
            "key": oldest[0], "received_at": iso(oldest[1]),
            "age_seconds": round(max(0.0, now - oldest[1]), 1),
        },
    }
