"""The physical limit for OCR on this machine: a plain process pool, one process per core,
each with its tesserocr engines created once (OMP_THREAD_LIMIT=1), reading every page of the
given scanned PDFs with the work docproc does per page: render it with PDFium at 300 dpi in
grayscale, recognise it, take its text and mean confidence, and detect its orientation (OSD)
only when it reads doubtfully (mean confidence under 60), as docproc does. No queue, no files
written.
Usage: python ocr_limit.py PROCS TESSDATA PDF... -> one JSON line (pages/s and per-step sums).
"""
from __future__ import annotations

import json
import os
import sys
import time
from multiprocessing import Pool
from typing import Any

os.environ["OMP_THREAD_LIMIT"] = "1"

ENGINES: dict[str, Any] = {}
DOUBTFUL_CONFIDENCE = 60  # docproc.pipeline.ocr.DOUBTFUL_CONFIDENCE, kept apart on purpose


def start(tessdata: str) -> None:
    """Create this process's engines once."""
    import tesserocr

    ENGINES["eng"] = tesserocr.PyTessBaseAPI(path=tessdata, lang="eng")
    ENGINES["osd"] = tesserocr.PyTessBaseAPI(path=tessdata, lang="osd",
                                             psm=tesserocr.PSM.OSD_ONLY)


def read(task: tuple[str, int]) -> tuple[int, int, float, float, float]:
    """Read one page; return its words, confidence and the seconds of each step."""
    import pypdfium2 as pdfium

    path, index = task
    t0 = time.perf_counter()
    doc = pdfium.PdfDocument(path)
    page = doc[index]
    image = page.render(scale=300 / 72, grayscale=True).to_pil()
    page.close()
    doc.close()
    t1 = time.perf_counter()
    eng = ENGINES["eng"]
    eng.SetImage(image)
    eng.Recognize()
    words = len(eng.GetUTF8Text().split())
    confidence = eng.MeanTextConf()
    eng.Clear()
    t2 = time.perf_counter()
    if confidence < DOUBTFUL_CONFIDENCE:
        osd = ENGINES["osd"]
        osd.SetImage(image)
        osd.DetectOrientationScript()
        osd.Clear()
    t3 = time.perf_counter()
    return words, confidence, t1 - t0, t3 - t2, t2 - t1


def page_count(path: str) -> int:
    """Return the number of pages of a PDF."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(path)
    try:
        return len(doc)
    finally:
        doc.close()


if __name__ == "__main__":
    procs, tessdata, paths = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    tasks = [(path, index) for path in paths for index in range(page_count(path))]
    t0 = time.perf_counter()
    with Pool(procs, initializer=start, initargs=(tessdata,)) as pool:
        done = list(pool.imap_unordered(read, tasks, chunksize=1))
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "pages": len(done), "processes": procs, "seconds": round(seconds, 2),
        "pages_per_s": round(len(done) / seconds, 3),
        "words_per_page": round(sum(d[0] for d in done) / len(done), 1),
        "mean_confidence": round(sum(d[1] for d in done) / len(done), 1),
        "render_s": round(sum(d[2] for d in done), 2), "osd_s": round(sum(d[3] for d in done), 2),
        "recognize_s": round(sum(d[4] for d in done), 2),
    }))
