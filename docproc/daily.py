"""The daily batch report: a Celery chord over a day's documents, its catch-up, `docproc report`.

Beat sends `docproc.daily.report` at `schedule.daily_report`. That task splits the previous
(local) day's documents into chunks and starts a chord: one `summarize` task per chunk reads
the chunk's report.json files and returns a partial summary; the `write` callback merges them
and writes `outbox/reports/daily-YYYY-MM-DD.json` and `.html`. A report.json that cannot be
read is listed as not summarized; a summary task that fails as a whole (time limit, lost
worker) fails the chord, and its errback `fallback` writes the report from the chunks that
did return, listing the documents of the others.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from celery import chord
from celery.result import AsyncResult
from redis import RedisError

from docproc import daily_html
from docproc.app import app
from docproc.broker import redis_client
from docproc.daily_summary import Summary, Window, add_document, finish, merge, new_summary
from docproc.ledger import Ledger
from docproc.schedules import parse_clock
from docproc.settings import Settings
from docproc.stages import utc_now

log = logging.getLogger("docproc.daily")
# Documents per summary task: a day of 100,000 documents is 200 small tasks, not one chord
# of 100,000.
CHUNK = 500
# Which documents each summary task had, for the errback: kept this long.
RUN_SECONDS = 2 * 86400
# Keeps the scheduled run and the catch-up from building the same day twice at start-up.
BUILD_LOCK_SECONDS = 120
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
    if status in ("queued", "running"):
        add_document(summary, window, **facts)
    elif reason or not folder:
        add_document(summary, window, **facts, reason=reason or "no outbox folder was recorded")
    else:
        try:
            report = json.loads((Path(folder) / "report.json").read_text(encoding="utf-8"))
            add_document(summary, window, **facts, report=report)
        except READ_ERRORS as exc:
            add_document(summary, window, **facts, reason=_why(exc))


def summarize_keys(ledger: Ledger, keys: list[str], window: Window,
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
                    report = json.loads(path.read_text(encoding="utf-8"))
                    source = report["source"]
                    received = datetime.datetime.fromisoformat(
                        source["received_at"].replace("Z", "+00:00")).timestamp()
                except READ_ERRORS as exc:
                    if day == window.day:
                        add_document(summary, window, key=key, status="unknown",
                                     received_ts=start, name=folder.name, relpath=folder.name,
                                     folder=str(folder), reason=_why(exc))
                    continue
                if start <= received < end:
                    status = "retried" if section == "retried" else str(report.get("status"))
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
    _write_atomically(html_path, daily_html.render(report, json_path.name))
    return report, [json_path, html_path]


def build_now(settings: Settings, day: datetime.date) -> tuple[dict[str, Any], list[Path], str]:
    """Build a day's report in this process; return it, its paths and a note for the reader.

    The ledger lists the day's documents; when its Redis does not answer, the outbox folders do.
    """
    window = Window.of(day)
    note = ""
    try:
        ledger = Ledger(redis_client(settings))
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
            return kept, [json_path, html_path], (
                f"no documents of {day} are left (purged after retention.days?); "
                "kept the report built before")
    report, paths = write_report(settings.outbox, window, summary, source)
    return report, paths, note


def missing_days(settings: Settings, ledger: Ledger, now: datetime.datetime) -> list[datetime.date]:
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


def start_chord(day: datetime.date, chunk_size: int = CHUNK) -> int:
    """Send the chord that builds a day's report; return how many summary tasks it has."""
    window = Window.of(day)
    keys = app.ledger.received_between(window.start.timestamp(), window.end.timestamp())
    chunks = [keys[at:at + chunk_size] for at in range(0, len(keys), max(1, chunk_size))]
    if not chunks:
        write_report(app.settings.outbox, window, new_summary(), "ledger")
        log.info("daily report of %s: no documents", day)
        return 0
    run = secrets.token_hex(8)
    app.ledger.keep(f"daily:run:{run}", {str(n): json.dumps(chunk) for n, chunk in
                                         enumerate(chunks)}, RUN_SECONDS)
    header = [summarize_task.s(chunk, day.isoformat()).set(task_id=f"{run}-{n}")
              for n, chunk in enumerate(chunks)]
    body = write_task.s(day.isoformat())
    body.on_error(fallback_task.s(day.isoformat(), run))
    chord(header)(body)
    log.info("daily report of %s: summarizing %d documents in %d tasks", day, len(keys),
             len(chunks))
    return len(chunks)


@app.task(name="docproc.daily.report", ignore_result=True)
def report_task(day: str | None = None, chunk_size: int = CHUNK) -> None:
    """Start building a day's report (yesterday's by default), unless it is being built."""
    target = datetime.date.fromisoformat(day) if day else yesterday()
    if not app.ledger.lock(f"daily:{target.isoformat()}", BUILD_LOCK_SECONDS):
        log.info("daily report of %s: already being built", target)
        return
    start_chord(target, chunk_size)


@app.task(name="docproc.daily.summarize", ignore_result=False, autoretry_for=(RedisError,),
          retry_backoff=True, max_retries=3)
def summarize_task(keys: list[str], day: str) -> Summary:
    """Summarize a chunk of a day's documents (a chord header task)."""
    return summarize_keys(app.ledger, keys, Window.of(datetime.date.fromisoformat(day)))


@app.task(name="docproc.daily.write", ignore_result=True)
def write_task(parts: list[Summary], day: str) -> None:
    """Merge the chunks' summaries and write the day's report (the chord callback)."""
    window = Window.of(datetime.date.fromisoformat(day))
    report, paths = write_report(app.settings.outbox, window, merge(parts), "ledger")
    log.info("daily report of %s: %d documents -> %s", day, report["documents"], paths[0])


@app.task(name="docproc.daily.fallback", ignore_result=True)
def fallback_task(failed_task_id: str, day: str, run: str) -> None:
    """Write the day's report from the chunks that were summarized (the chord's errback)."""
    window = Window.of(datetime.date.fromisoformat(day))
    parts = []
    for number, keys in sorted(app.ledger.kept(f"daily:run:{run}").items(),
                               key=lambda item: int(item[0])):
        result = AsyncResult(f"{run}-{number}", app=app)
        if result.successful():
            parts.append(result.result)
            continue
        failure = result.result
        why = (f"{type(failure).__name__}: {failure}" if isinstance(failure, BaseException)
               else result.state.lower())
        parts.append(summarize_keys(app.ledger, json.loads(keys), window,
                                    reason=f"its summary task failed ({why})"))
    if not parts:
        log.error("daily report of %s: the chord failed and its chunks are no longer known; "
                  "run `docproc report --date %s`", day, day)
        return
    report, paths = write_report(app.settings.outbox, window, merge(parts), "ledger")
    log.warning("daily report of %s: %d of %d documents could not be summarized -> %s", day,
                len(report["not_summarized"]), report["documents"], paths[0])


@app.task(name="docproc.daily.catch_up", ignore_result=True)
def catch_up_task() -> list[str]:
    """Build the reports of recent days that had documents but got no report (daemon down)."""
    days = missing_days(app.settings, app.ledger, datetime.datetime.now().astimezone())
    for day in days:
        report_task.delay(day.isoformat())
    if days:
        log.info("catching up the daily reports of %s", ", ".join(map(str, days)))
    return [day.isoformat() for day in days]


def _headline(report: dict[str, Any]) -> str:
    status = report["by_status"]
    counts = ", ".join(f"{count} {name}" for name, count in status.items() if count)
    return (f"daily report of {report['date']}: {report['documents']} documents"
            f"{' (' + counts + ')' if counts else ''}; {report['pages']} pages, "
            f"{report['words']} words")


def report_command(settings: Settings, day: datetime.date | None) -> int:
    """Build a day's report now (yesterday's by default) and say where it is."""
    today = datetime.date.today()
    day = day or yesterday()
    if day > today:
        print(f"docproc report: {day} is in the future", file=sys.stderr)
        return 2
    try:
        report, paths, note = build_now(settings, day)
    except OSError as exc:
        print(f"docproc report: cannot write into {settings.outbox / REPORTS}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    if note:
        print(f"docproc report: {note}", file=sys.stderr)
    print(_headline(report))
    if report["not_summarized"]:
        print(f"  {len(report['not_summarized'])} could not be summarized (listed in the report)")
    unfinished = report["by_status"].get("queued", 0) + report["by_status"].get("running", 0)
    if unfinished:
        print(f"  {unfinished} still being processed")
    for path in paths:
        print(f"  {path}")
    return 0
