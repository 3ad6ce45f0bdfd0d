"""Turn the figures into a short text table, a markdown table and a JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Row = list[str]


@dataclass
class Table:
    """A titled table of text cells, rendered as aligned text or markdown."""

    title: str
    headers: Row
    rows: list[Row] = field(default_factory=list)

    def text(self) -> str:
        """Return the table as aligned plain text."""
        widths = [max(len(r[i]) for r in [self.headers, *self.rows])
                  for i in range(len(self.headers))]
        line = "  ".join
        lines = [self.title, "  " + line(h.ljust(w) for h, w in zip(self.headers, widths,
                                                                     strict=True))]
        for row in self.rows:
            cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                             strict=True))]
            lines.append("  " + line(cells))
        return "\n".join(lines)

    def markdown(self) -> str:
        """Return the table as GitHub markdown."""
        lines = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.headers)))
                 + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def fmt(value: Any, digits: int = 1) -> str:
    """Return a number as short text, or '-' when it is missing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _part(results: dict[str, Any], name: str) -> dict[str, Any]:
    part = results.get(name)
    return part if isinstance(part, dict) and "error" not in part else {}


# Burst result keys and how their files arrived (benchmarks.throughput.BURST_STYLES).
BURST_WORDS = (("burst", "renamed from inside"), ("burst_beside", "renamed from beside"),
               ("burst_in_place", "copied in place"), ("burst_folder", "a folder copied in"))


def throughput_table(results: dict[str, Any]) -> Table:
    """Return docs/s of limit, inproc and both bursts, and their same-round ratios."""
    table = Table("Throughput, pipeline.ocr: off (same corpus, 2 cores; best of the rounds; a "
                  "ratio is the median of the same rounds' ratios)",
                  ["measure", "docs", "seconds", "docs/s", "all rounds", "CPU ms/doc", "target"])
    limit, inproc = _part(results, "limit"), _part(results, "inproc")
    rows = (("limit (reference_limit.py)", limit, "seconds", "docs_per_s"),
            ("inproc (docproc process, work)", inproc, "work_seconds", "docs_per_s"),
            ("inproc (wall, with start-up)", inproc, "wall_seconds", "docs_per_s_wall"),
            *((f"burst, {words} (docproc up)", _part(results, key), "seconds", "docs_per_s")
              for key, words in BURST_WORDS))
    for label, part, seconds, rate in rows:
        rounds = " ".join(fmt(v) for v in part.get("runs_docs_per_s", [])) if rate == (
            "docs_per_s") else ""
        table.rows.append([label, fmt(part.get("docs")), fmt(part.get(seconds), 2),
                           fmt(part.get(rate)), rounds, fmt(part.get("cpu_ms_per_doc")), ""])
    ratios = results.get("ratios", {})
    per_round = ratios.get("per_round", {})
    # Copied styles wait watcher.quiet_seconds after the last write by design (scanners
    # reopen per page): their ratios show that cost, they have no throughput target.
    renamed = ("burst", "burst_beside")
    targets = [*((f"{key}/inproc", ">= 0.9" if key in renamed else "") for key, _ in BURST_WORDS),
               *((f"{key}/limit", ">= 0.6" if key in renamed else "") for key, _ in BURST_WORDS),
               ("inproc/limit", "")]
    for name, target in targets:
        rounds = " ".join(fmt(v, 2) for v in per_round.get(name, []))
        table.rows.append([name, "", "", fmt(ratios.get(name), 2), rounds, "", target])
    return table


LATENCIES = (("latency_events", "events, renamed from inside"),
             ("latency_events_beside", "events, renamed from beside"),
             ("latency_events_in_place", "events, written in place"),
             ("latency_events_folder", "events, a folder copied in"),
             ("latency_polling", "polling, renamed from inside"))


def _latency_target(name: str, part: dict[str, Any]) -> str:
    if name in ("latency_events_in_place", "latency_events_folder"):
        quiet = part.get("watcher", {}).get("quiet_seconds")
        return "p50 <= quiet + 150" if quiet is None else f"p50 <= {quiet * 1000 + 150:.0f}"
    return "p50 <= 50" if name.startswith("latency_events") else ""


def latency_table(results: dict[str, Any]) -> Table:
    """Return drop->report latencies per watcher mode and drop style."""
    table = Table("Latency drop -> report.json, idle docproc up, pipeline.ocr: off (ms; in "
                  "place: from the open)",
                  ["watcher mode, drop", "drops", "p50", "p95", "max", "report total p50",
                   "quiet s", "target"])
    for name, label in LATENCIES:
        part = _part(results, name)
        lat = part.get("latency_ms", {})
        quiet = part.get("watcher", {}).get("quiet_seconds") if part else None
        table.rows.append([label, fmt(part.get("drops")), fmt(lat.get("p50")),
                           fmt(lat.get("p95")), fmt(lat.get("max")),
                           fmt(part.get("report_total_ms", {}).get("p50")),
                           fmt(quiet) if part else "-", _latency_target(name, part)])
    return table


def scale_table(results: dict[str, Any]) -> Table:
    """Return the watcher's claim figures at scale."""
    table = Table("Watcher at scale (broker, no worker)",
                  ["case", "files", "claimed", "seconds", "claims/s", "inbox left",
                   "peak RSS MB", "target"])
    for name, target in (("scale_startup", "<= 60 s, < 300 MB"), ("scale_burst", "all claimed")):
        part = _part(results, name)
        table.rows.append([name, fmt(part.get("files")), fmt(part.get("recorded")),
                           fmt(part.get("seconds")), fmt(part.get("claims_per_s")),
                           fmt(part.get("inbox_left")), fmt(part.get("watcher_peak_rss_mb")),
                           target])
    return table


def backlog_table(results: dict[str, Any]) -> Table:
    """Return how long status and reconciler reads take at the start-up backlog."""
    part = _part(results, "scale_startup")
    queries = part.get("backlog_queries", {})
    table = Table(f"Reads at a backlog of {fmt(part.get('recorded'))} queued documents (ms)",
                  ["read", "ms", "who makes it"])
    who = {"ledger_counts_ms": "docproc status, /api/stats",
           "ledger_active_ms": "reconciler, every 3 s",
           "reconcile_queued_keys_ms": "reconciler, every 3 s"}
    for name, value in queries.items():
        table.rows.append([name.removesuffix("_ms"), fmt(value), who.get(name, "")])
    return table


def stages_table(results: dict[str, Any]) -> Table:
    """Return per-stage timings of the burst's and inproc's reports."""
    table = Table("Per-stage timings_ms from report.json (burst from inside vs inproc)",
                  ["timing", "burst p50", "burst p95", "burst sum s", "inproc p50",
                   "inproc p95", "inproc sum s"])
    burst = _part(results, "burst").get("stages_ms", {})
    inproc = _part(results, "inproc").get("stages_ms", {})
    for name in ("wait", "detect", "extract", "analyze", "thumbnail", "total"):
        b, i = burst.get(name, {}), inproc.get(name, {})
        table.rows.append([name, fmt(b.get("p50")), fmt(b.get("p95")), _seconds(b.get("sum")),
                           fmt(i.get("p50")), fmt(i.get("p95")), _seconds(i.get("sum"))])
    return table


def _seconds(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f}"


def hops_table(results: dict[str, Any]) -> Table:
    """Return the ledger's gaps between stages in the burst and in idle latency runs."""
    table = Table("Hops between stages from the ledger (ms)",
                  ["hop", "burst p50", "burst p95", "idle events p50", "idle events p95"])
    burst = _part(results, "burst").get("ledger_ms", {}).get("hops", {})
    idle = _part(results, "latency_events").get("ledger_ms", {}).get("hops", {})
    for name in dict.fromkeys([*burst, *idle]):
        b, i = burst.get(name, {}), idle.get(name, {})
        table.rows.append([name, fmt(b.get("p50")), fmt(b.get("p95")), fmt(i.get("p50")),
                           fmt(i.get("p95"))])
    return table


def breakdown_table(results: dict[str, Any]) -> Table:
    """Return each burst's timeline and how its worker CPU splits into stage work and overhead."""
    table = Table("Burst breakdown", ["figure", *(words for _, words in BURST_WORDS)])
    rows = [
        ("first doc recorded by the watcher (s after first drop)", "timeline_s", "first_recorded"),
        ("last doc recorded by the watcher (s)", "timeline_s", "last_recorded"),
        ("first doc finished (s)", "timeline_s", "first_finished"),
        ("last doc finished (s)", "timeline_s", "last_finished"),
        ("stage work per doc (ms, sum of timings_ms stages)", "derived", "stage_work_ms_per_doc"),
        ("worker CPU per doc (ms, main + children)", "derived", "worker_cpu_ms_per_doc"),
        ("worker CPU per doc outside stages (ms)", "derived", "worker_overhead_ms_per_doc"),
        ("stage work / (wall x cores)", "derived", "stage_work_share_of_capacity"),
    ]
    bursts = [_part(results, key) for key, _ in BURST_WORDS]
    for label, group, key in rows:
        values = [burst.get(group, {}).get(key) for burst in bursts]
        table.rows.append([label, *(fmt(v, 3 if isinstance(v, float) and v < 10 else 1)
                                    for v in values)])
    return table


def cpu_table(results: dict[str, Any]) -> Table:
    """Return the CPU seconds each supervisord program spent during the burst."""
    burst = _part(results, "burst")
    table = Table(f"CPU seconds per program during the burst from inside "
                  f"({fmt(burst.get('seconds'), 2)} s "
                  "wall x 2 cores)", ["program", "cpu s", "processes", "peak RSS MB (sum)"])
    programs = burst.get("programs_at_end", {})
    for name, cpu in sorted(burst.get("cpu_s_during_burst", {}).items(), key=lambda kv: -kv[1]):
        figures = programs.get(name, {})
        table.rows.append([name, fmt(cpu, 2), fmt(figures.get("processes")),
                           fmt(figures.get("peak_rss_mb"))])
    table.rows.append(["(benchmark poller)", fmt(burst.get("benchmark_cpu_s"), 2), "1", ""])
    table.rows.append(["(rest of the machine)", fmt(burst.get("other_cpu_s"), 2), "", ""])
    return table


def ocr_table(results: dict[str, Any]) -> Table:
    """Return the OCR measures: the pool limit, docproc's pages/s, scaling, latency."""
    pages = results.get("meta", {}).get("ocr_sizes", {})
    table = Table(f"OCR, pipeline.ocr: auto (generated A4 scans at 300 dpi; "
                  f"{pages.get('throughput_docs', '-')} scans x "
                  f"{pages.get('pages_per_doc', '-')} pages)",
                  ["measure", "pages", "seconds", "figure", "target"])
    limit, docproc = _part(results, "ocr_limit"), _part(results, "ocr_throughput")
    scaling, latency = _part(results, "ocr_scaling"), _part(results, "ocr_latency")
    lat = latency.get("latency_ms", {})
    table.rows += [
        ["ocr_limit (process pool, pages/s)", fmt(limit.get("pages")),
         fmt(limit.get("seconds"), 2), fmt(limit.get("pages_per_s"), 2), ""],
        ["docproc up (pages/s)", fmt(docproc.get("pages")), fmt(docproc.get("seconds"), 2),
         fmt(docproc.get("pages_per_s"), 2), ""],
        ["docproc up: cores its workers kept busy", "", "",
         _cores(docproc), ""],
        ["docproc up / ocr_limit", "", "", fmt(results.get("ocr_ratio"), 2), ">= 0.9"],
        ["one scan, workers.concurrency 1 (s; cores used)", fmt(scaling.get("pages")),
         fmt(scaling.get("seconds_1"), 1), _cores(scaling.get("one_process")), ""],
        ["one scan, workers.concurrency 2 (s; cores used)", fmt(scaling.get("pages")),
         fmt(scaling.get("seconds_2"), 1), _cores(scaling.get("two_processes")), ""],
        ["speed-up 2 processes / 1", "", "", fmt(scaling.get("speedup"), 2), ">= 1.8"],
        [f"small PDF latency during the scan, p50 ms ({fmt(latency.get('drops'))} drops)",
         fmt(latency.get("job_pages")), fmt(latency.get("job_seconds"), 1),
         fmt(lat.get("p50")), "<= 300"],
        ["small PDF latency during the scan, p95 ms", "", "", fmt(lat.get("p95")), ""],
    ]
    return table


def _cores(run: dict[str, Any] | None) -> str:
    return fmt((run or {}).get("worker_cores_used"), 2)


def tables(results: dict[str, Any]) -> list[Table]:
    """Return every table of the results."""
    return [throughput_table(results), latency_table(results), scale_table(results),
            backlog_table(results), stages_table(results), hops_table(results),
            breakdown_table(results), cpu_table(results), ocr_table(results)]


def errors(results: dict[str, Any]) -> list[str]:
    """Return one line per part that failed."""
    return [f"{name}: {part['error']}" for name, part in results.items()
            if isinstance(part, dict) and "error" in part]


def render_text(results: dict[str, Any]) -> str:
    """Return the whole report as plain text."""
    meta = results["meta"]
    head = (f"docproc benchmarks {meta['started_at']}  {meta['size']}: {meta['corpus']}  "
            f"({meta['cpus']} CPUs, commit {meta['commit']}, {meta['duration_s']:.0f} s)")
    body = "\n\n".join(t.text() for t in tables(results))
    failed = "\n".join(f"FAILED {line}" for line in errors(results))
    return "\n\n".join(part for part in (head, body, failed) if part)


def render_markdown(results: dict[str, Any]) -> str:
    """Return the whole report as markdown."""
    meta = results["meta"]
    head = (f"# docproc benchmarks\n\n{meta['started_at']}, {meta['size']} run: "
            f"{meta['corpus']}; {meta['cpus']} CPUs; commit `{meta['commit']}`; "
            f"took {meta['duration_s']:.0f} s.")
    body = "\n\n".join(t.markdown() for t in tables(results))
    failed = "\n".join(f"- **failed** {line}" for line in errors(results))
    return "\n\n".join(part for part in (head, body, failed) if part) + "\n"


def write_outputs(folder: Path, results: dict[str, Any]) -> tuple[Path, Path]:
    """Write <date>-<commit>.json and .md into folder (and latest.*); return the named pair.

    The named files are committed when a figure of theirs is quoted: every figure in the
    README names the file it came from.
    """
    folder.mkdir(parents=True, exist_ok=True)
    meta = results["meta"]
    stem = f"{meta['started_at'][:10]}-{meta['commit']}"
    number = 1
    while (folder / f"{stem}.json").exists():
        number += 1
        stem = f"{meta['started_at'][:10]}-{meta['commit']}-{number}"
    body, markdown = json.dumps(results, indent=2) + "\n", render_markdown(results)
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    for path, text in ((json_path, body), (md_path, markdown),
                       (folder / "latest.json", body), (folder / "latest.md", markdown)):
        path.write_text(text)
    return json_path, md_path
