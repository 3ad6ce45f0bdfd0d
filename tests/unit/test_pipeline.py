"""The pure pipeline against the real-world corpus (tests/data/corpus) and a few generated files."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image, ImageFile

from docproc.pipeline import (
    DocumentError,
    Extraction,
    FileType,
    analyze,
    detect,
    extract,
    make_thumbnail,
)
from tests.conftest import CORPUS
from tests.corpus_truth import BROKEN

MAX_PIXELS = 89_478_485
THUMB = (300, 300)
PDF = CORPUS / "pdf"
HARD = CORPUS / "pdf-hard"
IMAGES = CORPUS / "images"
BAD_IMAGES = CORPUS / "images-bad"
TRUTH = {
    entry["path"].replace("/", "_"): entry
    for entry in json.loads((PDF / "files.json").read_text())["data"]
}
PASSWORD_PDF = "005-libreoffice-writer-password_libreoffice-writer-password.pdf"
NO_PAGE_TREE_PDF = "017-unreadable-meta-data_unreadablemetadata.pdf"
READABLE_PDFS = sorted(
    path.name for path in PDF.glob("*.pdf") if path.name not in (PASSWORD_PDF, NO_PAGE_TREE_PDF)
)
EMPTY_PASSWORD_PDFS = [
    "r2-empty-password.pdf", "r3-empty-password.pdf", "r4-owner-password.pdf",
    "r6-empty-password.pdf", "encrypted_doc_no_id.pdf",
]
USER_PASSWORD_PDFS = [
    "r2-user-password.pdf", "r4-aes-user-password.pdf", "r5-user-password.pdf",
    "r6-user-password.pdf", "crazyones-encrypted-256.pdf",
]
BOMBS = ["decompression_bomb.gif", "decompression_bomb_extents.gif"]
TEXT = FileType("text/plain", "text")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def run(path: Path) -> Extraction:
    return extract(path, detect(path), max_image_pixels=MAX_PIXELS)


def thumbnail_of(path: Path, dest: Path) -> tuple[int, int] | None:
    return make_thumbnail(path, detect(path), THUMB, dest, max_image_pixels=MAX_PIXELS)


def assert_fits(size: tuple[int, int] | None, dest: Path) -> None:
    assert size is not None
    assert 0 < size[0] <= THUMB[0] and 0 < size[1] <= THUMB[1]
    with Image.open(dest) as png:
        assert png.format == "PNG"
        assert png.size == size


# PDFs


@pytest.mark.parametrize("name", READABLE_PDFS)
def test_pdf_page_count_and_producer_match_the_truth_table(name: str) -> None:
    truth = TRUTH[name]
    result = run(PDF / name)
    assert result.pages == truth["pages"]
    assert result.text.count("\f") == truth["pages"] - 1
    assert result.encrypted is False and result.image is None and result.ocr is False
    assert result.metadata.get("producer") == truth["producer"]


@pytest.mark.parametrize("name", READABLE_PDFS)
def test_pdf_thumbnail_fits_the_box(name: str, tmp_path: Path) -> None:
    dest = tmp_path / "thumb.png"
    size = thumbnail_of(PDF / name, dest)
    assert_fits(size, dest)
    assert size is not None and max(size) == max(THUMB)


def test_password_protected_pdf_says_it_needs_a_password(tmp_path: Path) -> None:
    path = PDF / PASSWORD_PDF
    with pytest.raises(DocumentError) as info:
        run(path)
    assert info.value.type == "encrypted"
    assert "password" in info.value.message and "qpdf --decrypt" in info.value.message
    with pytest.raises(DocumentError, match="password"):
        thumbnail_of(path, tmp_path / "thumb.png")


def test_pdf_whose_page_tree_is_missing_fails_as_corrupt() -> None:
    """files.json says 4 pages, but the file lacks objects 172-174 (page tree, XMP, Info).

    PDFium and pypdf both find no pages, so the honest outcome is a corrupt failure
    naming both libraries' reasons, not a guessed page count.
    """
    with pytest.raises(DocumentError) as info:
        run(PDF / NO_PAGE_TREE_PDF)
    assert info.value.type == "corrupt"
    assert "PDFium" in info.value.message and "pypdf" in info.value.message


def test_pdf_pdfium_refuses_without_a_reason_is_damaged_whatever_failed_before(
    tmp_path: Path,
) -> None:
    """A catalog without a page tree: PDFium refuses it and records no error of its own, so
    its last error was "Success" ("Failed to load document (PDFium: Success)") or, in a worker,
    the reason of the document before ("needs a password")."""
    body = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    xref = len(body)
    body += (b"xref\n0 2\n0000000000 65535 f \n0000000009 00000 n \n"
             b"trailer\n<< /Size 2 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    path = tmp_path / "catalog-only.pdf"
    path.write_bytes(body)
    with pytest.raises(DocumentError) as before:
        run(HARD / "r6-user-password.pdf")
    assert before.value.type == "encrypted"
    with pytest.raises(DocumentError) as info:
        run(path)
    assert info.value.type == "corrupt"
    message = info.value.message
    assert "Success" not in message and "Failed to load" not in message
    assert "not a PDF, or damaged beyond repair" in message and "re-export or repair" in message


@pytest.mark.parametrize("name", EMPTY_PASSWORD_PDFS)
def test_pdf_encrypted_with_empty_password_is_processed(name: str, tmp_path: Path) -> None:
    result = run(HARD / name)
    assert result.encrypted is True
    assert result.pages is not None and result.pages >= 1
    dest = tmp_path / "thumb.png"
    assert_fits(thumbnail_of(HARD / name, dest), dest)


def test_pdf_encrypted_with_empty_password_keeps_text_and_metadata() -> None:
    result = run(HARD / "r4-owner-password.pdf")
    assert "encryption" in result.text.lower()
    assert result.metadata.get("author") == "cheng"


@pytest.mark.parametrize("name", USER_PASSWORD_PDFS)
def test_pdf_needing_user_password_fails_as_encrypted(name: str, tmp_path: Path) -> None:
    # r5/r6-user-password have an empty *owner* password: pypdf would open them, PDFium
    # (which decides here) does not, and a person would be asked for a password.
    with pytest.raises(DocumentError) as info:
        run(HARD / name)
    assert info.value.type == "encrypted"
    with pytest.raises(DocumentError) as thumb_info:
        thumbnail_of(HARD / name, tmp_path / "thumb.png")
    assert thumb_info.value.type == "encrypted"


def test_invalid_pdf_binary_fails_cleanly_however_it_is_typed() -> None:
    path = HARD / "lzw_decoder_table_overflow.bin"
    assert detect(path).kind == "other"
    for file_type, error in ((detect(path), "unsupported_type"),
                             (FileType("application/pdf", "pdf"), "corrupt")):
        with pytest.raises(DocumentError) as info:
            extract(path, file_type, max_image_pixels=MAX_PIXELS)
        assert info.value.type == error


def test_scanned_pdf_text_comes_from_its_ocr_layer() -> None:
    result = extract(
        HARD / "Seige_of_Vicksburg_Sample_OCR.pdf",
        FileType("application/pdf", "pdf"), max_image_pixels=MAX_PIXELS, ocr="always",
    )
    assert result.pages == 6
    assert "Vicksburg" in result.text
    assert result.ocr is False


def test_pdf_text_has_page_breaks_and_unix_lines_only() -> None:
    result = run(PDF / "009-pdflatex-geotopo_GeoTopo-komprimiert.pdf")
    assert result.text.count("\f") == 116
    assert "\r" not in result.text and "\ufffe" not in result.text


def test_pdf_that_pdfium_cannot_open_is_read_with_pypdf(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise pdfium.PdfiumError("Failed to load document", err_code=pdfium_c.FPDF_ERR_FORMAT)

    monkeypatch.setattr(pdfium, "PdfDocument", refuse)
    result = run(PDF / "004-pdflatex-4-pages_pdflatex-4-pages.pdf")
    assert result.pages == 4
    assert result.text.count("\f") == 3
    assert len(result.text) > 1000


def test_timeouts_and_interrupts_are_not_turned_into_document_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class SoftTimeLimitExceeded(BaseException):
        pass

    def time_out(*args: Any, **kwargs: Any) -> None:
        raise SoftTimeLimitExceeded

    monkeypatch.setattr(pdfium, "PdfDocument", time_out)
    with pytest.raises(SoftTimeLimitExceeded):
        run(PDF / "001-trivial_minimal-document.pdf")


# Images


@pytest.mark.parametrize("name", sorted(path.name for path in IMAGES.iterdir()))
def test_image_reports_header_size_and_gets_thumbnail(name: str, tmp_path: Path) -> None:
    path = IMAGES / name
    with Image.open(path) as header:
        expected = (header.width, header.height, header.format)
    result = run(path)
    assert result.image is not None
    assert (result.image.width, result.image.height, result.image.format) == expected
    assert result.text == "" and result.pages is None
    assert result.image.to_dict()["frames"] == result.image.frames >= 1
    dest = tmp_path / "thumb.png"
    assert_fits(thumbnail_of(path, dest), dest)


def test_multipage_tiff_reports_its_frames() -> None:
    result = run(IMAGES / "multipage.tiff")
    assert result.image is not None and result.image.frames == 3


# What each bad image must come out as (the error type of its failure, or "done"): the one
# table of tests/corpus_truth.py, which pins the outcome the corpus README leaves open.
BAD_IMAGE_OUTCOMES = {path.removeprefix("images-bad/"): outcome
                      for path, outcome in BROKEN.items() if path.startswith("images-bad/")}


def test_every_bad_image_has_an_expected_outcome() -> None:
    assert sorted(BAD_IMAGE_OUTCOMES) == sorted(path.name for path in BAD_IMAGES.iterdir())


@pytest.mark.parametrize(("name", "outcome"), sorted(BAD_IMAGE_OUTCOMES.items()))
def test_bad_image_gets_its_one_outcome(name: str, outcome: str, tmp_path: Path) -> None:
    path = BAD_IMAGES / name
    dest = tmp_path / "thumb.png"
    if outcome != "done":
        with pytest.raises(DocumentError) as info:
            run(path)
        assert info.value.type == outcome
        assert info.value.message
        if outcome == "corrupt":
            # No thumbnail from whatever half of a broken image happened to decode.
            with pytest.raises(DocumentError) as thumb_info:
                thumbnail_of(path, dest)
            assert thumb_info.value.type == "corrupt"
            assert not dest.exists()
        return
    result = run(path)
    assert result.image is not None
    with Image.open(path) as header:
        assert (result.image.width, result.image.height, result.image.format) == (
            header.width, header.height, header.format)
    assert_fits(thumbnail_of(path, dest), dest)


@pytest.mark.parametrize("name", BOMBS)
def test_decompression_bomb_is_refused_without_decoding(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[tuple[int, int]] = []
    original_load = ImageFile.ImageFile.load

    def recording_load(self: ImageFile.ImageFile) -> Any:
        decoded.append(self.size)
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    with pytest.raises(DocumentError) as info:
        run(BAD_IMAGES / name)
    assert info.value.type == "too_large"
    assert all(width * height <= MAX_PIXELS for width, height in decoded)


def test_image_over_the_configured_limit_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (200, 100)).save(path)

    def fail_load(self: ImageFile.ImageFile) -> Any:
        raise AssertionError("decoded an image over the limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", fail_load)
    for call in (
        lambda: extract(path, detect(path), max_image_pixels=19_999),
        lambda: make_thumbnail(
            path, detect(path), THUMB, tmp_path / "t.png", max_image_pixels=19_999
        ),
    ):
        with pytest.raises(DocumentError) as info:
            call()
        assert info.value.type == "too_large"
        assert "19999" in info.value.message


def test_garbage_declared_as_image_fails_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(DocumentError) as info:
        extract(path, FileType("image/png", "image"), max_image_pixels=MAX_PIXELS)
    assert info.value.type == "corrupt"


@pytest.mark.parametrize(
    ("mode", "fmt", "expected_mode"),
    [
        ("CMYK", "JPEG", "RGB"),
        ("I;16", "PNG", "RGB"),
        ("LA", "PNG", "RGBA"),
        ("P", "GIF", "RGB"),
        ("1", "BMP", "RGB"),
    ],
)
def test_thumbnail_converts_unusual_modes_for_viewers(
    mode: str, fmt: str, expected_mode: str, tmp_path: Path
) -> None:
    path = tmp_path / f"image.{fmt.lower()}"
    Image.new(mode, (640, 320)).save(path, format=fmt)
    dest = tmp_path / "thumb.png"
    size = make_thumbnail(path, detect(path), THUMB, dest, max_image_pixels=MAX_PIXELS)
    assert size == (300, 150)
    with Image.open(dest) as png:
        assert png.mode == expected_mode


def test_sixteen_bit_thumbnail_is_not_clipped_to_white(tmp_path: Path) -> None:
    path = tmp_path / "twelve-bit.png"
    gradient = Image.linear_gradient("L").resize((64, 64)).convert("I").point(lambda v: v * 16)
    gradient.convert("I;16").save(path)
    dest = tmp_path / "thumb.png"
    make_thumbnail(path, detect(path), THUMB, dest, max_image_pixels=MAX_PIXELS)
    with Image.open(dest) as png:
        histogram = png.convert("L").histogram()
    mean = sum(level * count for level, count in enumerate(histogram)) / sum(histogram)
    assert 100 < mean < 155


def test_thumbnail_follows_exif_orientation(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (200, 100)).save(path, exif=exif)
    size = make_thumbnail(path, detect(path), THUMB, tmp_path / "t.png", max_image_pixels=1000000)
    assert size == (100, 200)


# Detection


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (PDF / "001-trivial_minimal-document.pdf", "pdf"),
        (IMAGES / "hopper.png", "image"),
        (IMAGES / "multipage.tiff", "image"),
        (PDF / "files.json", "text"),
        (BAD_IMAGES / "broken.png", "other"),
        (BAD_IMAGES / "decompression_bomb.gif", "image"),
        (HARD / "lzw_decoder_table_overflow.bin", "other"),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else value,
)
def test_detect_kind_from_content(path: Path, kind: str) -> None:
    assert detect(path).kind == kind


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"just some words\n", "text"),
        (b'{"a": [1, 2, 3]}', "text"),
        (b"a,b,c\n1,2,3\n4,5,6\n", "text"),
        (b"PK\x03\x04" + bytes(60), "other"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "other"),
    ],
)
def test_detect_ignores_the_file_name(content: bytes, kind: str, tmp_path: Path) -> None:
    path = tmp_path / "misleading.pdf"
    path.write_bytes(content)
    assert detect(path).kind == kind


def test_zero_byte_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "nothing.pdf"
    path.touch()
    with pytest.raises(DocumentError) as info:
        detect(path)
    assert info.value.type == "empty"


def test_detect_is_safe_from_many_threads() -> None:
    paths = [PDF / "001-trivial_minimal-document.pdf", IMAGES / "hopper.jpg", PDF / "files.json"]
    expected = [detect(path) for path in paths]
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert [detect(path) for path in paths] == expected
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_other_kind_is_unsupported() -> None:
    path = HARD / "lzw_decoder_table_overflow.bin"
    with pytest.raises(DocumentError) as info:
        extract(path, detect(path), max_image_pixels=MAX_PIXELS)
    assert info.value.type == "unsupported_type"
    assert "application/octet-stream" in info.value.message


def test_text_and_other_get_no_thumbnail(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    dest = tmp_path / "thumb.png"
    assert make_thumbnail(path, TEXT, THUMB, dest, max_image_pixels=MAX_PIXELS) is None
    other = FileType("application/zip", "other")
    assert make_thumbnail(path, other, THUMB, dest, max_image_pixels=MAX_PIXELS) is None
    assert not dest.exists()


# Text decoding


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Grüße, café".encode(), "Grüße, café"),
        ("\ufeffGrüße".encode(), "Grüße"),
        ("Grüße €".encode("utf-16"), "Grüße €"),
        ("Grüße €".encode("utf-32"), "Grüße €"),
        ("café €".encode("cp1252"), "café €"),
        (b"caf\xe9 \x81", "café \x81"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-bom", "utf-32-bom", "cp1252", "latin-1"],
)
def test_text_is_decoded(data: bytes, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(data)
    result = extract(path, TEXT, max_image_pixels=MAX_PIXELS)
    assert result.text == expected
    assert result.pages is None and result.image is None


# Analysis


def test_keywords_are_frequent_words_without_stop_words() -> None:
    text = "The invoice and the invoice total. The total is due; the invoice is paid in 2024."
    result = analyze(text, keywords=3)
    assert result.keywords == ["invoice", "total", "due"]
    assert result.words == 16
    assert result.chars == len(text)


def test_keyword_ties_go_to_the_first_word_seen() -> None:
    assert analyze("zebra apple mango apple zebra mango", keywords=2).keywords == ["zebra", "apple"]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The dog is sleeping in the garden because it was tired after the long walk.", "en"),
        ("Der Hund schläft im Garten, weil er nach dem langen Spaziergang müde ist.", "de"),
        ("Le chien dort dans le jardin parce qu'il est fatigué après la promenade.", "fr"),
        ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.", None),
        ("Invoice 4711", None),
        ("", None),
    ],
)
def test_language_is_guessed_from_stop_words(text: str, language: str | None) -> None:
    assert analyze(text).language == language


def test_analysis_of_a_real_document() -> None:
    result = analyze(run(PDF / "009-pdflatex-geotopo_GeoTopo-komprimiert.pdf").text)
    assert result.language == "de"
    assert "topologie" in result.keywords or "abbildung" in result.keywords
    assert not set(result.keywords) & {"der", "die", "und", "the"}


def test_no_keywords_when_asked_for_none() -> None:
    assert analyze("plenty of meaningful words here", keywords=0).keywords == []

