"""Measure docproc in one run and print the figures: `python -m benchmarks.run [--quick]`.

Parts: limit, inproc, burst (throughput on one corpus), latency in events and polling
mode, and the watcher at scale. Figures go to <out>/latest.json and <out>/latest.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
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

from benchmarks.common import REPO, BenchError, free_port, progress
from benchmarks.corpus import Corpus, build_corpus
from benchmarks.latency import measure_latency
from benchmarks.report import render_text, write_outputs
from benchmarks.scale import measure_burst_claim, measure_startup_claim
from benchmarks.throughput import measure_burst, measure_inproc, measure_limit

PARTS = ("limit", "inproc", "burst", "latency", "scale")
THROUGHPUT = ("limit", "inproc", "burst")


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
                        help="60 PDFs + 12 JPEGs and 10,000 start-up files")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results",
                        help="folder of latest.json and latest.md (default: %(default)s)")
    parser.add_argument("--only", type=lambda s: s.split(","), default=list(PARTS),
                        help=f"comma-separated parts to run, of {','.join(PARTS)}")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of limit, inproc and burst, best kept (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (debugging)")
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
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


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the run with the most docs/s, noting every run's docs/s and errors."""
    good = [run for run in runs if "error" not in run]
    if not good:
        return runs[-1]
    best = max(good, key=lambda run: float(run["docs_per_s"]))
    return {**best, "runs_docs_per_s": [run.get("docs_per_s") for run in runs],
            "runs_errors": [run["error"] for run in runs if "error" in run]}


def _throughput_measure(name: str, corpus: Corpus, work: Path) -> Callable[[], dict[str, Any]]:
    if name == "limit":
        return functools.partial(measure_limit, corpus, work)
    if name == "inproc":
        return functools.partial(measure_inproc, corpus, work)
    return functools.partial(measure_burst, corpus, work, free_port())


def run_throughput(
    results: dict[str, Any], parts: list[str], corpus: Corpus, work: Path, repeat: int
) -> None:
    """Run limit, inproc and burst in interleaved rounds; keep the best run of each."""
    chosen = [name for name in THROUGHPUT if name in parts]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    for round_number in range(1, repeat + 1):
        for name in chosen:
            label = f"{name} (round {round_number}/{repeat})"
            runs[name].append(attempt(label, _throughput_measure(name, corpus, work)))
    for name in chosen:
        results[name] = best_of(runs[name])


def _commit() -> str:
    try:
        done = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def _meta(sizes: Sizes) -> dict[str, Any]:
    return {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "size": sizes.name, "cpus": os.cpu_count(), "commit": _commit(),
        "python": sys.version.split()[0], "sizes": sizes.__dict__,
        "corpus": f"{sizes.pdfs} PDFs + {sizes.jpegs} JPEGs",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def ratios(results: dict[str, Any]) -> dict[str, float | None]:
    """Return burst/inproc, burst/limit and inproc/limit from the docs/s figures."""
    def rate(name: str) -> float | None:
        part = results.get(name)
        value = part.get("docs_per_s") if isinstance(part, dict) else None
        return float(value) if value else None

    def ratio(a: str, b: str) -> float | None:
        top, bottom = rate(a), rate(b)
        return round(top / bottom, 3) if top and bottom else None

    return {"burst/inproc": ratio("burst", "inproc"), "burst/limit": ratio("burst", "limit"),
            "inproc/limit": ratio("inproc", "limit")}


def run_parts(
    results: dict[str, Any], parts: list[str], sizes: Sizes, work: Path, repeat: int
) -> None:
    """Build the corpus when needed and run the chosen parts in order."""
    if set(THROUGHPUT) & set(parts):
        progress(f"corpus: building {sizes.pdfs} PDFs + {sizes.jpegs} JPEGs")
        corpus = build_corpus(work / "corpus", sizes.pdfs, sizes.jpegs)
        results["meta"]["corpus_bytes"] = corpus.bytes
        run_throughput(results, parts, corpus, work, repeat)
    if "latency" in parts:
        for mode in ("events", "polling"):
            results[f"latency_{mode}"] = attempt(
                f"latency_{mode}",
                functools.partial(measure_latency, work, free_port(), mode, sizes.latency_drops),
            )
    if "scale" in parts:
        results["scale_startup"] = attempt(
            "scale_startup", functools.partial(measure_startup_claim, work, sizes.startup_files))
        results["scale_burst"] = attempt(
            "scale_burst", functools.partial(measure_burst_claim, work, sizes.burst_files))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table, write the result files; return the exit status."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every started process is stopped and temp files removed.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    results: dict[str, Any] = {"meta": _meta(sizes)}
    work = Path(tempfile.mkdtemp(prefix="dpb-", dir="/tmp"))  # short: unix socket paths
    try:
        run_parts(results, args.only, sizes, work, max(1, args.repeat))
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
