"""Quantiles from the ledger's histograms, and throughput over the last minutes."""

from __future__ import annotations

import pytest

from docproc.ledger.model import DURATION_BUCKETS
from docproc.status.timings import CHART_MINUTES, quantile, throughput

EMPTY = [0] * (len(DURATION_BUCKETS) + 1)


def _buckets(counts: dict[float, int]) -> list[int]:
    """Return bucket counts from {upper bound: observations in that bucket}."""
    found = list(EMPTY)
    for upper, count in counts.items():
        found[DURATION_BUCKETS.index(upper)] = count
    return found


def test_no_observations_have_no_quantile() -> None:
    assert quantile(0.5, EMPTY) is None


def test_quantiles_interpolate_within_their_bucket_as_prometheus_does() -> None:
    # Ten observations between 0.05 and 0.1 s: the median lies halfway through the bucket.
    buckets = _buckets({0.1: 10})
    assert quantile(0.5, buckets) == pytest.approx(0.075)
    assert quantile(1.0, buckets) == pytest.approx(0.1)
    assert quantile(0.95, _buckets({0.005: 19, 1.0: 1})) == pytest.approx(0.005)


def test_a_quantile_past_the_last_bound_is_the_last_bound() -> None:
    beyond = list(EMPTY)
    beyond[-1] = 3
    assert quantile(0.5, beyond) == DURATION_BUCKETS[-1]


def test_throughput_counts_a_partly_covered_minute_in_proportion() -> None:
    now = 1_764_000_090.0  # 30 s into the minute starting at ...060
    minutes = [
        (1_764_000_000, {"done": 6.0, "failed": 0.0}),
        (1_764_000_060, {"done": 2.0, "duplicate": 1.0, "retried": 5.0}),
    ]
    found = throughput(minutes, now)
    # The last minute: all of the current one (3: retried is no end state), half the one before.
    assert found["last_1m"] == 6 and found["last_5m"] == 9 and found["last_15m"] == 9
    assert found["per_minute"][-1] == {"minute": "2025-11-24T16:01:00Z", "done": 2, "failed": 0,
                                       "duplicate": 1}


def test_the_chart_shows_the_last_hour_only() -> None:
    start = 1_764_000_000
    minutes = [(start + 60 * i, {"done": 1.0}) for i in range(CHART_MINUTES + 5)]
    chart = throughput(minutes, start + 60 * (CHART_MINUTES + 5))["per_minute"]
    assert len(chart) == CHART_MINUTES and chart[0]["minute"] == "2025-11-24T16:05:00Z"
