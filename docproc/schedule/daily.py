"""The daily batch report: summarize a local day's documents and write its JSON and HTML.

The documents come from the ledger (in chunks, which schedule/tasks.py spreads over a Celery
chord) or, when its Redis does not answer, from the outbox folders. A report.json that cannot
be read is listed as not summarized. The report goes to `outbox/reports/daily-YYYY-MM-DD.json`
and `.html`, each replaced whole.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import RedisError

from docproc.broker import redis_client
from docproc.ledger.redis_ledger import RedisLedger
from docproc.model import State
from docproc.report import read, read_file, utc_now
from docproc.schedule.clock import parse_clock
from docproc.schedule.html import render
from docproc.schedule.summary import (
    UNFINISHED,
    Summary,
    Window,
    add_document,
    finish,
    merge,
    new_summary,
)
from docproc.settings import Settings

# Documents per summary task: a day of 100,000 documents is 200 small tasks, not one chord
# of 100,000.
CHUNK = 500
REPORTS = "reports"
READ_ERRORS = (OSError, ValueError, TypeError, KeyError, AttributeError)


def report_paths(outbox: Path, day: datetime.date) -> tuple[Path, Path]:
    """Return the JSON and HTML paths of a day's report."""
    folder = outbox / REPORTS
    return folder / f"daily-{day.isoformat()}.json", folder / f"daily-{day.isoformat()}.html"


def yesterday() -> datetime.date:
    """Return yesterday's local date."""
    return datetime.date.today() - datetime.timedelta(days=1)


def _why(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "its report.json is missing"
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return "its report.json is not valid JSON"
    if isinstance(exc, OSError):
        return f"its report.json cannot be read: {exc.strerror or exc}"
    return f"its report.json is not a docproc report ({exc})"


def add_record(summary: Summary, window: Window, key: str, record: dict[str, Any] | None,
               reason: str | None = None) -> None:
    """Add a ledger record's document to a summary, reading its report.json unless told why not."""
    if record is None:
        add_document(summary, window, key=key, status="unknown",
                     received_ts=window.start.timestamp(), name=key, relpath=key, folder="",
                     reason="its ledger record is gone")
        return
    status = str(record.get("status") or "unknown")
    folder = str(record.get("outdir") or "")
    facts: dict[str, Any] = {
        "key": key, "status": status, "folder": folder,
        "received_ts": float(record.get("received_ts") or window.start.timestamp()),
        "name": str(record.get("name") or key), "relpath": str(record.get("relpath") or key),
    }
    if status in UNFINISHED:
        add_document(summary, window, **facts)
    elif reason or not folder:
        add_document(summary, window, **facts, reason=reason or "no outbox folder was recorded")
    else:
        try:
            add_document(summary, window, **facts, report=read(Path(folder)))
        except READ_ERRORS as exc:
            add_document(summary, window, **facts, reason=_why(exc))


def summarize_keys(ledger: RedisLedger, keys: list[str], window: Window,
                   reason: str | None = None) -> Summary:
    """Return the partial summary of documents named by their ledger keys."""
    summary = new_summary()
    for key, record in zip(keys, ledger.get_many(keys), strict=True):
        add_record(summary, window, key, record, reason)
    return summary


def _utc_days(window: Window) -> list[datetime.date]:
    first = window.start.astimezone(datetime.UTC).date()
    last = (window.end - datetime.timedelta(microseconds=1)).astimezone(datetime.UTC).date()
    return [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]


def summarize_outbox(outbox: Path, window: Window) -> Summary:
    """Return the summary of a day from the outbox folders alone (no ledger: finished only)."""
    summary = new_summary()
    start, end = window.start.timestamp(), window.end.timestamp()
    for section in ("documents", "failed", "retried"):
        for day in _utc_days(window):
            for path in sorted((outbox / section / day.isoformat()).glob("*/report.json")):
                folder = path.parent
                key = folder.name.rsplit(".", 1)[-1]
                try:
                    report = read_file(path)
                    source = report.source
                    received = datetime.datetime.fromisoformat(
                        source["received_at"].replace("Z", "+00:00")).timestamp()
                except READ_ERRORS as exc:
                    if day == window.day:
                        add_document(summary, window, key=key, status="unknown",
                                     received_ts=start, name=folder.name, relpath=folder.name,
                                     folder=str(folder), reason=_why(exc))
                    continue
                if start <= received < end:
                    # The retried section (a folder) holds documents that are retried now.
                    status = State.RETRIED if section == "retried" else report.status
                    add_document(summary, window, key=key, status=status,
                                 received_ts=received, name=str(source.get("name", key)),
                                 relpath=str(source.get("relpath", key)), folder=str(folder),
                                 report=report)
    return summary


def _write_atomically(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_report(outbox: Path, window: Window, summary: Summary,
                 source: str) -> tuple[dict[str, Any], list[Path]]:
    """Write a day's report as JSON and HTML, each replaced whole; return it and the paths."""
    report = finish(summary, window, utc_now(), source)
    json_path, html_path = report_paths(outbox, window.day)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(json_path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    _write_atomically(html_path, render(report, json_path.name))
    return report, [json_path, html_path]


@dataclass(frozen=True)
class Built:
    """A report built in this process: its content, its files, and a note for the reader."""

    report: dict[str, Any]
    paths: list[Path]
    note: str = ""

    @property
    def unfinished(self) -> int:
        """Return how many of the day's documents were still being processed."""
        status = self.report["by_status"]
        return int(sum(status.get(state, 0) for state in UNFINISHED))


def build_now(settings: Settings, day: datetime.date) -> Built:
    """Build a day's report in this process.

    The ledger lists the day's documents; when its Redis does not answer, the outbox folders do.
    """
    window = Window.of(day)
    note = ""
    try:
        ledger = RedisLedger(redis_client(settings))
        keys = ledger.received_between(window.start.timestamp(), window.end.timestamp())
        summary = merge([summarize_keys(ledger, keys[at:at + CHUNK], window)
                         for at in range(0, len(keys), CHUNK)])
        source = "ledger"
    except RedisError as exc:
        note = (f"the ledger at {settings.redis_url} does not answer ({exc}); built from the "
                "outbox folders instead, which hold finished documents only")
        summary = summarize_outbox(settings.outbox, window)
        source = "outbox"
    json_path, html_path = report_paths(settings.outbox, window.day)
    if not summary["documents"] and json_path.exists():
        kept = json.loads(json_path.read_text(encoding="utf-8"))
        if kept.get("documents"):
            # Retention purged the day since: its report is all that is left of it.
            return Built(kept, [json_path, html_path], (
                f"no documents of {day} are left (purged after retention.days?); "
                "kept the report built before"))
    report, paths = write_report(settings.outbox, window, summary, source)
    return Built(report, paths, note)


def missing_days(
    settings: Settings, ledger: RedisLedger, now: datetime.datetime
) -> list[datetime.date]:
    """Return the recent days that had documents but have no report, newest first.

    Yesterday counts only once today's scheduled run is past; at most retention.days back.
    """
    today = now.date()
    newest = today - datetime.timedelta(days=1 if now.time() >= parse_clock(
        settings.schedule.daily_report) else 2)
    days = []
    for back in range(settings.retention.days):
        day = newest - datetime.timedelta(days=back)
        if report_paths(settings.outbox, day)[0].exists():
            continue
        window = Window.of(day)
        if ledger.count_received_between(window.start.timestamp(), window.end.timestamp()):
            days.append(day)
    return days


def headline(report: dict[str, Any]) -> str:
    """Return the one line that sums up a report: its day, documents, pages and words."""
    status = report["by_status"]
    counts = ", ".join(f"{count} {name}" for name, count in status.items() if count)
    return (f"daily report of {report['date']}: {report['documents']} documents"
            f"{' (' + counts + ')' if counts else ''}; {report['pages']} pages, "
            f"{report['words']} words")
