"""`docproc status`: counts per state, throughput, queues, workers and recent failures."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from rich.text import Text

from docproc.cli.common import EXIT_FAILURE, EXIT_OK, connect
from docproc.cli.output import clip, line_width, safe, say, table
from docproc.settings import Settings
from docproc.units import human_bytes

# Why the watcher waits on a file, in words (docproc.watcher.WAIT_REASONS).
WAIT_WORDS = {
    "open_for_writing": "open for writing",
    "quiet_period": "quiet period after close",
    "incomplete": "incomplete structure",
    "settling": "settling",
    "empty": "empty, waiting for content",
}
# On a terminal: headings stand out, and so do the lines saying something needs a person.
STYLES = (
    (r"(?m)^(STATE|STAGE) .*$", "bold"),
    (r"(?m)^Recent failures .*$", "bold red"),
    (r"(?m)^(held|inbox     MISSING|inbox     no watcher|workers   none) .*$", "yellow"),
)


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    """Print the state of docproc, as text or (--json) as the API's snapshot."""
    from docproc.status.documents import failures
    from docproc.status.reports import ReportCache
    from docproc.status.snapshot import collect

    ledger = connect(settings, "status")
    if ledger is None:
        return EXIT_FAILURE
    snapshot = collect(settings, ledger)
    snapshot["failures"] = failures(ledger, ReportCache(settings), limit=10)
    if args.json:
        print(json.dumps(snapshot, indent=2))
    else:
        say(styled(render_status(settings, snapshot, time.time(), line_width())))
    return EXIT_OK


def styled(text: str) -> Text:
    """Return the status text with its headings and warnings styled."""
    shown = Text(text)
    for pattern, style in STYLES:
        shown.highlight_regex(pattern, style)
    return shown


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"


def _waited(entry: dict[str, Any]) -> str:
    """Return how long a file has waited: "for 3.2 s", "for 14 min" or "since 02:14:07"."""
    seconds = float(entry.get("waiting_seconds") or 0)
    if seconds < 60:
        return f"for {seconds:.1f} s"
    if seconds < 3600 or not entry.get("since"):
        return f"for {seconds / 60:.0f} min"
    from docproc.status.timestamps import parse_since

    since = time.localtime(parse_since(entry["since"]))
    return time.strftime("since %H:%M:%S" if seconds < 86400 else "since %Y-%m-%d %H:%M", since)


def waiting_lines(watcher: dict[str, Any], width: int) -> list[str]:
    """Return the section listing the files that wait for their writer, empty when none."""
    files = watcher.get("waiting") or []
    if not files:
        return []
    rows = [(safe(entry["relpath"]), human_bytes(entry["bytes"]), _waited(entry),
             WAIT_WORDS.get(entry["reason"], safe(str(entry["reason"])))) for entry in files]
    size_width = max(len(row[1]) for row in rows)
    wait_width = max(len(row[2]) for row in rows)
    why_width = max(len(row[3]) for row in rows)
    # Long names are cut rather than the reason, which is what the section is for.
    room = width - 4 - size_width - wait_width - why_width - 6
    name_width = min(max(len(row[0]) for row in rows), max(20, room))
    lines = ["  waiting for their writer:"]
    lines.extend(clip(f"    {clip(name, name_width):<{name_width}}  {size:>{size_width}}  "
                      f"{waited:<{wait_width}}  {why}", width)
                 for name, size, waited, why in rows)
    more = sum((watcher.get("waiting_by_reason") or {}).values()) - len(files)
    if more > 0:
        lines.append(f"    and {more:,} more")
    return lines


def _ago(iso_time: str | None, now: float) -> str:
    if not iso_time:
        return "-"
    from docproc.status.timestamps import parse_since

    seconds = max(0.0, now - parse_since(iso_time))
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h ago"
    return iso_time[:10]


def _held_fact(held: dict[str, Any], now: float) -> list[tuple[str, str]]:
    if not held.get("count"):
        return []
    return [("held", f"outbox not writable since {_ago(held.get('since'), now)}, "
                     f"{held['count']:,} documents held: {safe(held.get('reason') or '')}")]


def _ocr_fact(ocr: dict[str, Any]) -> list[tuple[str, str]]:
    if not ocr.get("pages"):
        return []
    return [("ocr", f"{ocr['pages_per_minute']:g} pages a minute (last 5 min)   "
                    f"{ocr['pages']:,} pages read in all")]


def render_status(settings: Settings, snapshot: dict[str, Any], now: float,
                  width: int = 10_000) -> str:
    """Return `docproc status` as text for a person, long lines cut to width."""
    counts, rate = snapshot["counts"], snapshot["throughput"]
    watcher, spool, oldest = snapshot["watcher"], snapshot["spool"], snapshot["oldest_unfinished"]
    out = [f"docproc   inbox {settings.inbox}   outbox {settings.outbox}", ""]
    out.append(table([[state, f"{count:,}"] for state, count in counts.items()],
                     ["STATE", "DOCUMENTS"], right=[1], indent="", width=width))
    out.append("")
    queues = "   ".join(f"{queue} {'?' if depth is None else depth}"
                        for queue, depth in snapshot["queues"].items())
    inbox = (f"{watcher['backlog']} waiting in the inbox ({watcher['online']} watcher"
             f"{'s' if watcher['online'] != 1 else ''} online)" if watcher["online"]
             else "no watcher online: dropped files wait")
    seen = watcher.get("inbox") or {}
    if seen.get("state") == "missing":
        inbox = (f"MISSING ({seen['reason']}) since {seen['since']}: dropped files are not "
                 "seen until it is back")
    facts = [
        ("finished", f"{rate['last_1m']} in the last minute   {rate['last_5m']} in 5 min   "
                     f"{rate['last_15m']} in 15 min"),
        ("queues", f"{queues}   (tasks waiting)"),
        *_ocr_fact(snapshot.get("ocr") or {}),
        ("inbox", inbox),
        ("spool", f"{spool['files']} claimed files, {human_bytes(spool['bytes'])}"),
        *_held_fact(snapshot.get("held") or {}, now),
        ("oldest", "nothing unfinished" if oldest is None else
         f"{safe(oldest['key'])} unfinished for {oldest['age_seconds']:.0f} s"),
        ("workers", f"{len(snapshot['workers'])} online" if snapshot["workers"]
         else "none online: nothing is processed"),
    ]
    for name, value in facts:
        out.append(f"{name:<10}{value}")
        if name == "inbox":
            out.extend(waiting_lines(watcher, width))
    out.extend(f"  {safe(worker['name'])}  holding {worker['holding']}"
               for worker in snapshot["workers"])
    timed = [(stage, t) for stage, t in snapshot["stages"].items() if t["count"]]
    if timed:
        out.append("")
        out.append(table([[stage, f"{t['count']:,}", _ms(t["p50_ms"]), _ms(t["p95_ms"]),
                           _ms(t["mean_ms"])] for stage, t in timed],
                         ["STAGE", "DOCUMENTS", "P50", "P95", "MEAN"], right=[1, 2, 3, 4],
                         indent="", width=width))
    failures = snapshot.get("failures") or []
    if failures:
        out.append("")
        out.append(f"Recent failures ({counts.get('failed', len(failures)):,} failed in all)")
        out.extend(failure_lines([(doc["key"], doc["relpath"], _ago(doc.get("finished_at"), now),
                                   doc.get("error"), doc.get("error_type")) for doc in failures],
                                 width))
        out.append("Send them again with: docproc retry KEY...   or   docproc retry --all-failed")
    return "\n".join(out)


def failure_lines(
    failures: Sequence[tuple[str, str, str, dict[str, Any] | None, str | None]], width: int
) -> list[str]:
    """Return two lines per failure: key, file and when; then its type and reason, indented."""
    lines = []
    for key, relpath, when, error, error_type in failures:
        error = error or {}
        reason = f"{error.get('type') or error_type or 'failed'}: {error.get('message') or ''}"
        lines.append(clip(f"  {safe(key)}  {safe(relpath)}" + (f"  ({when})" if when else ""),
                          width))
        lines.append(clip(f"      {safe(reason.rstrip(': '))}", width))
    return lines
