"""Scale of the watcher alone (broker, no worker): a full inbox at start-up, a burst of drops."""

from __future__ import annotations

import os
import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import BenchError, progress
from benchmarks.daemon import (
    Site,
    count_files,
    make_site,
    running,
    wait_for_ledger,
    wait_for_log,
)
from benchmarks.procs import Started, executable, proc_info, status_kb
from docproc.ledger import keyspace
from docproc.ledger.redis_ledger import RedisLedger

FILE_BYTES = 200
SUBFOLDERS = 100
STALL_TIMEOUT = 90.0  # longer than the watcher's 60 s rescan, which would find missed files
MAX_SECONDS = 1200.0
POLL_SECONDS = 0.25


def small_file(serial: int) -> bytes:
    """Return FILE_BYTES of text unique to serial."""
    head = f"benchmark file {serial:07d}\n".encode()
    return (head * (FILE_BYTES // len(head) + 1))[:FILE_BYTES - 1] + b"\n"


def write_small_files(folder: Path, count: int, subfolders: int) -> list[Path]:
    """Write count distinct small text files, spread over subfolders (0: flat)."""
    targets = []
    for serial in range(count):
        parent = folder / f"d{serial % subfolders:03d}" if subfolders else folder
        if serial < max(subfolders, 1):
            parent.mkdir(parents=True, exist_ok=True)
        target = parent / f"f{serial:07d}.txt"
        target.write_bytes(small_file(serial))
        targets.append(target)
    return targets


def _recorded(book: RedisLedger) -> int:
    """Return how many documents the ledger recorded: O(1), unlike RedisLedger.counts()."""
    return int(book.redis.zcard(keyspace.DOCS))


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wait_claimed(
    book: RedisLedger, watcher: Started, expected: int, started: float
) -> dict[str, Any]:
    """Poll the ledger until expected files are recorded or progress stalls; return timings."""
    first, cpu_before = None, _self_cpu()
    seen, last_change = -1, time.monotonic()
    while True:
        count = _recorded(book)
        elapsed = time.perf_counter() - started
        if count and first is None:
            first = elapsed
        if count >= expected:
            break
        if count != seen:
            seen, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > STALL_TIMEOUT:
            progress(f"scale: stalled at {count} of {expected} for {STALL_TIMEOUT:g} s")
            break
        if elapsed > MAX_SECONDS:
            progress(f"scale: {count} of {expected} after {MAX_SECONDS:g} s; giving up")
            break
        watcher.check_alive()
        time.sleep(POLL_SECONDS)
    return {"recorded": count, "all_recorded": count >= expected,
            "seconds": round(elapsed, 2), "first_claim_seconds": _round(first),
            "benchmark_poller_cpu_s": round(_self_cpu() - cpu_before, 2)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _watcher_figures(watcher: Started) -> dict[str, Any]:
    exe = executable(watcher.pid)
    if "python" not in os.path.basename(exe):
        raise BenchError(f"the watcher's pid {watcher.pid} runs {exe!r}, not python")
    hwm, rss = status_kb(watcher.pid, "VmHWM"), status_kb(watcher.pid, "VmRSS")
    return {"watcher_exe": exe, "watcher_peak_rss_mb": round((hwm or 0) / 1024, 1),
            "watcher_rss_at_end_mb": round((rss or 0) / 1024, 1)}


def _cpu(proc: Started) -> float | None:
    info = proc_info(proc.pid)
    return None if info is None else round(info.own_cpu + info.reaped_cpu, 2)


def backlog_queries(book: RedisLedger) -> dict[str, Any]:
    """Time the reads that `docproc status` and the reconciler (every 3 s) make at this backlog."""
    timings: dict[str, Any] = {}
    try:
        from docproc.queues import DOCUMENTS
        from docproc.worker.reconcile import queued_keys
    except ImportError as exc:
        return {"error": f"the product's reconcile API moved: {exc}"}
    queries: dict[str, Callable[[], object]] = {
        "ledger_counts_ms": book.counts,
        "ledger_active_ms": book.active,
        "reconcile_queued_keys_ms": lambda: queued_keys(book.redis, DOCUMENTS),
    }
    for name, query in queries.items():
        started = time.perf_counter()
        try:
            query()
        except Exception as exc:  # a changed product API is a finding, not a crash
            timings[name] = f"error: {type(exc).__name__}: {exc}"
            continue
        timings[name] = round((time.perf_counter() - started) * 1000, 1)
    return timings


def _outcome(
    site: Site, watcher: Started, broker: Started, claimed: dict[str, Any], n: int
) -> dict[str, Any]:
    log = watcher.log_path.read_text(errors="replace")
    return {
        "files": n, **claimed,
        "claims_per_s": round(claimed["recorded"] / max(claimed["seconds"], 1e-3), 1),
        "inbox_left": count_files(site.inbox),
        "spool_files": sum(1 for name in os.listdir(site.spool) if name.endswith(".data")),
        "overflow_rescans": log.count("inotify queue overflowed"),
        "watcher_cpu_s": _cpu(watcher), "broker_cpu_s": _cpu(broker),
        "broker_peak_rss_mb": round((status_kb(broker.pid, "VmHWM") or 0) / 1024, 1),
        **_watcher_figures(watcher),
    }


def measure_startup_claim(work: Path, n: int) -> dict[str, Any]:
    """Time `docproc watch` claiming n files already in the inbox at its start-up."""
    site = make_site(work / "scale-start", mode="events")
    progress(f"scale: writing {n} files into the inbox")
    write_small_files(site.inbox, n, SUBFOLDERS)
    with running(site, "broker") as broker:
        book = wait_for_ledger(site, broker)
        started = time.perf_counter()
        with running(site, "watch") as watcher:
            claimed = wait_claimed(book, watcher, n, started)
            result = _outcome(site, watcher, broker, claimed, n)
        result["backlog_queries"] = backlog_queries(book)
    shutil.rmtree(site.root, ignore_errors=True)
    result["note"] = ("seconds from starting `docproc watch` (broker already up, no worker) "
                      "until the ledger holds every file; each is claimed and enqueued then; "
                      "CPU seconds are the processes' lifetime totals, start-up included")
    return result


def measure_burst_claim(work: Path, n: int) -> dict[str, Any]:
    """Rename n files at once into the inbox of a running events-mode watcher; count claims."""
    site = make_site(work / "scale-burst", mode="events")
    staging = site.root / "staging"
    write_small_files(staging, n, 0)
    with running(site, "broker") as broker:
        book = wait_for_ledger(site, broker)
        with running(site, "watch") as watcher:
            wait_for_log(watcher, "watching", 60)
            time.sleep(1.0)  # the start-up scan of the empty inbox
            watcher_cpu, broker_cpu = _cpu(watcher) or 0.0, _cpu(broker) or 0.0
            started = time.perf_counter()
            for entry in sorted(os.scandir(staging), key=lambda e: e.name):
                os.rename(entry.path, site.inbox / entry.name)
            dropped = time.perf_counter() - started
            claimed = wait_claimed(book, watcher, n, started)
            result = _outcome(site, watcher, broker, claimed, n)
            result["watcher_cpu_s_during_burst"] = round((_cpu(watcher) or 0.0) - watcher_cpu, 2)
            result["broker_cpu_s_during_burst"] = round((_cpu(broker) or 0.0) - broker_cpu, 2)
    shutil.rmtree(site.root, ignore_errors=True)
    result["drop_seconds"] = round(dropped, 3)
    result["note"] = ("files renamed into the inbox root in one burst; claimed = recorded in "
                      "the ledger, cross-checked by an empty inbox and the spool's .data count")
    return result

