"""OCR: which pages are read, and their words in page order, from real scans and real Tesseract."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from docproc.pipeline import detect, extract, make_thumbnail, ocr
from tests import scans
from tests.unit.pipeline.samples import IMAGES, MAX_PIXELS, PDF

A6 = scans.A6_300_DPI
DEFAULTS = ocr.OcrOptions()
TEXT_PDF = PDF / "016-libre-office-link_libre-office-link.pdf"


def read(path: Path, mode: str = "auto", max_image_pixels: int = MAX_PIXELS,
         options: ocr.OcrOptions = DEFAULTS) -> tuple[str, list[ocr.PageText]]:
    """Read a document as the stages do: text layer, then OCR of the pages that need it."""
    file_type = detect(path)
    result = extract(path, file_type, max_image_pixels=max_image_pixels)
    layer = result.text.split(ocr.PAGE_SEPARATOR)
    frames = result.image.frames if result.image else 0
    indexes = ocr.pages_to_read(file_type, layer, frames, mode)
    pages = list(ocr.read_pages(path, file_type, indexes, options, max_image_pixels))
    return ocr.merge(layer, pages, result.pages or max(len(indexes), 1)), pages


def words_in_order(text: str, *words: str) -> bool:
    """Return True when each word is on its own page, in this order."""
    texts = text.split(ocr.PAGE_SEPARATOR)
    return len(texts) == len(words) and all(
        (word in page) if word else not page.strip()
        for word, page in zip(words, texts, strict=True))


def assert_read(pages: list[ocr.PageText], indexes: list[int]) -> None:
    assert [page.index for page in pages] == indexes
    assert all(page.read and page.warning is None for page in pages)


def test_an_image_only_pdf_is_read_page_by_page_in_order(tmp_path: Path) -> None:
    path = scans.image_pdf(tmp_path / "scan.pdf",
                           [scans.page("alpha", size=A6), scans.page("bravo", size=A6)])
    text, pages = read(path)
    assert words_in_order(text, "alpha", "bravo")
    assert_read(pages, [0, 1])
    assert all(page.confidence is not None and page.confidence > 50 for page in pages)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "GIF"])
def test_a_photo_or_scan_image_is_read(tmp_path: Path, image_format: str) -> None:
    path = tmp_path / f"scan.{image_format.lower()}"
    scans.page("delta", lines=3, size=A6).save(path, format=image_format)
    text, pages = read(path)
    assert "delta" in text and "quick brown fox" in text
    assert_read(pages, [0])


@pytest.mark.parametrize("name", ["hopper.jpg", "hopper.psd", "flower.jpg"])
def test_a_photo_without_text_gives_no_text_and_no_confidence(name: str) -> None:
    text, pages = read(IMAGES / name)
    assert text == ""
    assert_read(pages, [0])
    assert pages[0].confidence is None


def test_a_16_bit_or_transparent_image_is_read_as_it_looks(tmp_path: Path) -> None:
    words = scans.page("foxtrot", lines=2, size=(1240, 300))
    deep = words.convert("I").point(lambda value: value * 257).convert("I;16")
    clear = Image.new("LA", words.size, (0, 0))
    clear.putalpha(words.point(lambda value: 255 - value))  # black text, nothing else
    for name, image in (("deep.png", deep), ("clear.png", clear)):
        image.save(tmp_path / name)
        text, pages = read(tmp_path / name)
        assert text.count("foxtrot line") == 2, name
        assert_read(pages, [0])


def test_a_multi_page_tiff_is_read_page_by_page_its_thumbnail_is_page_one(
    tmp_path: Path
) -> None:
    path = scans.tiff(tmp_path / "fax.tiff", [scans.blank(A6), scans.page("bravo", size=A6),
                                              scans.page("charlie", size=A6)])
    text, pages = read(path)
    assert words_in_order(text, "", "bravo", "charlie")
    assert_read(pages, [0, 1, 2])
    assert pages[0].confidence is None and pages[0].text.strip() == ""
    target = tmp_path / "thumb.png"
    make_thumbnail(path, detect(path), (300, 300), target, max_image_pixels=MAX_PIXELS)
    with Image.open(target) as thumb:
        assert thumb.convert("L").getextrema() == (255, 255)  # page one is the blank one


def test_pages_scanned_upside_down_or_sideways_are_read_the_right_way_up(
    tmp_path: Path
) -> None:
    path = scans.image_pdf(tmp_path / "turned.pdf", [
        scans.page("alpha", lines=4, rotate=180, size=A6),
        scans.page("bravo", lines=4, rotate=90, size=A6),
        scans.page("charlie", lines=4, rotate=270, size=A6),
    ])
    text, pages = read(path)
    assert words_in_order(text, "alpha", "bravo", "charlie")
    assert text.count("quick brown fox") == 12
    # Tesseract's orient_deg is the counter-clockwise turn that undoes the scan's, as PIL's;
    # a page turned 270 degrees Tesseract reads as it is.
    assert [page.rotated for page in pages] == [180, 270, 0]


def test_a_photo_taken_sideways_is_turned_upright_by_its_exif_tag(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: shown turned 90 degrees clockwise
    scans.page("hotel", lines=4, rotate=90, size=A6).save(path, exif=exif)
    text, pages = read(path)
    assert text.count("hotel line") == 4
    assert pages[0].rotated == 0  # upright from the tag, no guessing needed


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_a_page_of_one_line_is_read_the_right_way_up_too(tmp_path: Path, rotate: int) -> None:
    # Too little text for orientation detection to be sure of itself.
    path = tmp_path / "label.png"
    scans.page("golf", lines=1, rotate=rotate, size=(1240, 300)).save(path)
    text, pages = read(path)
    assert "golf line 0 the quick brown fox" in text
    assert pages[0].confidence is not None and pages[0].confidence > 80


def test_a_mixed_pdf_reads_only_its_scanned_page_and_keeps_the_text_layer(
    tmp_path: Path
) -> None:
    path = scans.mixed_pdf(tmp_path / "mixed.pdf", TEXT_PDF, scans.page("echo", size=A6))
    text, pages = read(path)
    assert words_in_order(text, "This is a link to an awesome blog.", "echo")
    assert_read(pages, [1])


def test_a_blank_page_is_no_error(tmp_path: Path) -> None:
    path = scans.image_pdf(tmp_path / "blank.pdf", [scans.blank(A6)])
    text, pages = read(path)
    assert text == ""
    assert_read(pages, [0])
    assert pages[0].confidence is None


def test_a_page_past_its_time_limit_becomes_a_warning(tmp_path: Path) -> None:
    path = scans.image_pdf(tmp_path / "long.pdf", [scans.page("alpha", lines=25, size=A6)])
    text, pages = read(path, options=ocr.OcrOptions(page_seconds=0.001))
    assert text == "" and not pages[0].read
    assert pages[0].warning == "page 1 took longer than 0.001 s to read and was left out"


def test_a_page_that_cannot_be_decoded_becomes_a_warning_the_others_are_read(
    tmp_path: Path
) -> None:
    path = scans.tiff(tmp_path / "fax.tiff", [scans.page("alpha", size=A6),
                                              scans.page("bravo", size=A6)])
    text, pages = read(scans.damage_frame(path, 1))
    assert words_in_order(text, "alpha", "")
    assert pages[1].warning == "page 2 could not be decoded: decoder error -2"
    assert pages[0].read and not pages[1].read


class Interrupt(Exception):
    """What a stage's time limit raises (Celery's SoftTimeLimitExceeded, the in-process one)."""


@pytest.mark.parametrize("kind", ["pdf", "tiff"])
def test_a_time_limit_of_the_stage_is_not_taken_for_a_bad_page(tmp_path: Path,
                                                               kind: str) -> None:
    pages = [scans.page(word, size=A6) for word in ("alpha", "bravo", "charlie", "delta")]
    path = (scans.image_pdf if kind == "pdf" else scans.tiff)(tmp_path / f"scan.{kind}", pages)
    scans.page("warm", lines=1, size=(600, 100)).save(tmp_path / "warm.png")
    read(tmp_path / "warm.png")  # the engines are loaded: the limit strikes inside a page

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(Interrupt):
            read(path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_page_too_large_at_ocr_dpi_is_read_at_the_dpi_that_fits(tmp_path: Path) -> None:
    path = scans.image_pdf(tmp_path / "big.pdf", [scans.page("alpha", lines=2, size=A6)])
    # A6 at 300 dpi is 1240 x 1748 pixels; a million pixels fit at 203 dpi.
    text, pages = read(path, max_image_pixels=1_000_000)
    assert "alpha" in text and pages[0].read
    assert pages[0].warning == ("page 1 was read at 203 dpi, not 300: at 300 dpi it would "
                                "exceed pipeline.max_image_pixels")


def test_ocr_off_reads_nothing_and_always_reads_text_layer_pages_too(tmp_path: Path) -> None:
    scan = scans.image_pdf(tmp_path / "scan.pdf", [scans.page("alpha", size=A6)])
    photo = tmp_path / "photo.png"
    scans.page("bravo", size=A6).save(photo)
    assert read(scan, "off") == ("", [])
    assert read(photo, "off") == ("", [])
    text, pages = read(TEXT_PDF, "always", options=ocr.OcrOptions(dpi=150))
    assert "awesome blog" in text
    assert_read(pages, [0])


def test_an_animation_is_read_by_its_first_frame_a_tiff_by_all() -> None:
    gif, tiff = ocr.FileType("image/gif", "image"), ocr.FileType("image/tiff", "image")
    assert ocr.pages_to_read(gif, [], 5, "auto") == [0]
    assert ocr.pages_to_read(tiff, [], 5, "auto") == [0, 1, 2, 3, 4]
    assert ocr.pages_to_read(tiff, [], 5, "off") == []


def test_tesseract_is_loaded_only_by_the_engine_with_openmp_held_to_one_thread() -> None:
    # An OpenMP runtime reads OMP_THREAD_LIMIT once, when libtesseract is loaded: nothing may
    # import tesserocr before the engine sets it.
    code = """if True:
        import os, sys
        import docproc.cli.parser, docproc.cli.process, docproc.stages, docproc.tasks
        from docproc.pipeline import ocr
        from docproc.settings import load_settings
        load_settings(os.devnull, environ={})
        assert "tesserocr" not in sys.modules and "OMP_THREAD_LIMIT" not in os.environ
        ocr._engine(ocr.OcrOptions())
        print(os.environ["OMP_THREAD_LIMIT"], "tesserocr" in sys.modules)
    """
    env = {key: value for key, value in os.environ.items() if key != "OMP_THREAD_LIMIT"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.stdout.split() == ["1", "True"], result.stderr
