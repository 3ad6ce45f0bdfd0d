"""Throughput on one corpus: the reference limit, `docproc process`, a burst into `docproc up`."""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import BenchError, clean_env, progress, summary
from benchmarks.corpus import Corpus
from benchmarks.daemon import (
    Site,
    count_reports,
    cpu_delta,
    ledger,
    make_site,
    program_figures,
    read_reports,
    running_up,
)
from benchmarks.procs import Started, machine_busy
from docproc.model import STAGES

REFERENCE = Path(__file__).with_name("reference_limit.py")
LIMIT_LINE = re.compile(r"reference: (\d+) docs in ([\d.]+)s = ([\d.]+) docs/s.*")
PROCESS_LINE = re.compile(r"(\d+) processed, (\d+) failed")
RUN_TIMEOUT = 1800.0
STALL_TIMEOUT = 120.0  # a burst fails when no report appears for this long
REPORT_POLL = 0.02
TIMINGS = (*STAGES, "wait", "total")


@dataclass(frozen=True)
class Ran:
    """A finished command: its output, wall seconds and CPU seconds (children included)."""

    stdout: str
    stderr: str
    wall: float
    cpu: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(argv: list[str], what: str) -> Ran:
    """Run a command to completion and time it; raise BenchError when it fails."""
    cpu_before, started = _children_cpu(), time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                              env=clean_env(), check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} did not finish within {RUN_TIMEOUT:g} s") from None
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    if done.returncode != 0:
        raise BenchError(f"{what} exited with {done.returncode}: {done.stderr[-2000:]}")
    return Ran(done.stdout, done.stderr, wall, cpu)


def measure_limit(corpus: Corpus, work: Path) -> dict[str, Any]:
    """Run the reference pipeline with 2 processes; return its own docs/s and the wall time."""
    out = work / "limit-out"
    done = _run([sys.executable, str(REFERENCE), str(corpus.folder), str(out), "2"],
                "reference_limit.py")
    shutil.rmtree(out, ignore_errors=True)
    match = LIMIT_LINE.search(done.stdout)
    if match is None:
        raise BenchError(f"reference_limit.py printed no docs/s line: {done.stdout!r}")
    docs, seconds = int(match[1]), float(match[2])
    return {
        "docs": docs, "seconds": seconds, "docs_per_s": float(match[3]),
        "wall_seconds": round(done.wall, 2), "printed": match[0],
        "cpu_ms_per_doc": round(done.cpu * 1000 / docs, 1),
        "note": "reference_limit times its process pool only (not interpreter start-up)",
    }


def _process(site: Site, paths: list[Path], out: Path) -> tuple[int, int, Ran]:
    """Run `docproc process --jobs 2`; return (processed, failed, how it ran)."""
    argv = site.command("process", "--jobs", "2", *map(str, paths), "--outbox", str(out))
    done = _run(argv, "docproc process")
    match = PROCESS_LINE.search(done.stderr)
    if match is None:
        raise BenchError(f"docproc process printed no summary: {done.stderr[-500:]!r}")
    return int(match[1]), int(match[2]), done


def measure_inproc(corpus: Corpus, work: Path) -> dict[str, Any]:
    """Time `docproc process --jobs 2` on the corpus, and its start-up on one tiny file."""
    site = make_site(work / "inproc")
    tiny = site.root / "tiny.txt"
    tiny.write_text("start-up probe\n")
    _, _, probe = _process(site, [tiny], site.root / "probe-out")
    out = site.root / "out-corpus"
    docs, failed, done = _process(site, [corpus.folder], out)
    reports = read_reports(out)
    shutil.rmtree(site.root, ignore_errors=True)
    check_no_ocr(reports, "docproc process")
    statuses = Counter(r["status"] for r in reports)
    if failed or statuses != Counter({"done": corpus.count}):
        raise BenchError(f"docproc process: expected {corpus.count} done, got {dict(statuses)} "
                         f"({failed} failed)")
    work_seconds = max(done.wall - probe.wall, 1e-3)
    return {
        "docs": docs, "failed": failed, "wall_seconds": round(done.wall, 2),
        "startup_seconds": round(probe.wall, 2), "work_seconds": round(work_seconds, 2),
        "docs_per_s_wall": round(docs / done.wall, 2),
        "docs_per_s": round(docs / work_seconds, 2),
        "cpu_ms_per_doc": round((done.cpu - probe.cpu) * 1000 / docs, 1),
        "stages_ms": _timings(reports),
        "note": "docs_per_s excludes start-up: wall time minus that of the same command "
                "on one tiny text file",
    }


def check_no_ocr(reports: list[dict[str, Any]], what: str) -> None:
    """Raise BenchError when a report says OCR ran: these parts measure docproc without it."""
    read = sum(1 for r in reports if (r.get("text") or {}).get("ocr") or r.get("ocr"))
    if read:
        raise BenchError(f"{what}: {read} documents were read by OCR; the part must run with "
                         "pipeline.ocr: off to compare with earlier results")


def _timings(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Return p50/p95/sum of each timings_ms entry over the reports."""
    return {
        name: summary([r["timings_ms"][name] for r in reports if name in r["timings_ms"]])
        for name in TIMINGS
    }


# How a burst arrives, and what its clock includes.
BURST_STYLES = {
    "inside": "each file written under a hidden name in the inbox before the clock, renamed in",
    "beside": "each file written in a folder beside the inbox before the clock, renamed in",
    "in_place": "each file copied into the inbox as cp does (open, write, close); the copy "
                "is timed",
    "folder": "the whole corpus copied into the inbox as a folder, as cp -r does; the copy "
              "is timed",
}
COPIED_STYLES = ("in_place", "folder")


def _stage(corpus: Corpus, site: Site, style: str) -> list[tuple[Path, Path]]:
    """Copy every corpus file to where a style writes it; return (staged, final) pairs.

    inside: a hidden name in the inbox; beside: a folder next to the inbox; in_place and
    folder: nothing is staged, the corpus file is copied to its final place on the clock.
    """
    if style in COPIED_STYLES:
        target = site.inbox / "export" if style == "folder" else site.inbox
        return [(Path(entry.path), target / entry.name)
                for entry in sorted(os.scandir(corpus.folder), key=lambda e: e.name)]
    if style == "beside":
        site.beside.mkdir(exist_ok=True)
    pairs = []
    for entry in sorted(os.scandir(corpus.folder), key=lambda e: e.name):
        staged = (site.beside / entry.name if style == "beside"
                  else site.inbox / f".{entry.name}.export")
        shutil.copyfile(entry.path, staged)
        pairs.append((staged, site.inbox / entry.name))
    return pairs


def wait_for_reports(outbox: Path, expected: int, proc: Started) -> float:
    """Poll the outbox until expected reports exist; return the perf_counter() they did."""
    seen, last_change = -1, time.monotonic()
    while True:
        count = count_reports(outbox)
        now = time.perf_counter()
        if count >= expected:
            return now
        if count != seen:
            seen, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > STALL_TIMEOUT:
            raise BenchError(f"only {count} of {expected} reports, none new for "
                             f"{STALL_TIMEOUT:g} s\n{proc.log_tail()}")
        if proc.popen.poll() is not None:
            raise BenchError(f"docproc up exited during the burst\n{proc.log_tail()}")
        time.sleep(REPORT_POLL)


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_burst(corpus: Corpus, work: Path, port: int, style: str = "inside") -> dict[str, Any]:
    """Rename the whole corpus into the inbox of a running `docproc up`; time the last report.

    The files are staged hidden in the inbox (style inside) or in a folder beside it (beside).
    """
    site = make_site(work / f"burst-{style}", mode="events", port=port)
    with running_up(site, port) as up:
        pairs = _stage(corpus, site, style)
        os.sync()  # write back the copies (and earlier runs' outboxes) now, not during the burst
        time.sleep(1.0)  # let the watcher drain the (ignored) events of the hidden copies
        before, self_before, busy_before = program_figures(up.pid), _self_cpu(), machine_busy()
        progress(f"burst ({style}): dropping {len(pairs)} files")
        started, started_wall = time.perf_counter(), time.time()
        if style == "folder":
            shutil.copytree(corpus.folder, site.inbox / "export")
        elif style == "in_place":
            for source, final in pairs:
                shutil.copyfile(source, final)
        else:
            for hidden, final in pairs:
                os.rename(hidden, final)
        dropped = time.perf_counter() - started
        finished = wait_for_reports(site.outbox, len(pairs), up)
        after, self_after, busy_after = program_figures(up.pid), _self_cpu(), machine_busy()
        records = ledger(site).recent(limit=len(pairs) + 10)
    seconds = finished - started
    reports = read_reports(site.outbox)
    inbox_left = sum(1 for path in site.inbox.rglob("*") if path.is_file())
    shutil.rmtree(site.root, ignore_errors=True)
    check_no_ocr(reports, f"burst ({style})")
    statuses = Counter(r["status"] for r in reports)
    if statuses != Counter({"done": len(pairs)}):
        # Every corpus file is an ordinary document: anything but done is a bug, not speed.
        raise BenchError(f"burst ({style}): expected {len(pairs)} done, got {dict(statuses)}")
    cpu = cpu_delta(before, after)
    own = sum(cpu.values()) + self_after - self_before
    return {
        "style": style, "drop": BURST_STYLES[style], "docs": len(pairs),
        "seconds": round(seconds, 2),
        "docs_per_s": round(len(pairs) / seconds, 2), "drop_seconds": round(dropped, 3),
        "statuses": dict(statuses),
        "stages_ms": _timings(reports),
        "ledger_ms": ledger_intervals(records),
        "timeline_s": _timeline(records, started_wall),
        # Documents of one task start their detect stage together: how finely the watcher's
        # intake cut the burst into tasks.
        "first_hop_tasks": len({(r.get("stages") or {}).get("detect", {}).get("started")
                                for r in records}),
        "derived": _derived(reports, after, before, seconds),
        "cpu_s_during_burst": cpu,
        "cpu_ms_per_doc": round(sum(cpu.values()) * 1000 / len(pairs), 1),
        "benchmark_cpu_s": round(self_after - self_before, 2),
        # Busy CPU of the machine that was neither docproc's nor the benchmark's: other users,
        # kernel threads (writeback), processes that exited during the burst.
        "other_cpu_s": round(busy_after - busy_before - own, 2),
        "programs_at_end": after,
        "inbox_left": inbox_left,
    }


def _timeline(records: list[dict[str, Any]], started: float) -> dict[str, float | None]:
    """Return when, after the first drop, the watcher recorded and workers finished documents."""
    def spread(name: str) -> tuple[float | None, float | None]:
        values = [r[name] - started for r in records if r.get(name)]
        return (round(min(values), 3), round(max(values), 3)) if values else (None, None)

    first_recorded, last_recorded = spread("received_ts")
    first_finished, last_finished = spread("finished_ts")
    return {"first_recorded": first_recorded, "last_recorded": last_recorded,
            "first_finished": first_finished, "last_finished": last_finished}


def _derived(
    reports: list[dict[str, Any]], after: dict[str, Any], before: dict[str, Any], seconds: float
) -> dict[str, float | None]:
    """Return stage work against worker CPU and the machine's capacity during the burst."""
    docs = max(len(reports), 1)
    stage_ms = sum(r["timings_ms"].get(stage, 0.0) for r in reports for stage in STAGES)
    worker_cpu = cpu_delta(before, after).get("worker")
    cores = os.cpu_count() or 1
    return {
        "stage_work_ms_per_doc": round(stage_ms / docs, 1),
        "worker_cpu_ms_per_doc": None if worker_cpu is None else round(worker_cpu * 1000 / docs,
                                                                        1),
        "worker_overhead_ms_per_doc": None if worker_cpu is None
        else round((worker_cpu * 1000 - stage_ms) / docs, 1),
        "stage_work_share_of_capacity": round(stage_ms / 1000 / (seconds * cores), 3),
    }


def ledger_intervals(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the gaps between stages (queue hops) and the stage spans the ledger recorded."""
    hops: dict[str, list[float]] = {}
    spans: dict[str, list[float]] = {}
    for record in records:
        previous, previous_name = record.get("received_ts"), "recorded"
        stages = record.get("stages") or {}
        for stage in STAGES:
            times = stages.get(stage) or {}
            if previous is not None and "started" in times:
                hops.setdefault(f"{previous_name}->{stage}", []).append(
                    (times["started"] - previous) * 1000)
            if "started" in times and "ended" in times:
                spans.setdefault(stage, []).append((times["ended"] - times["started"]) * 1000)
                previous, previous_name = times["ended"], stage
        if previous is not None and record.get("finished_ts"):
            hops.setdefault(f"{previous_name}->finished", []).append(
                (record["finished_ts"] - previous) * 1000)
    return {
        "hops": {name: summary(values) for name, values in hops.items()},
        "stage_spans": {name: summary(values) for name, values in spans.items()},
        "note": "from the ledger's per-stage timestamps (ms resolution); a hop is the gap "
                "between one stage's end and the next one's start: queueing plus task overhead; "
                "when a task carries a batch, every document's stage starts with the batch, so "
                "spans include waiting for batch-mates",
    }
