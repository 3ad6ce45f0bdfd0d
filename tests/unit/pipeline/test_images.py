"""Images: header facts, thumbnails, bad files and decompression bombs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile

from docproc.pipeline import (
    DocumentError,
    FileType,
    detect,
    extract,
    make_thumbnail,
)
from tests.corpus_truth import BROKEN
from tests.unit.pipeline.samples import (
    BAD_IMAGES,
    BOMBS,
    IMAGES,
    MAX_PIXELS,
    THUMB,
    assert_fits,
    run,
    thumbnail_of,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


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
