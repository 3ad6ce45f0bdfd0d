"""A scan's pages as files: ranges, pages already read kept, the join in page order."""

from __future__ import annotations

from pathlib import Path

from docproc.model import FileTypeInfo, Job, Source
from docproc.settings import PipelineSettings
from docproc.worker import ocr_pages
from tests.integration.ocr.helpers import WORDS, scan, words_read


def _job(tmp_path: Path, pages: int) -> Job:
    source = scan(tmp_path / "scan.pdf", pages)
    return Job(key="k1", id="k1", token="t", source_path=str(source),
               work_dir=str(tmp_path / "work"), received_ts=0.0,
               source=Source(raw_name="scan.pdf", relpath="scan.pdf", bytes=1, sha256="0" * 64,
                             received_at="2026-12-02T00:00:00Z"),
               type=FileTypeInfo(mime="application/pdf", kind="pdf", encrypted=False),
               pages=pages, ocr_pages=list(range(pages)))


def test_ranges_cover_every_page_once_in_order() -> None:
    assert ocr_pages.ranges(list(range(10)), 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert ocr_pages.ranges([2, 5], 4) == [[2, 5]]
    assert ocr_pages.ranges([], 4) == []


def test_a_range_sent_again_reads_only_the_pages_not_yet_read(tmp_path: Path) -> None:
    job = _job(tmp_path, 3)
    settings = PipelineSettings()
    seen: list[tuple[int, int, int]] = []
    assert ocr_pages.read_range(job, settings, [2, 1], lambda *p: seen.append(p)) == 2
    assert seen == [(1, 1, 3), (1, 2, 3)]
    # A worker killed while writing leaves at most a temporary file: not a page.
    (ocr_pages.page_dir(job) / "0.999.tmp").write_text("{")
    assert ocr_pages.read_range(job, settings, [0, 1, 2]) == 1
    assert ocr_pages.read_range(job, settings, [0, 1, 2]) == 0
    pages = ocr_pages.collected(job)
    assert [page.index for page in pages] == [0, 1, 2]
    assert words_read(" ".join(page.text for page in pages)) == WORDS[:3]
