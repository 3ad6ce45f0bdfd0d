"""A scan whose OCR worker is killed outright (kill -9 of the whole worker, not a child) is
finished by another worker, with the reconciler's help: each page once, in order. One that
kills its OCR child every time fails as `timeout` once workers.max_retries runs are spent.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from tests import scans
from tests.conftest import Daemon, children_of, ledger_url, reports, wait_until
from tests.integration.ocr.helpers import (
    WORDS,
    folders,
    ocr_done,
    scan,
    scan_key,
    start_workers,
    words_read,
)


def test_a_scan_whose_ocr_worker_is_killed_is_finished_by_the_next_one(
    broker: dict[str, Any], make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    config = make_config(**broker)
    inbox, outbox = folders(config)
    main, ocr = start_workers(config, tmp_path / "logs")
    main.start("beat")  # sends the reconciler
    after = Daemon(config, tmp_path / "logs" / "after")
    after.log_dir.mkdir(parents=True)
    try:
        scan(tmp_path / "scan.pdf", 40).rename(inbox / "scan.pdf")
        key = wait_until(lambda: scan_key(broker), 60, message="the scan in its ocr stage")
        wait_until(lambda: ocr_done(broker, key) >= 4, 60, interval=0.01,
                   message="a few pages read")
        os.killpg(ocr.processes["worker"].pid, signal.SIGKILL)
        ocr.processes["worker"].wait(10)
        read_before = ocr_done(broker, key)
        assert read_before < 40, "the scan was read before the kill: make it longer"
        after.start("worker", "--queues", "docproc.ocr", "--name", "ocr2@%h")
        found = wait_until(lambda: [r for r in reports(outbox) if r["source"]["name"] ==
                                    "scan.pdf"], 120, interval=0.2, message="the scan's report")
        assert len(found) == 1
        report = found[0]
        assert report["status"] == "done" and report["ocr"]["pages"] == 40
        assert words_read((report["_folder"] / "text.txt").read_text()) == WORDS[:40]
    finally:
        for daemon in (main, ocr, after):
            daemon.stop()


def test_a_scan_that_keeps_killing_its_ocr_child_fails_as_timeout_with_its_original(
    broker: dict[str, Any], make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    config = make_config(**broker, workers={"max_retries": 1})
    inbox, outbox = folders(config)
    main, ocr = start_workers(config, tmp_path / "logs", ocr_concurrency=1)
    client = redis.Redis.from_url(ledger_url(broker), decode_responses=True)
    try:
        pages = [scans.page(word, 30, size=(1240, 1754)) for word in WORDS[:4]]
        scans.image_pdf(tmp_path / "scan.pdf", pages).rename(inbox / "scan.pdf")
        key = wait_until(lambda: scan_key(broker), 60, message="the scan in its ocr stage")

        def reading() -> bool:
            return (client.hget(f"docproc:doc:{key}", "worker") or "").startswith("ocr1@")

        for _ in range(2):  # the first run and its one retry (workers.max_retries)
            wait_until(reading, 60, interval=0.01, message="an OCR child reading the scan")
            client.hset(f"docproc:doc:{key}", "worker", "")
            os.kill(children_of(ocr.processes["worker"].pid)[0], signal.SIGKILL)
        report = wait_until(lambda: [r for r in reports(outbox)
                                     if r["source"]["name"] == "scan.pdf"], 120,
                            message="the scan's report")[0]
        assert report["status"] == "failed"
        assert (report["error"]["stage"], report["error"]["type"]) == ("ocr", "timeout")
        assert (report["_folder"] / "original" / "scan.pdf").exists()
    finally:
        main.stop()
        ocr.stop()
