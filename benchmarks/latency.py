"""Latency: single one-page PDFs dropped one at a time into an idle `docproc up`."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks.common import BenchError, summary
from benchmarks.corpus import SOURCE, distinct_pdf
from benchmarks.daemon import SECTIONS, Site, ledger, make_site, read_reports, running_up
from benchmarks.procs import Started
from benchmarks.throughput import ledger_intervals
from docproc.outbox import folder_name

ONE_PAGE_PDF = SOURCE / "pdf" / "001-trivial_minimal-document.pdf"
POLL_SECONDS = 0.005
DROP_TIMEOUT = 60.0
POLL_INTERVAL = 2.0  # the default watcher.poll_interval, used by the polling run
EVENTS_JITTER = 0.2
SEED = 4


def report_path(outbox: Path, folder: str) -> Path | None:
    """Return the report.json of a document folder if it exists in any day of the outbox."""
    for section in SECTIONS:
        base = os.path.join(outbox, section)
        try:
            days = os.listdir(base)
        except FileNotFoundError:
            continue
        for day in days:
            candidate = os.path.join(base, day, folder, "report.json")
            if os.path.exists(candidate):
                return Path(candidate)
    return None


def drop_and_wait(site: Site, up: Started, name: str, data: bytes) -> float:
    """Drop one file as an exporter does; return ms until its report.json appears."""
    hidden = site.inbox / f".{name}.export"
    hidden.write_bytes(data)
    folder = folder_name(name, hashlib.sha256(data).hexdigest()[:12])
    started = time.perf_counter()
    os.rename(hidden, site.inbox / name)
    deadline = started + DROP_TIMEOUT
    while report_path(site.outbox, folder) is None:
        now = time.perf_counter()
        if now > deadline:
            raise BenchError(f"no report for {name} within {DROP_TIMEOUT:g} s\n{up.log_tail()}")
        if up.popen.poll() is not None:
            raise BenchError(f"docproc up exited while waiting for {name}\n{up.log_tail()}")
        time.sleep(POLL_SECONDS)
    return (time.perf_counter() - started) * 1000


def _drops(site: Site, up: Started, drops: int, jitter: float) -> list[float]:
    """Drop one-page PDFs one at a time, each after a random pause of up to jitter seconds."""
    rng = random.Random(SEED)
    samples = []
    for serial in range(drops):
        # Without the pause each drop would follow the last report in lockstep, always at the
        # same phase of the polling cycle.
        time.sleep(rng.uniform(0, jitter))
        data = distinct_pdf(ONE_PAGE_PDF, 10_000 + serial)
        samples.append(drop_and_wait(site, up, f"one-page-{serial:02d}.pdf", data))
    return samples


def measure_latency(work: Path, port: int, mode: str, drops: int = 20) -> dict[str, Any]:
    """Return drop->report.json latencies of drops one-page PDFs, after one warm-up drop."""
    site = make_site(work / f"lat-{mode}", mode=mode, port=port, poll_interval=POLL_INTERVAL)
    jitter = POLL_INTERVAL if mode == "polling" else EVENTS_JITTER
    with running_up(site, port) as up:
        samples = _drops(site, up, drops + 1, jitter)
        records = ledger(site).recent(limit=drops + 5)
    reports = sorted(read_reports(site.outbox), key=lambda r: r["source"]["name"])
    measured = samples[1:]
    outside = [ms - r["timings_ms"]["total"] for ms, r in zip(measured, reports[1:], strict=True)]
    shutil.rmtree(site.root, ignore_errors=True)
    return {
        "mode": mode,
        "drops": len(measured),
        "latency_ms": summary(measured),
        "warmup_ms": round(samples[0], 1),
        "samples_ms": [round(ms, 1) for ms in measured],
        "report_total_ms": summary([r["timings_ms"]["total"] for r in reports[1:]]),
        "outside_report_total_ms": summary(outside),
        "ledger_ms": ledger_intervals(records),
        "random_pause_before_drop_s": [0, jitter],
        "watcher": {"poll_interval": POLL_INTERVAL, "settle_seconds": "default (1.0)"},
        "note": "outside_report_total = drop->report minus the report's own total "
                "(intake->report built): noticing, settling, claiming, hashing, ledger record, "
                "outbox write and the 5 ms poll",
    }
