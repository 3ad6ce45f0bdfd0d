"""Detection from content, never from the name."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from docproc.pipeline import (
    DocumentError,
    detect,
    extract,
)
from tests.unit.pipeline.samples import (
    BAD_IMAGES,
    HARD,
    IMAGES,
    MAX_PIXELS,
    PDF,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


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
