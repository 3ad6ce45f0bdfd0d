"""The daily report's HTML page: one file, no scripts, names escaped."""

from __future__ import annotations

import datetime

from docproc.schedule.html import render
from docproc.schedule.summary import Window, finish
from tests.unit.schedule.samples import DOCS, report, summary_of


def test_html_is_one_file_without_scripts_and_escapes_names() -> None:
    window = Window.of(datetime.date(2026, 11, 22))
    evil = [("z", "failed", report("failed", "other", 0, 0, [], {
        "type": "corrupt", "stage": "detect", "message": "<script>alert(1)</script>"}))]
    page = render(finish(summary_of(DOCS + evil, window), window, "now", "ledger"), "r.json")
    assert "<script" not in page and "&lt;script&gt;" in page
    assert page.count("<svg") >= 5 and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
