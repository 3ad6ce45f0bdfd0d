"""One document's summary and its stages' progress, from its ledger record and report."""

from __future__ import annotations

from typing import Any

from docproc.report import Report
from docproc.status.documents import progress, summary


def _record(status: str, stage: str | None, stages: dict[str, dict[str, float]],
            **fields: Any) -> dict[str, Any]:
    return {"key": "aaaaaaaaaaaa", "status": status, "stage": stage, "stages": stages, **fields}


def test_a_running_document_shows_done_running_and_waiting_stages() -> None:
    record = _record("running", "extract", {"detect": {"started": 10.0, "ended": 10.25},
                                            "extract": {"started": 10.25}})
    steps = progress(record)
    assert [(s["stage"], s["state"]) for s in steps] == [
        ("detect", "done"), ("extract", "running"), ("analyze", "waiting"),
        ("thumbnail", "waiting")]
    assert steps[0]["duration_ms"] == 250.0 and steps[0]["started_at"] == "1970-01-01T00:00:10Z"
    assert steps[1]["duration_ms"] is None


def test_a_failed_document_shows_the_stage_its_report_names_and_skips_the_rest() -> None:
    record = _record("failed", "extract", {"detect": {"started": 10.0, "ended": 10.5},
                                           "extract": {"started": 10.5, "ended": 11.0}})
    report = Report.from_dict({
        "schema": "docproc.report/1", "status": "failed", "timings_ms": {"detect": 498.7},
        "error": {"stage": "extract", "type": "encrypted", "message": "needs a password"}})
    assert [(s["state"], s["duration_ms"]) for s in progress(record, report)] == [
        ("done", 498.7), ("failed", 500.0), ("skipped", None), ("skipped", None)]


def test_a_stage_started_and_never_ended_was_interrupted_unless_the_document_failed() -> None:
    stages = {"detect": {"started": 10.0}}
    assert progress(_record("queued", None, stages))[0]["state"] == "interrupted"
    assert progress(_record("failed", None, stages))[0]["state"] == "failed"


def test_a_summary_without_a_report_names_the_ledger_error_and_counts_recoveries() -> None:
    record = _record("failed", None, {}, error_type="timeout", retries="1", recoveries="2",
                     finished_ts="1764000000", worker="")
    found = summary(record, None)
    assert found["error"] == {"stage": None, "type": "timeout", "message": None}
    assert found["retries"] == 3 and found["worker"] is None
    assert found["finished_at"] == "2025-11-24T16:00:00Z"
    assert not found["has_text"] and not found["has_thumbnail"] and found["kind"] is None


def test_a_summary_with_a_report_shows_its_kind_pages_and_outputs() -> None:
    report = Report.from_dict({
        "schema": "docproc.report/1", "status": "done", "type": {"kind": "pdf"}, "pages": 4,
        "text": {"path": "text.txt"}, "thumbnail": {"path": "thumbnail.png"}})
    found = summary(_record("done", None, {}), report)
    assert (found["kind"], found["pages"], found["has_text"], found["has_thumbnail"]) == (
        "pdf", 4, True, True)
    assert found["error"] is None
