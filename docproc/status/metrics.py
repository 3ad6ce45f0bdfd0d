"""Prometheus metrics, read at scrape time from the counts every process keeps in Redis.

Workers record each document's end once, atomically, in the ledger (counters by status
and kind, duration histograms, per-minute throughput), so the numbers of every worker
process on every machine add up without prometheus_client's multiprocess mode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from redis import RedisError

from docproc.ledger.model import DURATION_BUCKETS
from docproc.ledger.redis_ledger import RedisLedger
from docproc.model import State
from docproc.settings import Settings
from docproc.status.snapshot import collect

log = logging.getLogger("docproc.metrics")


class DocprocCollector(Collector):
    """Yield docproc's metrics from the ledger and the broker at each scrape."""

    def __init__(self, settings: Settings, ledger: RedisLedger) -> None:
        self.settings = settings
        self.ledger = ledger

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("docproc_ledger_up", "1 when the ledger's Redis answers, else 0")
        try:
            families = list(self._families())
        except RedisError as exc:
            log.warning("metrics: the ledger does not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Any]:
        ledger, now = self.ledger, time.time()
        snapshot = collect(self.settings, ledger, now)

        finished = CounterMetricFamily(
            "docproc_documents", "Documents that reached an end state, by status and kind",
            labels=["status", "kind"])
        failures = CounterMetricFamily(
            "docproc_document_failures", "Failed documents by error type", labels=["error"])
        by_status_kind: dict[tuple[str, str], int] = {}
        by_error: dict[str, int] = {}
        for (status, kind, error), count in ledger.finished_totals().items():
            by_status_kind[(status, kind)] = by_status_kind.get((status, kind), 0) + count
            if status == State.FAILED:
                by_error[error or "unknown"] = by_error.get(error or "unknown", 0) + count
        for (status, kind), count in sorted(by_status_kind.items()):
            finished.add_metric([status, kind], count)
        for error, count in sorted(by_error.items()):
            failures.add_metric([error], count)
        yield finished
        yield failures

        current = GaugeMetricFamily("docproc_documents_current",
                                    "Documents in each state now", labels=["status"])
        for status, count in snapshot["counts"].items():
            current.add_metric([status], count)
        yield current

        durations = ledger.durations()
        stage_hist = HistogramMetricFamily(
            "docproc_stage_duration_seconds", "Time a document spent in each stage",
            labels=["stage"])
        for name, (buckets, total, _) in sorted(durations.items()):
            if name.startswith("stage:"):
                stage_hist.add_metric([name.removeprefix("stage:")], _cumulative(buckets), total)
        yield stage_hist
        for name, metric, text in (
            ("document", "docproc_document_duration_seconds",
             "Time from a document's receipt to its end state"),
            ("wait", "docproc_queue_wait_seconds",
             "Time from a document's receipt to the start of its first stage"),
        ):
            histogram = HistogramMetricFamily(metric, text)
            if name in durations:
                buckets, total, _ = durations[name]
                histogram.add_metric([], _cumulative(buckets), total)
            yield histogram

        queues = GaugeMetricFamily("docproc_queue_depth",
                                   "Tasks waiting in each broker queue (a task carries up to "
                                   "16 documents)", labels=["queue"])
        for queue, depth in snapshot["queues"].items():
            if depth is not None:
                queues.add_metric([queue], depth)
        yield queues

        watcher = snapshot["watcher"]
        yield _gauge("docproc_watcher_backlog_files",
                     "Files the watchers have seen in the inbox and not claimed yet",
                     watcher["backlog"])
        yield _gauge("docproc_watchers_online", "Watchers publishing their counters",
                     watcher["online"])
        inbox = watcher.get("inbox") or {}
        yield _gauge("docproc_watcher_inbox_missing",
                     "1 while a watcher's inbox is removed, replaced or unmounted, else 0",
                     1 if inbox.get("state") == "missing" else 0)
        waiting = GaugeMetricFamily(
            "docproc_watcher_waiting_files",
            "Files in the inbox waiting for their writer before the watchers claim them, by why",
            labels=["reason"])
        for reason, count in watcher["waiting_by_reason"].items():
            waiting.add_metric([reason], count)
        yield waiting
        yield _counter("docproc_ocr_pages", "Pages read by OCR, by every worker",
                       snapshot["ocr"]["pages"])
        yield _gauge("docproc_ocr_pages_per_minute",
                     "Pages read by OCR per minute, over the last 5 whole minutes",
                     snapshot["ocr"]["pages_per_minute"])
        yield _counter("docproc_watcher_files_seen", "Files the running watchers have seen",
                       watcher["seen"])
        yield _counter("docproc_watcher_files_claimed",
                       "Files the running watchers claimed into the spool", watcher["claimed"])
        yield _gauge("docproc_spool_files", "Claimed files in the spool, not finished yet",
                     snapshot["spool"]["files"])
        yield _gauge("docproc_spool_bytes", "Bytes of the claimed files in the spool",
                     snapshot["spool"]["bytes"])
        yield _gauge("docproc_documents_held",
                     "Documents held because the outbox or spool cannot be written; they go on "
                     "by themselves once it can", snapshot["held"]["count"])
        yield _gauge("docproc_workers_online", "Worker nodes whose heartbeat is current",
                     len(snapshot["workers"]))
        oldest = snapshot["oldest_unfinished"]
        yield _gauge("docproc_oldest_unfinished_age_seconds",
                     "Age of the oldest document not finished yet (0 when none)",
                     oldest["age_seconds"] if oldest else 0)


def _cumulative(buckets: list[int]) -> list[tuple[str, float]]:
    running = 0
    points: list[tuple[str, float]] = []
    for count, upper in zip(buckets, (*DURATION_BUCKETS, float("inf")), strict=True):
        running += count
        points.append((floatToGoString(upper), running))
    return points


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def _counter(name: str, text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, value=value)


def registry(settings: Settings, ledger: RedisLedger) -> CollectorRegistry:
    """Return a registry holding docproc's collector only."""
    found = CollectorRegistry(auto_describe=False)
    found.register(DocprocCollector(settings, ledger))
    return found


def exposition(collectors: CollectorRegistry) -> bytes:
    """Return the Prometheus text exposition of a registry."""
    return generate_latest(collectors)
