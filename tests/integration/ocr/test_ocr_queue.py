"""OCR on its queue through a real broker: a big scan split over processes, in page order,
each page once though a worker child is killed; text documents go ahead; ocr: off is as before.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from tests.conftest import Daemon, children_of, ledger_url, reports, wait_until
from tests.integration.ocr.helpers import (
    DOCUMENT_WORKER,
    WORDS,
    folders,
    ocr_done,
    scan,
    scan_key,
    start_workers,
    words_read,
)

TEXT_PDF = Path(__file__).resolve().parents[2] / "data" / "four-pages.pdf"


def _stop(*daemons: Daemon) -> None:
    for daemon in daemons:
        daemon.stop()


def _report(outbox: Path, name: str) -> dict[str, Any] | None:
    return next((r for r in reports(outbox) if r["source"]["name"] == name), None)


def test_a_40_page_scan_split_over_both_processes_comes_out_in_page_order(
    broker: dict[str, Any], make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    config = make_config(**broker)
    inbox, outbox = folders(config)
    main, ocr = start_workers(config, tmp_path / "logs")
    try:
        scan(tmp_path / "scan.pdf", 40).rename(inbox / "scan.pdf")
        report = wait_until(lambda: _report(outbox, "scan.pdf"), 120, message="the scan's report")
        assert report["status"] == "done" and report["text"]["ocr"]
        assert report["ocr"]["pages"] == 40
        assert words_read((report["_folder"] / "text.txt").read_text()) == WORDS[:40]
        # Its ranges were read by both processes of the OCR worker.
        processes = set(re.findall(r"ocr pages \d+-\d+: \d+ read in process (\d+)",
                                   ocr.log("worker")))
        assert len(processes) == 2
    finally:
        _stop(main, ocr)


def test_a_worker_child_killed_mid_scan_loses_no_page_and_repeats_none(
    broker: dict[str, Any], make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    config = make_config(**broker)
    inbox, outbox = folders(config)
    main, ocr = start_workers(config, tmp_path / "logs")
    try:
        scan(tmp_path / "scan.pdf", 40).rename(inbox / "scan.pdf")
        key = wait_until(lambda: scan_key(broker), 60, message="the scan in its ocr stage")
        wait_until(lambda: ocr_done(broker, key) >= 4, 60, interval=0.01,
                   message="a few pages read")
        # Both children are reading a range while ranges wait: kill one of them.
        # `docproc worker` is Celery's main process: its children are the pool's.
        os.kill(children_of(ocr.processes["worker"].pid)[0], signal.SIGKILL)
        report = wait_until(lambda: _report(outbox, "scan.pdf"), 180,
                            message="the scan's report")
        assert report["status"] == "done" and report["ocr"]["pages"] == 40
        assert words_read((report["_folder"] / "text.txt").read_text()) == WORDS[:40]
        assert "WorkerLostError" in ocr.log("worker") or "SIGKILL" in ocr.log("worker")
    finally:
        _stop(main, ocr)


def test_a_text_pdf_dropped_during_a_long_scan_reports_first(
    broker: dict[str, Any], make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    config = make_config(**broker)
    inbox, outbox = folders(config)
    main, ocr = start_workers(config, tmp_path / "logs", ocr_concurrency=1)
    try:
        scan(tmp_path / "scan.pdf", 40).rename(inbox / "scan.pdf")
        key = wait_until(lambda: scan_key(broker), 60, message="the scan in its ocr stage")
        wait_until(lambda: ocr_done(broker, key) >= 1, 60, interval=0.01,
                   message="the scan's first page read")
        shutil.copyfile(TEXT_PDF, inbox / "letter.pdf")
        letter = wait_until(lambda: _report(outbox, "letter.pdf"), 60,
                            message="the text PDF's report")
        assert letter["status"] == "done" and not letter["text"]["ocr"]
        assert _report(outbox, "scan.pdf") is None  # the scan is still being read
        assert 0 < ocr_done(broker, key) < 40
        report = wait_until(lambda: _report(outbox, "scan.pdf"), 120, message="the scan")
        assert words_read((report["_folder"] / "text.txt").read_text()) == WORDS[:40]
    finally:
        _stop(main, ocr)


def test_ocr_off_sends_nothing_to_the_ocr_queue(
    broker: dict[str, Any], make_config: Callable[..., Path], tmp_path: Path,
    daemon: Callable[[Path], Daemon],
) -> None:
    config = make_config(**broker, pipeline={"ocr": "off"})
    inbox, outbox = folders(config)
    run = daemon(config)
    # No OCR worker at all: anything sent to docproc.ocr would never come out.
    run.start("worker", "--queues", DOCUMENT_WORKER)
    run.start("watch")
    scan(tmp_path / "scan.pdf", 6).rename(inbox / "scan.pdf")
    shutil.copyfile(TEXT_PDF, inbox / "letter.pdf")
    found = wait_until(lambda: len(reports(outbox)) == 2 and reports(outbox), 60,
                       message="both reports")
    by_name = {report["source"]["name"]: report for report in found}
    assert by_name["scan.pdf"]["status"] == "done" and not by_name["scan.pdf"]["text"]["ocr"]
    assert by_name["scan.pdf"].get("ocr") is None
    assert by_name["letter.pdf"]["status"] == "done"
    client = redis.Redis.from_url(ledger_url(broker))
    assert client.get("docproc:m:ocr_pages") is None
    if not broker["broker_url"].startswith("amqp"):
        assert client.llen("docproc.ocr") == 0
