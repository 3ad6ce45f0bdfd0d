"""The daily schedule's arithmetic, the report's summaries and its HTML, without I/O."""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docproc.daily_html import render
from docproc.daily_summary import Window, add_document, finish, merge, new_summary, percentile
from docproc.errors import ConfigError
from docproc.schedules import DailyAt, daily_at, next_at, parse_clock
from docproc.settings import load_settings


@pytest.fixture
def berlin() -> Iterator[None]:
    """Run in a time zone with DST changes."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = old
    time.tzset()


def local(*parts: int) -> datetime.datetime:
    return datetime.datetime(*parts).astimezone()  # type: ignore[arg-type]


def test_next_at_is_the_next_local_clock_time(berlin: None) -> None:
    clock = parse_clock("00:05")
    assert next_at(clock, local(2026, 11, 23, 0, 4, 59)) == local(2026, 11, 23, 0, 5)
    assert next_at(clock, local(2026, 11, 23, 0, 5)) == local(2026, 11, 24, 0, 5)
    assert parse_clock("12:34:56") == datetime.time(12, 34, 56)
    # 00:05 in Berlin is 23:05 UTC the day before in winter, 22:05 in summer.
    assert next_at(clock, local(2026, 3, 28, 12)).astimezone(datetime.UTC).hour == 23
    assert next_at(clock, local(2026, 3, 29, 12)).astimezone(datetime.UTC).hour == 22


def test_daily_at_is_due_once_a_day_and_once_after_a_missed_day() -> None:
    now = local(2026, 11, 23, 10, 0, 11)
    schedule = DailyAt("10:00:10", clock=lambda: now)
    due, wait = schedule.is_due(local(2026, 11, 22, 10, 0, 10))
    assert due and wait == pytest.approx(86399, abs=1)
    due, wait = schedule.is_due(local(2026, 11, 20, 9))  # down for days: due once now
    assert due
    due, wait = schedule.is_due(now)
    assert not due and wait == pytest.approx(86399, abs=1)
    assert DailyAt("10:00:10") == DailyAt("10:00:10") != DailyAt("10:00")


def test_daily_at_tells_time_by_the_clock_it_is_given_across_midnight(berlin: None) -> None:
    now = local(2026, 3, 28, 23, 59, 58)  # the night before Berlin's clocks go forward
    schedule = daily_at("00:00:05", clock=lambda: now)
    assert schedule.now() == now
    due, wait = schedule.is_due(local(2026, 3, 28, 9))
    assert not due and wait == 7
    assert schedule.remaining_estimate(local(2026, 3, 28, 9)) == datetime.timedelta(seconds=7)
    now = local(2026, 3, 29, 0, 0, 5)
    due, wait = schedule.is_due(local(2026, 3, 28, 9))
    assert due and wait == 23 * 3600  # the next 00:00:05 is 23 hours on, on a DST day
    assert not schedule.is_due(now).is_due


def test_a_dst_day_has_23_hours(berlin: None) -> None:
    window = Window.of(datetime.date(2026, 3, 29))
    assert window.hours == 23
    assert window.hour_of(local(2026, 3, 29, 4, 30).timestamp()) == 3


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert [percentile(values, p) for p in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert percentile([7.0], 99) == 7.0


def _report(status: str, kind: str, pages: int, words: int, keywords: list[str],
            error: dict[str, str] | None = None) -> dict[str, Any]:
    return {"schema": "docproc.report/1", "status": status, "source": {"bytes": 10},
            "type": {"kind": kind}, "pages": pages, "text": {"words": words},
            "analysis": {"keywords": keywords}, "timings_ms": {"detect": pages, "total": 9.0},
            "error": error}


DOCS = [
    ("a", "done", _report("done", "pdf", 3, 100, ["tax", "invoice"])),
    ("b", "done", _report("done", "text", 1, 10, ["invoice"])),
    ("c", "failed", _report("failed", "pdf", 0, 0, [], {"type": "encrypted", "stage": "extract",
                                                       "message": "the PDF is encrypted"})),
    ("d", "queued", None),
    ("e", "done", None),
]


def _summary(docs: list[tuple[str, str, dict[str, Any] | None]], window: Window) -> Any:
    summary = new_summary()
    for key, status, report in docs:
        add_document(summary, window, key=key, status=status,
                     received_ts=window.start.timestamp() + 3600, name=key, relpath=f"x/{key}",
                     folder=f"/out/{key}", report=report, reason="its report.json is missing")
    return summary


def test_chunks_merge_to_the_same_report_as_one_summary() -> None:
    window = Window.of(datetime.date(2026, 11, 22))
    whole = finish(_summary(DOCS, window), window, "now", "ledger")
    chunks = merge([_summary(DOCS[n:n + 2], window) for n in range(0, len(DOCS), 2)])
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
                     relpath="x", folder="/x", report={"schema": "docproc.report/1",
                                                       "pages": "many"})
    assert summary == new_summary()


def test_html_is_one_file_without_scripts_and_escapes_names() -> None:
    window = Window.of(datetime.date(2026, 11, 22))
    evil = [("z", "failed", _report("failed", "other", 0, 0, [], {
        "type": "corrupt", "stage": "detect", "message": "<script>alert(1)</script>"}))]
    page = render(finish(_summary(DOCS + evil, window), window, "now", "ledger"), "r.json")
    assert "<script" not in page and "&lt;script&gt;" in page
    assert page.count("<svg") >= 5 and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")


def test_schedule_times_take_minutes_or_seconds(tmp_path: Path) -> None:
    config = tmp_path / "docproc.yaml"
    config.write_text('schedule:\n  daily_report: "07:30:15"\n  purge: "23:59"\n')
    schedule = load_settings(config, environ={}).schedule
    assert (schedule.daily_report, schedule.purge) == ("07:30:15", "23:59")
    config.write_text('schedule:\n  purge: "24:00"\n')
    with pytest.raises(ConfigError, match=r"schedule\.purge"):
        load_settings(config, environ={})
