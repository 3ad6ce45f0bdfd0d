"""The corpus's files and facts, and the calls the pipeline's unit tests share."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from docproc.pipeline import Extraction, FileType, detect, extract, make_thumbnail
from tests.conftest import CORPUS

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
