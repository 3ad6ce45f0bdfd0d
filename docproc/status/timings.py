"""How fast documents go: per-stage timings from the ledger's histograms, and throughput."""

from __future__ import annotations

from typing import Any

from docproc.ledger.model import DURATION_BUCKETS
from docproc.ledger.redis_ledger import RedisLedger
from docproc.model import STAGES, State
from docproc.status.timestamps import iso

# The end states the minute buckets count (a retry ends nothing), in the order shown.
END_STATES = (State.DONE, State.FAILED, State.DUPLICATE)
CHART_MINUTES = 60

Minutes = list[tuple[int, dict[str, float]]]


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


def timings(ledger: RedisLedger, minutes: Minutes) -> dict[str, Any]:
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


def throughput(minutes: Minutes, now: float) -> dict[str, Any]:
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
            {"minute": iso(minute),
             **{str(state): int(counts.get(state, 0)) for state in END_STATES}}
            for minute, counts in minutes[-CHART_MINUTES:]
        ],
    }
