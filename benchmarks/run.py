"""Measure docproc in one run and print the figures: `python -m benchmarks.run [--quick]`.

Parts: limit, inproc, burst (throughput on one corpus, in each drop style of
throughput.BURST_STYLES: renamed in from inside the inbox or from beside it, copied in place,
a folder copied in), latency (events mode: rename inside, rename from beside, written in place;
polling mode), and the watcher at scale, all with `pipeline.ocr: off`; then OCR on generated
scans (benchmarks.ocr): ocr_limit, ocr_throughput, ocr_scaling, ocr_latency.
Figures go to <out>/<date>-<commit>.json and .md
(committed when quoted) and to <out>/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import docproc
from benchmarks.common import REPO, BenchError, clean_env, free_port, progress
from benchmarks.corpus import Corpus, build_corpus
from benchmarks.latency import measure_latency
from benchmarks.ocr import (
    OCR_FULL,
    OCR_QUICK,
    OcrSizes,
    measure_ocr_latency,
    measure_ocr_limit,
    measure_ocr_scaling,
    measure_ocr_throughput,
    throughput_pdfs,
)
from benchmarks.report import render_text, write_outputs
from benchmarks.scale import measure_burst_claim, measure_startup_claim
from benchmarks.scans import scan_corpus
from benchmarks.throughput import measure_burst, measure_inproc, measure_limit

# part -> (result key, watcher mode, drop style of latency.STYLES)
LATENCY = {
    "latency_inside": ("latency_events", "events", "inside"),
    "latency_beside": ("latency_events_beside", "events", "beside"),
    "latency_in_place": ("latency_events_in_place", "events", "in_place"),
    "latency_folder": ("latency_events_folder", "events", "folder"),
    "latency_polling": ("latency_polling", "polling", "inside"),
}
# part -> (result key, drop style)
BURSTS = {"burst_inside": ("burst", "inside"), "burst_beside": ("burst_beside", "beside"),
          "burst_in_place": ("burst_in_place", "in_place"),
          "burst_folder": ("burst_folder", "folder")}
THROUGHPUT = ("limit", "inproc", *BURSTS)
OCR_PARTS = ("ocr_limit", "ocr_throughput", "ocr_scaling", "ocr_latency")
PARTS = (*THROUGHPUT, *LATENCY, "scale", *OCR_PARTS)
GROUPS = {"burst": tuple(BURSTS), "latency": tuple(LATENCY), "ocr": OCR_PARTS}
RATIOS = (*((key, "inproc") for key, _ in BURSTS.values()),
          *((key, "limit") for key, _ in BURSTS.values()), ("inproc", "limit"))


@dataclass(frozen=True)
class Sizes:
    """How much work a run does."""

    name: str
    pdfs: int
    jpegs: int
    latency_drops: int
    startup_files: int
    burst_files: int


FULL = Sizes("full", 300, 60, 20, 100_000, 10_000)
QUICK = Sizes("quick", 60, 12, 20, 10_000, 10_000)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command line options."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="60 PDFs + 12 JPEGs, 10,000 start-up files, OCR of 8-page scans")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results",
                        help="folder of the result files <date>-<commit>.json/.md and latest.* "
                             "(default: %(default)s)")
    groups = "; ".join(f"{group} = {','.join(members)}" for group, members in GROUPS.items())
    parser.add_argument("--only", type=lambda s: s.split(","), default=list(PARTS),
                        help=f"comma-separated parts to run, of {','.join(PARTS)}, or groups: "
                             f"{groups}")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of limit, inproc and the bursts, best kept (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (debugging)")
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(PARTS) - set(GROUPS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    args.only = [part for name in args.only for part in GROUPS.get(name, (name,))]
    return args


def attempt(name: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one measurement; return its figures or its error, never letting it stop the others."""
    progress(f"{name}: starting")
    started = time.monotonic()
    try:
        figures = measure()
    except BenchError as exc:
        figures = {"error": str(exc)}
    except Exception as exc:
        traceback.print_exc()
        figures = {"error": f"{type(exc).__name__}: {exc}"}
    figures["part_seconds"] = round(time.monotonic() - started, 1)
    outcome = f"FAILED: {figures['error']}" if "error" in figures else "done"
    progress(f"{name}: {outcome} in {figures['part_seconds']} s")
    return figures


ROUND_KEYS = ("docs_per_s", "seconds", "cpu_ms_per_doc", "other_cpu_s", "timeline_s", "error")


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the run with the most docs/s, noting every run's docs/s, errors and gist."""
    good = [run for run in runs if "error" not in run]
    if not good:
        return runs[-1]
    best = max(good, key=lambda run: float(run["docs_per_s"]))
    return {**best, "runs_docs_per_s": [run.get("docs_per_s") for run in runs],
            "runs_errors": [run["error"] for run in runs if "error" in run],
            "rounds": [{key: run[key] for key in ROUND_KEYS if key in run} for run in runs]}


def _throughput_measure(name: str, corpus: Corpus, work: Path) -> Callable[[], dict[str, Any]]:
    if name == "limit":
        return functools.partial(measure_limit, corpus, work)
    if name == "inproc":
        return functools.partial(measure_inproc, corpus, work)
    return functools.partial(measure_burst, corpus, work, free_port(), BURSTS[name][1])


def _round_order(chosen: list[str], round_number: int) -> list[str]:
    """Return the parts of one round, the burst styles rotated (none always last)."""
    bursts = [name for name in chosen if name in BURSTS]
    if bursts:
        shift = (round_number - 1) % len(bursts)
        bursts = bursts[shift:] + bursts[:shift]
    return [name for name in chosen if name not in BURSTS] + bursts


def run_throughput(
    results: dict[str, Any], parts: list[str], corpus: Corpus, work: Path, repeat: int
) -> None:
    """Run limit, inproc and the bursts in interleaved rounds; keep the best run of each."""
    chosen = [name for name in THROUGHPUT if name in parts]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    for round_number in range(1, repeat + 1):
        for name in _round_order(chosen, round_number):
            label = f"{name} (round {round_number}/{repeat})"
            runs[name].append(attempt(label, _throughput_measure(name, corpus, work)))
    for name in chosen:
        results[BURSTS[name][0] if name in BURSTS else name] = best_of(runs[name])


def _commit() -> str:
    try:
        done = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def _docproc_in_subprocesses() -> str:
    """Return where a process started like docproc's (clean_env()) imports docproc from."""
    try:
        done = subprocess.run([sys.executable, "-c", "import docproc; print(docproc.__file__)"],
                              capture_output=True, text=True, check=False, timeout=60,
                              env=clean_env(), cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return done.stdout.strip() or f"unknown ({done.stderr.strip()[-200:]})"


def _meta(sizes: Sizes, ocr: OcrSizes) -> dict[str, Any]:
    return {
        "ocr_sizes": ocr.__dict__,
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "size": sizes.name, "cpus": os.cpu_count(), "commit": _commit(),
        "python": sys.version.split()[0], "sizes": sizes.__dict__,
        "corpus": f"{sizes.pdfs} PDFs + {sizes.jpegs} JPEGs",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "docproc_imported_from": {"benchmark": docproc.__file__,
                                  "subprocesses": _docproc_in_subprocesses()},
    }


def same_round_ratios(results: dict[str, Any], top: str, bottom: str) -> list[float | None]:
    """Return top's docs/s over bottom's of the same round, per round (None: a run failed)."""
    def rounds(name: str) -> list[Any]:
        part = results.get(name)
        return list(part.get("runs_docs_per_s") or []) if isinstance(part, dict) else []

    return [round(t / b, 3) if t and b else None
            for t, b in zip(rounds(top), rounds(bottom), strict=False)]


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Return each ratio of RATIOS as the median of its same-round ratios, and those."""
    figures: dict[str, Any] = {}
    per_round: dict[str, list[float | None]] = {}
    for top, bottom in RATIOS:
        name = f"{top}/{bottom}"
        per_round[name] = same_round_ratios(results, top, bottom)
        good = [value for value in per_round[name] if value is not None]
        figures[name] = round(statistics.median(good), 3) if good else None
    return {**figures, "per_round": per_round,
            "note": "median over rounds of the ratio of the same round's docs/s"}


def run_ocr(results: dict[str, Any], parts: list[str], sizes: OcrSizes, work: Path) -> None:
    """Build (or reuse) the scans and run the chosen OCR parts, the limit first."""
    progress(f"ocr: {sizes.distinct_pages} distinct scanned pages (cached in the temp folder)")
    corpus = scan_corpus(sizes.distinct_pages)
    measures: dict[str, Callable[[], dict[str, Any]]] = {
        "ocr_limit": lambda: measure_ocr_limit(throughput_pdfs(corpus, sizes),
                                               os.cpu_count() or 1),
        "ocr_throughput": lambda: measure_ocr_throughput(corpus, sizes, work, free_port()),
        "ocr_scaling": lambda: measure_ocr_scaling(corpus, sizes, work, free_port()),
        "ocr_latency": lambda: measure_ocr_latency(corpus, sizes, work, free_port()),
    }
    for part in OCR_PARTS:
        if part in parts:
            results[part] = attempt(part, measures[part])
    limit = results.get("ocr_limit", {}).get("pages_per_s")
    docproc = results.get("ocr_throughput", {}).get("pages_per_s")
    results["ocr_ratio"] = round(docproc / limit, 3) if limit and docproc else None


def run_parts(
    results: dict[str, Any], parts: list[str], sizes: Sizes, work: Path, repeat: int,
    ocr: OcrSizes,
) -> None:
    """Build the corpus when needed and run the chosen parts in order."""
    if set(THROUGHPUT) & set(parts):
        progress(f"corpus: building {sizes.pdfs} PDFs + {sizes.jpegs} JPEGs")
        corpus = build_corpus(work / "corpus", sizes.pdfs, sizes.jpegs)
        results["meta"]["corpus_bytes"] = corpus.bytes
        run_throughput(results, parts, corpus, work, repeat)
    for part, (key, mode, style) in LATENCY.items():
        if part in parts:
            results[key] = attempt(key, functools.partial(
                measure_latency, work, free_port(), mode, sizes.latency_drops, style))
    if "scale" in parts:
        results["scale_startup"] = attempt(
            "scale_startup", functools.partial(measure_startup_claim, work, sizes.startup_files))
        results["scale_burst"] = attempt(
            "scale_burst", functools.partial(measure_burst_claim, work, sizes.burst_files))
    if set(OCR_PARTS) & set(parts):
        run_ocr(results, parts, ocr, work)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table, write the result files; return the exit status."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every started process is stopped and temp files removed.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    sizes, ocr = (QUICK, OCR_QUICK) if args.quick else (FULL, OCR_FULL)
    started = time.monotonic()
    results: dict[str, Any] = {"meta": _meta(sizes, ocr)}
    progress(f"docproc imported from {results['meta']['docproc_imported_from']}")
    work = Path(tempfile.mkdtemp(prefix="dpb-", dir="/tmp"))  # short: unix socket paths
    try:
        run_parts(results, args.only, sizes, work, max(1, args.repeat), ocr)
    except BenchError as exc:
        results["corpus"] = {"error": str(exc)}
    except KeyboardInterrupt:
        progress("interrupted: stopping what was started and removing temp files")
        return 130
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["meta"]["duration_s"] = round(time.monotonic() - started, 1)
    results["meta"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["ratios"] = ratios(results)
    print(render_text(results))
    json_path, md_path = write_outputs(args.out, results)
    print(f"\nwritten: {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
