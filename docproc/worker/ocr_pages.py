"""A document's OCR pages as files in its work folder: read each once, join them in order.

Each page read is written to `<work>/ocr/<index>.json` by an atomic rename, so a range
sent again (a redelivery, the reconciler, a crash-loop rerun) reads only the pages not yet
there, and the join reads the files: a killed worker loses no page and repeats none.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from docproc import stages
from docproc.model import Job
from docproc.pipeline import ocr
from docproc.settings import PipelineSettings

# Pages one task reads at most: a scan with more is split into ranges read in parallel.
# Four A4 pages take ~6 s on one core: long enough that a task's overhead (~5 ms) is lost in
# it, short enough that a 40-page scan makes 10 tasks to share among every OCR process, and
# that the task time limit bounds a few pages, not a whole scan.
PAGES_PER_TASK = 4

Progress = Callable[[int, int, int], None]


def ranges(pages: Sequence[int], size: int = PAGES_PER_TASK) -> list[list[int]]:
    """Split page indexes into consecutive ranges of at most size pages."""
    return [list(pages[at:at + size]) for at in range(0, len(pages), max(1, size))]


def page_dir(job: Job) -> Path:
    """Return the folder holding the pages of a job read so far."""
    return Path(job.work_dir) / "ocr"


def pages_done(job: Job) -> set[int]:
    """Return the indexes of the pages of a job read so far."""
    try:
        names = os.listdir(page_dir(job))
    except FileNotFoundError:
        return set()
    return {int(name.removesuffix(".json")) for name in names
            if name.endswith(".json") and name.removesuffix(".json").isdigit()}


def read_range(job: Job, settings: PipelineSettings, indexes: Sequence[int],
               progress: Progress | None = None) -> int:
    """Read the pages of a range not yet read, each into its own file; return how many were read.

    progress(pages just read, pages done, pages to read) is called after each page.
    """
    missing = [index for index in indexes if index not in pages_done(job)]
    if not missing:
        return 0
    folder = page_dir(job)
    folder.mkdir(parents=True, exist_ok=True)
    read = 0
    for page in ocr.read_pages(Path(job.source_path), stages.file_type(job), missing,
                               stages.ocr_options(settings), settings.max_image_pixels):
        _write(folder / f"{page.index}.json", page)
        read += 1
        if progress is not None:
            progress(1, len(pages_done(job) & set(job.ocr_pages)), len(job.ocr_pages))
    return read


def collected(job: Job) -> list[ocr.PageText]:
    """Return the pages of a job read so far, in page order."""
    folder = page_dir(job)
    pages = []
    for index in sorted(pages_done(job) & set(job.ocr_pages)):
        body = json.loads((folder / f"{index}.json").read_text(encoding="utf-8"))
        pages.append(ocr.PageText.from_dict(body))
    return pages


def _write(path: Path, page: ocr.PageText) -> None:
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(page.to_dict()), encoding="utf-8")
    os.replace(temporary, path)
