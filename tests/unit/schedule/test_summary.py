"""The daily report's summaries: local-day windows, percentiles, chunks merged."""

from __future__ import annotations

import datetime

import pytest

from docproc.report import Report
from docproc.schedule.summary import Window, add_document, finish, merge, new_summary, percentile
from tests.unit.schedule.samples import DOCS, local, summary_of


def test_a_dst_day_has_23_hours(berlin: None) -> None:
    window = Window.of(datetime.date(2026, 3, 29))
    assert window.hours == 23
    assert window.hour_of(local(2026, 3, 29, 4, 30).timestamp()) == 3


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert [percentile(values, p) for p in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert percentile([7.0], 99) == 7.0


def test_chunks_merge_to_the_same_report_as_onesummary_of() -> None:
    window = Window.of(datetime.date(2026, 11, 22))
    whole = finish(summary_of(DOCS, window), window, "now", "ledger")
    chunks = merge([summary_of(DOCS[n:n + 2], window) for n in range(0, len(DOCS), 2)])
    assert finish(chunks, window, "now", "ledger") == whole
    assert whole["documents"] == 5 and whole["pages"] == 4 and whole["words"] == 110
    assert whole["by_status"]["done"] == 3 and whole["by_status"]["queued"] == 1
    assert whole["keywords"][0] == {"keyword": "invoice", "documents": 2}
    assert whole["failures"]["encrypted"]["documents"][0]["relpath"] == "x/c"
    assert [d["key"] for d in whole["not_summarized"]] == ["e"] and not whole["complete"]
    assert whole["by_hour"][1]["documents"] == 5


def test_a_malformed_report_changes_nothing() -> None:
    window = Window.of(datetime.date(2026, 11, 22))
    summary = new_summary()
    with pytest.raises((KeyError, ValueError, TypeError)):
        add_document(summary, window, key="x", status="done", received_ts=0, name="x",
                     relpath="x", folder="/x", report=Report.from_dict(
                         {"schema": "docproc.report/1", "status": "done", "pages": "many"}))
    assert summary == new_summary()
