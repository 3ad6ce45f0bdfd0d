"""OCR through `docproc up`: its own worker program reads a scan's pages while a text PDF goes
ahead; the status API, the metrics and `docproc status` count the pages.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import reports, run_docproc, start_up, stop_up, wait_until, wait_watching
from tests.integration.ocr.helpers import WORDS, scan, words_read

pytestmark = pytest.mark.e2e
TEXT_PDF = Path(__file__).resolve().parents[1] / "data" / "four-pages.pdf"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read()
    return json.loads(body) if response.headers.get_content_type() == "application/json" \
        else body.decode()


def _named(outbox: Path, name: str) -> dict[str, Any] | None:
    return next((r for r in reports(outbox) if r["source"]["name"] == name), None)


def test_up_reads_a_scan_on_its_ocr_worker_and_shows_its_pages(
    make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    config = make_config(broker_url="embedded")
    settings = yaml.safe_load(config.read_text())
    inbox, outbox = Path(settings["inbox"]), Path(settings["outbox"])
    base = f"http://127.0.0.1:{settings['status_api']['port']}"
    up = start_up(config, tmp_path / "up.log")
    try:
        wait_watching(lambda: (tmp_path / "up.log").read_text(errors="replace"))
        scan(tmp_path / "scan.pdf", 40).rename(inbox / "scan.pdf")

        def reading() -> str | None:
            listing = _get(f"{base}/api/documents?limit=10")["documents"]
            return next((d["key"] for d in listing if d["stage"] == "ocr"), None)

        key = wait_until(reading, 60, interval=0.02, message="the scan in its ocr stage")
        shutil.copyfile(TEXT_PDF, inbox / "letter.pdf")
        letter = wait_until(lambda: _named(outbox, "letter.pdf"), 60, message="the letter")
        assert letter["status"] == "done" and not letter["text"]["ocr"]
        scanned = wait_until(lambda: _named(outbox, "scan.pdf"), 120, message="the scan")
        assert scanned["status"] == "done" and scanned["ocr"]["pages"] == 40
        assert words_read((scanned["_folder"] / "text.txt").read_text()) == WORDS[:40]
        assert not scanned["worker"].startswith("ocr1@")  # finished by the document worker

        [ocr] = [s for s in _get(f"{base}/api/documents/{key}")["progress"] if s["stage"] == "ocr"]
        assert (ocr["state"], ocr["pages_done"], ocr["pages_total"]) == ("done", 40, 40)
        stats = _get(f"{base}/api/stats")
        assert stats["ocr"]["pages"] == 40 and "docproc.ocr" in stats["queues"]
        assert "docproc_ocr_pages_total 40.0" in _get(f"{base}/metrics")
        status = run_docproc(config, "status")
        assert "40 pages read in all" in status.stdout, status.stdout + status.stderr
    finally:
        assert stop_up(up) == 0
