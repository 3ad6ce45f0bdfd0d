"""`docproc process` on scans: their words in text.txt in page order, and OCR in report.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests import scans

A6 = scans.A6_300_DPI
A5 = (1748, 2480)
# A6 pages at 300 dpi (2.2 million pixels) fit, A5 ones (4.3 million) are read at 249 dpi.
CONFIG = "pipeline:\n  max_image_pixels: 3000000\n"


def process(tmp_path: Path, config: str, *documents: Path) -> dict[str, tuple[dict[str, Any], str]]:
    """Run `docproc process` on documents; return each one's report and text by file name."""
    path = tmp_path / "docproc.yaml"
    path.write_text(config)
    outbox = tmp_path / f"out-{len(list(tmp_path.glob('out-*')))}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("DOCPROC")}
    result = subprocess.run(
        [sys.executable, "-m", "docproc", "process", "--config", str(path), "--outbox",
         str(outbox), *map(str, documents)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    done = {}
    for folder in outbox.glob("documents/*/*"):
        report = json.loads((folder / "report.json").read_text())
        done[report["source"]["name"]] = report, (folder / "text.txt").read_text(encoding="utf-8")
    assert sorted(done) == sorted(document.name for document in documents)
    return done


def test_scans_come_out_with_their_words_in_page_order_and_warnings_for_bad_pages(
    tmp_path: Path
) -> None:
    scan = scans.image_pdf(tmp_path / "scan.pdf", [
        scans.page("alpha", size=A6), scans.blank(A6), scans.page("bravo", rotate=180, size=A6),
    ])
    big = scans.image_pdf(tmp_path / "big.pdf", [scans.page("charlie", lines=2, size=A5)])
    fax = scans.damage_frame(scans.tiff(tmp_path / "fax.tiff", [
        scans.page("delta", lines=2, size=A6), scans.page("echo", lines=2, size=A6),
    ]), 1)
    blank = scans.image_pdf(tmp_path / "blank.pdf", [scans.blank(A6), scans.blank(A6)])
    done = process(tmp_path, CONFIG, scan, big, fax, blank)

    report, text = done["scan.pdf"]
    assert report["status"] == "done" and report["pages"] == 3
    assert report["text"]["ocr"] is True and report["warnings"] == []
    assert report["ocr"]["engine"] == "tesseract" and report["ocr"]["languages"] == ["eng"]
    assert report["ocr"]["pages"] == 3 and report["ocr"]["mean_confidence"] > 50
    assert report["ocr"]["seconds"] > 0
    first, empty, third = text.split("\f")
    assert "alpha line" in first and empty == "" and "bravo line" in third
    assert report["text"]["chars"] == len(text) and report["text"]["words"] >= 30

    report, text = done["big.pdf"]
    assert report["status"] == "done" and report["text"]["ocr"] is True
    assert report["warnings"] == ["page 1 was read at 249 dpi, not 300: at 300 dpi it would "
                                  "exceed pipeline.max_image_pixels"]
    assert "charlie line" in text

    report, text = done["fax.tiff"]
    assert report["status"] == "done" and report["pages"] == 2
    assert report["warnings"] == ["page 2 could not be decoded: decoder error -2"]
    assert report["ocr"]["pages"] == 1 and report["thumbnail"] is not None
    assert "delta line" in text and "echo" not in text

    report, text = done["blank.pdf"]
    assert report["status"] == "done" and report["error"] is None and report["warnings"] == []
    assert report["text"]["ocr"] is False and report["text"]["words"] == 0
    assert report["ocr"]["pages"] == 2 and report["ocr"]["mean_confidence"] is None
    assert text == "\f"


def test_ocr_off_gives_a_scan_no_text_and_no_ocr(tmp_path: Path) -> None:
    scan = scans.image_pdf(tmp_path / "scan.pdf", [scans.page("alpha", size=A6)] * 2)
    report, text = process(tmp_path, "pipeline:\n  ocr: 'off'\n", scan)["scan.pdf"]
    assert report["status"] == "done" and report["pages"] == 2
    assert report["text"]["ocr"] is False and report["ocr"] is None
    assert text == "\f"
