"""Sample document reports and summaries for the daily report's unit tests."""

from __future__ import annotations

import datetime

from docproc.report import Report
from docproc.schedule.summary import Summary, Window, add_document, new_summary


def local(*parts: int) -> datetime.datetime:
    """Return an aware moment of the machine's local time."""
    return datetime.datetime(*parts).astimezone()  # type: ignore[arg-type]


def report(status: str, kind: str, pages: int, words: int, keywords: list[str],
           error: dict[str, str] | None = None) -> Report:
    """Return a document's report with these facts."""
    return Report.from_dict({
        "schema": "docproc.report/1", "status": status, "source": {"bytes": 10},
        "type": {"kind": kind}, "pages": pages, "text": {"words": words},
        "analysis": {"keywords": keywords}, "timings_ms": {"detect": pages, "total": 9.0},
        "error": error})


DOCS = [
    ("a", "done", report("done", "pdf", 3, 100, ["tax", "invoice"])),
    ("b", "done", report("done", "text", 1, 10, ["invoice"])),
    ("c", "failed", report("failed", "pdf", 0, 0, [], {"type": "encrypted", "stage": "extract",
                                                      "message": "the PDF is encrypted"})),
    ("d", "queued", None),
    ("e", "done", None),
]


def summary_of(docs: list[tuple[str, str, Report | None]], window: Window) -> Summary:
    """Return the summary of documents received an hour into a window; None: no report.json."""
    summary = new_summary()
    for key, status, found in docs:
        add_document(summary, window, key=key, status=status,
                     received_ts=window.start.timestamp() + 3600, name=key, relpath=f"x/{key}",
                     folder=f"/out/{key}", report=found, reason="its report.json is missing")
    return summary
