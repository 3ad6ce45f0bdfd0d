"""Latency: one-page PDFs dropped one at a time, in one of STYLES, into an idle `docproc up`."""

from __future__ import annotations

import hashlib
import json
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
from docproc.settings import WatcherSettings

ONE_PAGE_PDF = SOURCE / "pdf" / "001-trivial_minimal-document.pdf"
POLL_SECONDS = 0.005
DROP_TIMEOUT = 60.0
POLL_INTERVAL = 2.0  # the default watcher.poll_interval, used by the polling run
EVENTS_JITTER = 0.2
SEED = 4
# How a file arrives, and when its clock starts: written hidden in the inbox and renamed (at the
# rename), written beside the inbox and renamed in (at the rename), written in place (at open).
STYLES = {
    "inside": "rename of a hidden .name.export in the inbox",
    "beside": "rename from a folder beside the inbox, same filesystem",
    "in_place": "open, write whole, close in the inbox (as cp); clock from the open",
    "folder": "a folder holding the file copied into the inbox (as cp -r); clock from its mkdir",
}


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


def start_drop(site: Site, name: str, data: bytes, style: str) -> float:
    """Drop one file in a style of STYLES; return the perf_counter() its latency counts from."""
    final = site.inbox / name
    if style == "folder":
        source = site.root / "folder-source" / name
        source.parent.mkdir(exist_ok=True)
        source.write_bytes(data)
        started = time.perf_counter()
        shutil.copytree(source.parent, site.inbox / f"batch-{name}")
        source.unlink()
        return started
    if style == "in_place":
        started = time.perf_counter()
        with final.open("wb") as out:  # as cp does: open in the inbox, write it whole, close
            out.write(data)
        return started
    if style == "beside":
        site.beside.mkdir(exist_ok=True)
        staged = site.beside / name
    else:
        staged = site.inbox / f".{name}.export"
    staged.write_bytes(data)
    started = time.perf_counter()
    os.rename(staged, final)
    return started


def drop_and_wait(
    site: Site, up: Started, name: str, data: bytes, style: str = "inside",
    timeout: float = DROP_TIMEOUT,
) -> float:
    """Drop one file as an exporter does; return ms until its report.json appears."""
    folder = folder_name(name, hashlib.sha256(data).hexdigest()[:12])
    started = start_drop(site, name, data, style)
    deadline = started + timeout
    while (path := report_path(site.outbox, folder)) is None:
        now = time.perf_counter()
        if now > deadline:
            raise BenchError(f"no report for {name} within {timeout:g} s\n{up.log_tail()}")
        if up.popen.poll() is not None:
            raise BenchError(f"docproc up exited while waiting for {name}\n{up.log_tail()}")
        time.sleep(POLL_SECONDS)
    elapsed = (time.perf_counter() - started) * 1000
    status = json.loads(path.read_text())["status"]
    if status != "done":
        raise BenchError(f"{name} ended {status}, not done: only finished documents count")
    return elapsed


def _drops(site: Site, up: Started, drops: int, jitter: float, style: str) -> list[float]:
    """Drop one-page PDFs one at a time, each after a random pause of up to jitter seconds."""
    rng = random.Random(SEED)
    samples = []
    for serial in range(drops):
        # Without the pause each drop would follow the last report in lockstep, always at the
        # same phase of the polling cycle.
        time.sleep(rng.uniform(0, jitter))
        data = distinct_pdf(ONE_PAGE_PDF, 10_000 + serial)
        samples.append(drop_and_wait(site, up, f"one-page-{serial:02d}.pdf", data, style))
    return samples


def watcher_defaults() -> dict[str, float | None]:
    """Return the default settle and quiet seconds of the docproc measured (None: no such key)."""
    defaults = WatcherSettings()
    return {"settle_seconds": defaults.settle_seconds,
            "quiet_seconds": getattr(defaults, "quiet_seconds", None)}


def measure_latency(
    work: Path, port: int, mode: str, drops: int = 20, style: str = "inside"
) -> dict[str, Any]:
    """Return drop->report.json latencies of drops one-page PDFs, after one warm-up drop."""
    site = make_site(work / f"lat-{mode}-{style}", mode=mode, port=port,
                     poll_interval=POLL_INTERVAL)
    jitter = POLL_INTERVAL if mode == "polling" else EVENTS_JITTER
    with running_up(site, port) as up:
        samples = _drops(site, up, drops + 1, jitter, style)
        records = ledger(site).recent(limit=drops + 5)
    reports = sorted(read_reports(site.outbox), key=lambda r: r["source"]["name"])
    measured = samples[1:]
    outside = [ms - r["timings_ms"]["total"] for ms, r in zip(measured, reports[1:], strict=True)]
    shutil.rmtree(site.root, ignore_errors=True)
    return {
        "mode": mode,
        "style": style,
        "drop": STYLES[style],
        "drops": len(measured),
        "latency_ms": summary(measured),
        "warmup_ms": round(samples[0], 1),
        "samples_ms": [round(ms, 1) for ms in measured],
        "report_total_ms": summary([r["timings_ms"]["total"] for r in reports[1:]]),
        "outside_report_total_ms": summary(outside),
        "ledger_ms": ledger_intervals(records),
        "random_pause_before_drop_s": [0, jitter],
        "watcher": {"poll_interval": POLL_INTERVAL, **watcher_defaults()},
        "note": "outside_report_total = drop->report minus the report's own total "
                "(intake->report built): noticing, waiting for the writer, claiming, hashing, "
                "ledger record, outbox write and the 5 ms poll",
    }
