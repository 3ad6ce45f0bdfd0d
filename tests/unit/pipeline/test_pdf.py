"""PDFs: page counts, text, passwords and damage, against the corpus's truth table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest

from docproc.pipeline import (
    DocumentError,
    FileType,
    detect,
    extract,
    ocr,
)
from tests.unit.pipeline.samples import (
    EMPTY_PASSWORD_PDFS,
    HARD,
    MAX_PIXELS,
    NO_PAGE_TREE_PDF,
    PASSWORD_PDF,
    PDF,
    READABLE_PDFS,
    THUMB,
    TRUTH,
    USER_PASSWORD_PDFS,
    assert_fits,
    run,
    thumbnail_of,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize("name", READABLE_PDFS)
def test_pdf_page_count_and_producer_match_the_truth_table(name: str) -> None:
    truth = TRUTH[name]
    result = run(PDF / name)
    assert result.pages == truth["pages"]
    assert result.text.count("\f") == truth["pages"] - 1
    assert result.encrypted is False and result.image is None
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
    pdf = FileType("application/pdf", "pdf")
    result = extract(HARD / "Seige_of_Vicksburg_Sample_OCR.pdf", pdf, max_image_pixels=MAX_PIXELS)
    assert result.pages == 6
    assert "Vicksburg" in result.text
    # The scanner's OCR layer is the text: docproc reads none of its pages again.
    assert ocr.pages_to_read(pdf, result.text.split("\f"), 0, "auto") == []


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
