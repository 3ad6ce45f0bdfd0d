"""OCR: the pool limit, docproc's pages/s, a big scan on one worker process against two, and
small documents' latency while a big scan is read. Every docproc here runs `pipeline.ocr: auto`.
"""

from __future__ import annotations

import json
import os
import random
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
from benchmarks.corpus import distinct_pdf
from benchmarks.daemon import (
    Site,
    cpu_delta,
    ledger,
    make_site,
    program_figures,
    read_reports,
    running_up,
)
from benchmarks.latency import ONE_PAGE_PDF, drop_and_wait, report_path
from benchmarks.procs import Started, machine_busy
from benchmarks.scans import ScanCorpus, digest
from docproc.outbox import folder_name

LIMIT_SCRIPT = Path(__file__).with_name("ocr_limit.py")
OCR = {"ocr": "auto", "ocr_languages": ["eng"], "ocr_dpi": 300}
# Today a document's OCR runs inside one task: a 100-page scan outlives the default 270 s soft
# limit. Raised so that the "before" finishes; per-page limits are the OCR queue's own.
LONG_TASKS = {"task_time_limit": 3600, "task_soft_time_limit": 3500}
POLL = 0.05
SMALL_DROP_TIMEOUT = 900.0
OCR_START_TIMEOUT = 30.0  # drops start anyway when the ledger shows no ocr stage by then
SEED = 14


@dataclass(frozen=True)
class OcrSizes:
    """How much OCR work a run does."""

    distinct_pages: int
    throughput_docs: int
    pages_per_doc: int
    scaling_pages: int
    latency_job_pages: int
    latency_drops: int
    latency_pause_s: float  # the random pause before each drop is up to this

    @property
    def throughput_pages(self) -> int:
        return self.throughput_docs * self.pages_per_doc


OCR_FULL = OcrSizes(20, 4, 10, 100, 100, 20, 5.0)
OCR_QUICK = OcrSizes(6, 4, 2, 8, 8, 5, 1.0)


def tessdata() -> Path:
    """Return the models folder docproc uses by default (the tessdata-fast-* packages')."""
    return Path(sys.prefix) / "share" / "tessdata"


def throughput_pdfs(corpus: ScanCorpus, sizes: OcrSizes) -> list[Path]:
    """Return the multi-page scans of the throughput parts (the same for limit and docproc)."""
    return [corpus.cached_pdf(f"scan{n}", sizes.pages_per_doc, n * sizes.pages_per_doc)
            for n in range(sizes.throughput_docs)]


def measure_ocr_limit(pdfs: list[Path], processes: int) -> dict[str, Any]:
    """Run ocr_limit.py with one process per core on the scans; return its figures."""
    env = {**clean_env(), "OMP_THREAD_LIMIT": "1"}
    argv = [sys.executable, str(LIMIT_SCRIPT), str(processes), str(tessdata()), *map(str, pdfs)]
    started, busy, children = time.perf_counter(), machine_busy(), _children_cpu()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False,
                          timeout=3600)
    if done.returncode != 0:
        raise BenchError(f"ocr_limit.py exited with {done.returncode}: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = _children_cpu() - children
    return {**figures, "wall_seconds": round(time.perf_counter() - started, 2),
            "cpu_s": round(cpu, 1), "other_cpu_s": round(machine_busy() - busy - cpu, 1),
            "note": "ocr_limit.py times its pool (engines created once per process, "
                    "OMP_THREAD_LIMIT=1): render at 300 dpi, OSD, recognise, per page"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ocr_site(root: Path, port: int, concurrency: int | None = None) -> Site:
    """Return a docproc instance reading scans, with task limits a one-task OCR fits in."""
    workers: dict[str, Any] = dict(LONG_TASKS)
    if concurrency is not None:
        workers["concurrency"] = concurrency
    return make_site(root, mode="events", port=port, pipeline=OCR, workers=workers)


def _stage_hidden(site: Site, sources: list[Path]) -> list[tuple[Path, Path]]:
    """Copy sources hidden into the inbox; return (hidden, final) pairs to rename."""
    pairs = []
    for source in sources:
        hidden = site.inbox / f".{source.name}.export"
        shutil.copyfile(source, hidden)
        pairs.append((hidden, site.inbox / source.name))
    os.sync()
    return pairs


def wait_reports(site: Site, up: Started, expected: int, timeout: float) -> float:
    """Poll until expected document folders are in the outbox; return the perf_counter()."""
    deadline = time.monotonic() + timeout
    while len(read_reports(site.outbox)) < expected:
        if time.monotonic() > deadline:
            raise BenchError(f"not {expected} reports within {timeout:g} s\n{up.log_tail()}")
        if up.popen.poll() is not None:
            raise BenchError(f"docproc up exited\n{up.log_tail()}")
        time.sleep(POLL)
    return time.perf_counter()


def _ocr_figures(reports: list[dict[str, Any]], expected_pages: int) -> dict[str, Any]:
    """Check every scan is done with all its pages read; return the reports' OCR figures."""
    statuses = Counter(r["status"] for r in reports)
    pages = sum((r.get("ocr") or {}).get("pages") or 0 for r in reports)
    if set(statuses) != {"done"} or pages != expected_pages:
        raise BenchError(f"expected every scan done with {expected_pages} pages read, got "
                         f"{dict(statuses)} and {pages} pages; warnings: "
                         f"{[r.get('warnings') for r in reports][:3]}")
    ocr = [r["ocr"] for r in reports]
    return {"pages": pages, "statuses": dict(statuses),
            "ocr_seconds_sum": round(sum(o.get("seconds") or 0.0 for o in ocr), 1),
            "mean_confidence": round(sum(o.get("mean_confidence") or 0 for o in ocr)
                                     / len(ocr), 1),
            "warnings": sum(len(r.get("warnings") or []) for r in reports)}


def run_scans(site: Site, sources: list[Path], pages: int, timeout: float) -> dict[str, Any]:
    """Rename scans into a running `docproc up` at once; return pages/s to the last report."""
    with running_up(site, _port(site)) as up:
        pairs = _stage_hidden(site, sources)
        before, busy_before = program_figures(up.pid), machine_busy()
        progress(f"ocr: dropping {len(pairs)} scans of {pages} pages in all")
        started = time.perf_counter()
        for hidden, final in pairs:
            os.rename(hidden, final)
        finished = wait_reports(site, up, len(pairs), timeout)
        cpu, busy = cpu_delta(before, program_figures(up.pid)), machine_busy() - busy_before
    seconds = finished - started
    figures = _ocr_figures(read_reports(site.outbox), pages)
    workers = cpu.get("worker", 0.0) + cpu.get("ocr", 0.0)  # the OCR program, once it exists
    shutil.rmtree(site.root, ignore_errors=True)
    return {"docs": len(pairs), **figures, "seconds": round(seconds, 2),
            "pages_per_s": round(pages / seconds, 3), "cpu_s": cpu,
            "worker_cpu_s_per_page": round(workers / pages, 2),
            # How many cores docproc's workers kept busy, and what the rest of the machine took.
            "worker_cores_used": round(workers / seconds, 2),
            "other_cpu_s": round(busy - sum(cpu.values()), 1)}


def _port(site: Site) -> int:
    return int(json.loads(site.config.read_text())["status_api"]["port"])


def measure_ocr_throughput(
    corpus: ScanCorpus, sizes: OcrSizes, work: Path, port: int
) -> dict[str, Any]:
    """Drop the throughput scans into `docproc up` (default workers); return pages/s."""
    site = ocr_site(work / "ocr-throughput", port)
    figures = run_scans(site, throughput_pdfs(corpus, sizes), sizes.throughput_pages,
                        timeout=60 + 30 * sizes.throughput_pages)
    return {**figures, "drop": "multi-page image-only PDFs renamed in from inside the inbox, "
                               "clock from the first rename to the last report.json"}


def measure_ocr_scaling(
    corpus: ScanCorpus, sizes: OcrSizes, work: Path, port: int
) -> dict[str, Any]:
    """Time one big scan with workers.concurrency 1, then 2; return both and the speed-up."""
    scan = corpus.cached_pdf("big", sizes.scaling_pages)
    runs = {}
    for concurrency in (1, 2):
        site = ocr_site(work / f"ocr-scaling-{concurrency}", port, concurrency)
        runs[concurrency] = run_scans(site, [scan], sizes.scaling_pages,
                                      timeout=120 + 30 * sizes.scaling_pages)
    one, two = runs[1]["seconds"], runs[2]["seconds"]
    return {"pages": sizes.scaling_pages, "one_process": runs[1], "two_processes": runs[2],
            "seconds_1": one, "seconds_2": two, "speedup": round(one / two, 2),
            "note": "one image-only PDF renamed in; drop to report.json with workers."
                    "concurrency 1, then 2"}


def _ocr_started(site: Site, name: str) -> bool:
    """Return True once the ledger shows the document's ocr stage started (or extract ended)."""
    for record in ledger(site).recent(limit=20):
        if name not in (record.get("name"), record.get("relpath")):
            continue
        stages = record.get("stages") or {}
        if "started" in (stages.get("ocr") or {}) or "ended" in (stages.get("extract") or {}):
            return True
    return False


def measure_ocr_latency(
    corpus: ScanCorpus, sizes: OcrSizes, work: Path, port: int
) -> dict[str, Any]:
    """Drop one-page text PDFs one at a time while a big scan is read; return their latency."""
    site = ocr_site(work / "ocr-latency", port)
    scan = corpus.cached_pdf("busy", sizes.latency_job_pages, 1)
    big_folder = folder_name(scan.name, digest(scan))
    rng = random.Random(SEED)
    samples: list[float] = []
    with running_up(site, port) as up:
        warmup = drop_and_wait(site, up, "warm-up.pdf", distinct_pdf(ONE_PAGE_PDF, 20_000))
        (hidden, final), = _stage_hidden(site, [scan])
        started = time.perf_counter()
        os.rename(hidden, final)
        deadline = time.monotonic() + OCR_START_TIMEOUT
        while not (seen := _ocr_started(site, scan.name)) and time.monotonic() < deadline:
            time.sleep(POLL)
        ocr_began = time.perf_counter() - started if seen else None
        during = 0
        while during < sizes.latency_drops and report_path(site.outbox, big_folder) is None:
            time.sleep(rng.uniform(0, sizes.latency_pause_s))  # spread over the job
            data = distinct_pdf(ONE_PAGE_PDF, 20_001 + len(samples))
            ms = drop_and_wait(site, up, f"small-{len(samples):02d}.pdf", data,
                               timeout=SMALL_DROP_TIMEOUT)
            samples.append(ms)
            # Only a drop answered while the scan was still being read counts.
            during += report_path(site.outbox, big_folder) is None
        wait_reports(site, up, len(samples) + 2, 120 + 30 * sizes.latency_job_pages)
    big = [r for r in read_reports(site.outbox) if r["source"]["name"] == scan.name]
    shutil.rmtree(site.root, ignore_errors=True)
    counted = samples[:during]
    if not counted:
        raise BenchError("the scan was read before any small document came back")
    pause = sizes.latency_pause_s
    return {"job_pages": sizes.latency_job_pages, "drops": len(counted),
            "latency_ms": summary(counted), "samples_ms": [round(s, 1) for s in samples],
            "warmup_ms": round(warmup, 1),
            "ocr_started_after_s": None if ocr_began is None else round(ocr_began, 2),
            "job_seconds": round(big[0]["timings_ms"]["total"] / 1000, 2) if big else None,
            "job_status": big[0]["status"] if big else None,
            "note": "one-page text PDFs renamed in one at a time (random pause up to "
                    f"{pause:g} s) after the scan's ocr stage started; a drop counts when "
                    "its report.json came while the scan was still unfinished"}
