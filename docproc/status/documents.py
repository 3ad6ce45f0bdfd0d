"""One document as the status shows it: its summary, its stages' progress, everything about it."""

from __future__ import annotations

from typing import Any, Literal

from docproc.ledger.redis_ledger import RedisLedger
from docproc.model import STAGES, TERMINAL, State
from docproc.report import Report
from docproc.status.reports import ReportCache
from docproc.status.timestamps import iso

# Where one stage of a document is: not a document State, though some spell the same.
StageProgress = Literal["done", "running", "failed", "skipped", "interrupted", "waiting"]


def summary(record: dict[str, Any], report: Report | None) -> dict[str, Any]:
    """Return what a listing shows of one document."""
    error: dict[str, Any] | None = dict(report.error) if report and report.error else None
    if error is None and record.get("error_type"):
        error = {"stage": None, "type": record["error_type"], "message": None}
    return {
        "key": record["key"],
        "id": record.get("id"),
        "name": record.get("name"),
        "relpath": record.get("relpath"),
        "bytes": record.get("bytes"),
        "status": record.get("status"),
        "stage": record.get("stage"),
        "worker": record.get("worker") or None,
        "retries": int(record.get("retries") or 0) + int(record.get("recoveries") or 0),
        "kind": report.kind if report else None,
        "pages": report.pages if report else None,
        "received_at": record.get("received_at"),
        "finished_at": iso(record.get("finished_ts")),
        "duplicate_of": record.get("duplicate_of") or None,
        "error_type": record.get("error_type") or None,
        "error": error,
        "has_thumbnail": bool(report and report.thumbnail),
        "has_text": bool(report and report.text),
    }


def progress(record: dict[str, Any], report: Report | None = None) -> list[dict[str, Any]]:
    """Return each stage's state and times: done, running, failed, skipped or waiting."""
    times: dict[str, dict[str, float]] = record.get("stages") or {}
    failed_in = report.error["stage"] if report and report.error else None
    # The report's timings are finer than the ledger's millisecond timestamps.
    measured: dict[str, float] = report.timings_ms if report else {}
    status, current = record.get("status"), record.get("stage")
    steps = []
    state: StageProgress
    for stage in STAGES:
        if stage == "ocr" and stage not in times:
            continue  # most documents have no page to read: shown only once it started
        started, ended = times.get(stage, {}).get("started"), times.get(stage, {}).get("ended")
        if stage == failed_in:
            state = "failed"
        elif started and ended:
            state = "done"
        elif started and status == State.RUNNING and current == stage:
            state = "running"
        elif started:
            state = "failed" if status == State.FAILED else "interrupted"
        elif status in TERMINAL:
            state = "skipped"
        else:
            state = "waiting"
        step: dict[str, Any] = {
            "stage": stage, "state": state, "started_at": iso(started), "ended_at": iso(ended),
            "duration_ms": measured.get(stage, round((ended - started) * 1000, 1))
            if started and ended else None,
        }
        if stage == "ocr" and record.get("ocr_total"):
            step.update(pages_done=int(record.get("ocr_done") or 0),
                        pages_total=int(record["ocr_total"]))
        steps.append(step)
    return steps


def detail(ledger: RedisLedger, reports: ReportCache, record: dict[str, Any]) -> dict[str, Any]:
    """Return everything about one document: its summary, progress and report."""
    report = reports.get(record)
    body = summary(record, report)
    key = record["key"]
    body.update(
        sha256=record.get("sha256"),
        recoveries=int(record.get("recoveries") or 0),
        progress=progress(record, report),
        report=report.to_dict() if report else None,
        retried_at=iso(record.get("retried_ts")),
        retried_as=ledger.retried_as(record) if record.get("status") == State.RETRIED else None,
        links={
            "self": f"/api/documents/{key}",
            "text": f"/api/documents/{key}/text" if body["has_text"] else None,
            "thumbnail": f"/api/documents/{key}/thumbnail" if body["has_thumbnail"] else None,
            "retry": f"/api/documents/{key}/retry" if record.get("status") == State.FAILED
            else None,
        },
    )
    return body


def failures(ledger: RedisLedger, reports: ReportCache, limit: int = 10) -> list[dict[str, Any]]:
    """Return the newest failed documents (not yet retried) with their reasons."""
    records, _ = ledger.page(statuses={State.FAILED}, limit=limit)
    return [summary(record, reports.get(record)) for record in records]
