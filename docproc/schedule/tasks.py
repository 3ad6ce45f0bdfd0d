"""Celery glue of the scheduled work: the daily report's chord, its catch-up, the purge.

Beat sends `docproc.daily.report` at `schedule.daily_report`. That task splits the previous
(local) day's documents into chunks and starts a chord: one `summarize` task per chunk reads
the chunk's report.json files and returns a partial summary; the `write` callback merges them
and writes the day's report. A summary task that fails as a whole (time limit, lost worker)
fails the chord, and its errback `fallback` writes the report from the chunks that did
return, listing the documents of the others. Beat sends `docproc.purge` at `schedule.purge`.
"""

from __future__ import annotations

import datetime
import json
import logging
import secrets

from celery import chord
from celery.result import AsyncResult
from redis import RedisError

from docproc.app import app
from docproc.ledger.keyspace import daily_lock, daily_run
from docproc.schedule.daily import (
    CHUNK,
    missing_days,
    summarize_keys,
    write_report,
    yesterday,
)
from docproc.schedule.retention import purge
from docproc.schedule.summary import Summary, Window, merge, new_summary
from docproc.units import human_bytes

daily_log = logging.getLogger("docproc.daily")
retention_log = logging.getLogger("docproc.retention")
# Which documents each summary task had, for the errback: kept this long.
RUN_SECONDS = 2 * 86400
# Keeps the scheduled run and the catch-up from building the same day twice at start-up.
BUILD_LOCK_SECONDS = 120


def start_chord(day: datetime.date, chunk_size: int = CHUNK) -> int:
    """Send the chord that builds a day's report; return how many summary tasks it has."""
    window = Window.of(day)
    keys = app.ledger.received_between(window.start.timestamp(), window.end.timestamp())
    chunks = [keys[at:at + chunk_size] for at in range(0, len(keys), max(1, chunk_size))]
    if not chunks:
        write_report(app.settings.outbox, window, new_summary(), "ledger")
        daily_log.info("daily report of %s: no documents", day)
        return 0
    run = secrets.token_hex(8)
    app.ledger.keep(daily_run(run), {str(n): json.dumps(chunk) for n, chunk in
                                         enumerate(chunks)}, RUN_SECONDS)
    header = [summarize_task.s(chunk, day.isoformat()).set(task_id=f"{run}-{n}")
              for n, chunk in enumerate(chunks)]
    body = write_task.s(day.isoformat())
    body.on_error(fallback_task.s(day.isoformat(), run))
    chord(header)(body)
    daily_log.info("daily report of %s: summarizing %d documents in %d tasks", day, len(keys),
                   len(chunks))
    return len(chunks)


@app.task(name="docproc.daily.report", ignore_result=True)
def report_task(day: str | None = None, chunk_size: int = CHUNK) -> None:
    """Start building a day's report (yesterday's by default), unless it is being built."""
    target = datetime.date.fromisoformat(day) if day else yesterday()
    if not app.ledger.lock(daily_lock(target.isoformat()), BUILD_LOCK_SECONDS):
        daily_log.info("daily report of %s: already being built", target)
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
    daily_log.info("daily report of %s: %d documents -> %s", day, report["documents"], paths[0])


@app.task(name="docproc.daily.fallback", ignore_result=True)
def fallback_task(failed_task_id: str, day: str, run: str) -> None:
    """Write the day's report from the chunks that were summarized (the chord's errback)."""
    window = Window.of(datetime.date.fromisoformat(day))
    parts = []
    for number, keys in sorted(app.ledger.kept(daily_run(run)).items(),
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
        daily_log.error("daily report of %s: the chord failed and its chunks are no longer "
                        "known; run `docproc report --date %s`", day, day)
        return
    report, paths = write_report(app.settings.outbox, window, merge(parts), "ledger")
    daily_log.warning("daily report of %s: %d of %d documents could not be summarized -> %s",
                      day, len(report["not_summarized"]), report["documents"], paths[0])


@app.task(name="docproc.daily.catch_up", ignore_result=True)
def catch_up_task() -> list[str]:
    """Build the reports of recent days that had documents but got no report (daemon down)."""
    days = missing_days(app.settings, app.ledger, datetime.datetime.now().astimezone())
    for day in days:
        report_task.delay(day.isoformat())
    if days:
        daily_log.info("catching up the daily reports of %s", ", ".join(map(str, days)))
    return [day.isoformat() for day in days]


@app.task(name="docproc.purge", ignore_result=True)
def purge_task() -> dict[str, int]:
    """Apply retention (the scheduled purge)."""
    done = purge(app.settings, app.ledger)
    outcome = done.outcome
    for error in outcome.errors:
        retention_log.error("purge: %s", error)
    retention_log.info("purge: removed %d folders and files (%s) and %d ledger records; kept %d "
                       "unfinished", outcome.items, human_bytes(outcome.bytes), outcome.records,
                       done.plan.unfinished)
    return {"items": outcome.items, "bytes": outcome.bytes, "records": outcome.records}
