"""Text files: decoded, and no thumbnail for what has no pixels."""

from __future__ import annotations

from pathlib import Path

import pytest

from docproc.pipeline import (
    FileType,
    extract,
    make_thumbnail,
)
from tests.unit.pipeline.samples import (
    MAX_PIXELS,
    TEXT,
    THUMB,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


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
