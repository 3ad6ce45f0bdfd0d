"""`docproc process` on a scan: its words in text.txt in page order, and OCR in report.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests import scans

A6 = scans.A6_300_DPI


def process(tmp_path: Path, config: str, document: Path) -> tuple[dict[str, Any], str]:
    """Run `docproc process` on document; return its report and its text."""
    path = tmp_path / "docproc.yaml"
    path.write_text(config)
    outbox = tmp_path / f"out-{len(list(tmp_path.glob('out-*')))}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("DOCPROC")}
    result = subprocess.run(
        [sys.executable, "-m", "docproc", "process", "--config", str(path), "--outbox",
         str(outbox), str(document)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    (folder,) = outbox.glob("documents/*/*")
    report = json.loads((folder / "report.json").read_text())
    return report, (folder / "text.txt").read_text(encoding="utf-8")


def test_a_scanned_pdf_comes_out_with_its_words_in_page_order(tmp_path: Path) -> None:
    scan = scans.image_pdf(tmp_path / "scan.pdf", [
        scans.page("alpha", size=A6), scans.blank(A6),
        scans.page("bravo", rotate=180, size=A6),
    ])
    report, text = process(tmp_path, "", scan)
    assert report["status"] == "done" and report["pages"] == 3
    assert report["text"]["ocr"] is True and report["warnings"] == []
    assert report["ocr"]["engine"] == "tesseract" and report["ocr"]["languages"] == ["eng"]
    assert report["ocr"]["pages"] == 3 and report["ocr"]["mean_confidence"] > 50
    assert report["ocr"]["seconds"] > 0
    first, blank, third = text.split("\f")
    assert "alpha line" in first and blank == "" and "bravo line" in third
    assert report["text"]["chars"] == len(text) and report["text"]["words"] >= 30

    report, text = process(tmp_path, "pipeline:\n  ocr: 'off'\n", scan)
    assert report["status"] == "done" and report["pages"] == 3
    assert report["text"]["ocr"] is False and report["ocr"] is None
    assert text.strip() == ""


def test_a_page_read_short_of_ocr_dpi_is_a_warning_in_a_done_report(tmp_path: Path) -> None:
    scan = scans.image_pdf(tmp_path / "big.pdf", [scans.page("alpha", lines=2, size=A6)])
    report, text = process(tmp_path, "pipeline:\n  max_image_pixels: 1000000\n", scan)
    assert report["status"] == "done" and report["text"]["ocr"] is True
    assert report["warnings"] == ["page 1 was read at 203 dpi, not 300: at 300 dpi it would "
                                  "exceed pipeline.max_image_pixels"]
    assert "alpha line" in text


def test_a_damaged_page_is_a_warning_in_a_done_report(tmp_path: Path) -> None:
    fax = scans.tiff(tmp_path / "fax.tiff", [scans.page("alpha", lines=2, size=A6),
                                             scans.page("bravo", lines=2, size=A6)])
    report, text = process(tmp_path, "", scans.damage_frame(fax, 1))
    assert report["status"] == "done" and report["pages"] == 2
    assert report["warnings"] == ["page 2 could not be decoded: decoder error -2"]
    assert report["ocr"]["pages"] == 1 and report["thumbnail"] is not None
    assert "alpha line" in text and "bravo" not in text


def test_a_scan_of_blank_pages_is_done_with_no_text(tmp_path: Path) -> None:
    scan = scans.image_pdf(tmp_path / "blank.pdf", [scans.blank(A6), scans.blank(A6)])
    report, text = process(tmp_path, "", scan)
    assert report["status"] == "done" and report["error"] is None and report["warnings"] == []
    assert report["text"]["ocr"] is False and report["text"]["words"] == 0
    assert report["ocr"]["pages"] == 2 and report["ocr"]["mean_confidence"] is None
    assert text == "\f"
