"""Read the text of scanned pages with Tesseract (tesserocr): which pages, and each page's text.

One engine per process and language set, created on first use: loading a model costs
~0.3 s, reading an A4 page at 300 dpi ~1.5 s of one core.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from docproc.pipeline.detect import FileType

ENGINE = "tesseract"
# A PDF page with less text than this in its text layer is a scan (or a scan with a stray
# page number or stamp): it is read by OCR.
TEXT_LAYER_MIN_CHARS = 20
# Orientation is corrected only when Tesseract's orientation detection is this confident.
MIN_ORIENTATION_CONFIDENCE = 2.0
# Below this mean word confidence a page may be upside down or sideways: upright text reads
# at 85-95, text turned 90 or 180 degrees at 25-45.
DOUBTFUL_CONFIDENCE = 60.0
PAGE_SEPARATOR = "\f"
# What PDFium, Pillow and Tesseract raise on a page they cannot handle. Anything else, a
# stage's time limit above all (an Exception in Celery), ends the reading of the document.
PAGE_ERRORS = (OSError, ValueError, RuntimeError, EOFError, SyntaxError, struct.error,
               Image.DecompressionBombError)
_ENGINES: dict[tuple[str, str], Any] = {}
_ENGINES_LOCK = threading.Lock()


@dataclass(frozen=True)
class OcrOptions:
    """How to read pages: languages, the resolution PDF pages are rendered at, the models."""

    languages: tuple[str, ...] = ("eng",)
    dpi: int = 300
    tessdata: Path | None = None
    page_seconds: float = 60.0


@dataclass(frozen=True)
class PageText:
    """One page for OCR: read (confidence None when blank), or not read, with a warning why."""

    index: int
    text: str
    confidence: float | None
    seconds: float
    rotated: int = 0
    warning: str | None = None
    read: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the page as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> PageText:
        """Return the page a dict from to_dict describes."""
        return cls(**body)


def tessdata_dir(configured: Path | None = None) -> Path:
    """Return the folder of the Tesseract models: the configured one, else the packages'."""
    if configured is not None:
        return configured
    # tessdata-fast-* wheels install their models under <prefix>/share/tessdata.
    return Path(sys.prefix) / "share" / "tessdata"


def missing_languages(languages: Iterable[str], configured: Path | None = None) -> list[str]:
    """Return the languages whose model is not in the tessdata folder."""
    folder = tessdata_dir(configured)
    return [lang for lang in languages if not (folder / f"{lang}.traineddata").is_file()]


def layer_needs_ocr(page_text: str) -> bool:
    """Return True when a PDF page's text layer is too thin to be the page's text."""
    return len(page_text.strip()) < TEXT_LAYER_MIN_CHARS


def pages_to_read(file_type: FileType, layer_pages: Sequence[str], frames: int,
                  mode: str) -> list[int]:
    """Return the indexes of the pages to read by OCR: scans, never pages with text."""
    if mode == "off":
        return []
    if file_type.kind == "pdf":
        return [index for index, text in enumerate(layer_pages)
                if mode == "always" or layer_needs_ocr(text)]
    if file_type.kind == "image":
        # A TIFF's frames are pages (scanners, faxes); a GIF's or WebP's are an animation.
        return list(range(max(1, frames))) if file_type.mime == "image/tiff" else [0]
    return []


def render_dpi(width_pt: float, height_pt: float, dpi: int, max_image_pixels: int) -> int:
    """Return dpi, or the highest lower one at which the page stays within max_image_pixels."""
    pixels = width_pt * height_pt * (dpi / 72) ** 2
    if pixels <= max_image_pixels:
        return dpi
    return max(1, int(72 * (max_image_pixels / (width_pt * height_pt)) ** 0.5))


def merge(layer_pages: Sequence[str], read: Iterable[PageText], pages: int) -> str:
    """Return the document's text: each page from OCR where it was read, else its text layer."""
    texts = list(layer_pages) + [""] * max(0, pages - len(layer_pages))
    for page in read:
        # A page OCR finds blank keeps what its text layer had (a page number, a stamp).
        if page.read and page.text.strip():
            texts[page.index] = page.text
    return PAGE_SEPARATOR.join(text.strip("\n") for text in texts)


def read_pages(path: Path, file_type: FileType, indexes: Sequence[int], options: OcrOptions,
               max_image_pixels: int) -> Iterator[PageText]:
    """Read the given pages by OCR, in order; a page that cannot be read comes with a warning."""
    engine = _engine(options)
    for index, image, note in _page_images(path, file_type, indexes, options.dpi,
                                           max_image_pixels):
        started = time.monotonic()
        if image is None:
            yield PageText(index, "", None, 0.0, warning=note, read=False)
            continue
        try:
            text, confidence, rotated = _read(engine, image, options)
        except PAGE_ERRORS as exc:  # one unreadable page must not lose the others
            yield PageText(index, "", None, time.monotonic() - started,
                           warning=f"page {index + 1} could not be read: {exc}", read=False)
            continue
        seconds = time.monotonic() - started
        if text is None:
            yield PageText(index, "", None, seconds, warning=(
                f"page {index + 1} took longer than {options.page_seconds:g} s to read "
                "and was left out"), read=False)
            continue
        yield PageText(index, text, confidence, seconds, rotated, warning=note)


PageImage = tuple[int, Image.Image | None, str | None]


def _page_images(path: Path, file_type: FileType, indexes: Sequence[int], dpi: int,
                 max_image_pixels: int) -> Iterator[PageImage]:
    """Yield each page's grayscale image, or None and why it could not be had."""
    if file_type.kind == "pdf":
        for index in indexes:
            try:
                yield _render(path, index, dpi, max_image_pixels)
            except PAGE_ERRORS as exc:  # a damaged page must not lose the others
                yield index, None, f"page {index + 1} could not be rendered: {exc}"
        return
    from docproc.pipeline.extract import open_image

    with open_image(path, max_image_pixels) as img:
        first = img.tell()  # PSD numbers its layers from 1
        wanted = set(indexes)
        for index in range(max(wanted, default=-1) + 1):
            try:
                img.seek(first + index)
                # A camera's sideways photo is stored as taken, turned upright by its EXIF tag.
                frame = grayscale(ImageOps.exif_transpose(img)) if index in wanted else None
            except PAGE_ERRORS as exc:
                if index in wanted:
                    yield index, None, f"page {index + 1} could not be decoded: {exc}"
                continue
            if frame is not None:
                yield index, frame, None


def grayscale(image: Image.Image) -> Image.Image:
    """Return image as 8-bit grayscale: transparency on white, 16-bit samples scaled down."""
    if image.mode.startswith("I") and image.getextrema()[1] > 255:  # type: ignore[operator]
        # Pillow clips 16-bit samples to 8 bits rather than scaling: a 16-bit scan turns white.
        return image.convert("I").point(lambda value: value / 257).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels are black underneath: text on them would be black on black.
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("L")
    return image.convert("L")


def _render(path: Path, index: int, dpi: int, max_image_pixels: int) -> PageImage:
    from docproc.pipeline.extract import PDFIUM_LOCK, open_pdf

    with PDFIUM_LOCK:
        doc = open_pdf(path)
        try:
            page = doc[index]
            try:
                width, height = page.get_size()
                fitted = render_dpi(width, height, dpi, max_image_pixels)
                image = page.render(scale=fitted / 72, grayscale=True).to_pil()
            finally:
                page.close()
        finally:
            doc.close()
    note = None
    if fitted < dpi:
        note = (f"page {index + 1} was read at {fitted} dpi, not {dpi}: at {dpi} dpi it would "
                "exceed pipeline.max_image_pixels")
    return index, image, note


def _tesserocr() -> Any:
    """Import tesserocr with OpenMP held to one thread (read when libtesseract loads)."""
    # Tesseract's OpenMP threads would fight the worker processes for the cores; an OpenMP
    # runtime reads the variable once, when the library is loaded by this import.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    import tesserocr

    return tesserocr


def _engine(options: OcrOptions) -> Any:
    folder = str(tessdata_dir(options.tessdata))
    languages = "+".join(options.languages)
    key = (folder, languages)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            tesserocr = _tesserocr()
            missing = missing_languages(options.languages, options.tessdata)
            if missing:
                raise RuntimeError(f"no Tesseract model for {', '.join(missing)} in {folder}")
            _ENGINES[key] = tesserocr.PyTessBaseAPI(path=folder, lang=languages)
        return _ENGINES[key]


def _read(
    engine: Any, image: Image.Image, options: OcrOptions
) -> tuple[str | None, float | None, int]:
    text, confidence = _recognize(engine, image, options)
    if confidence is None or confidence >= DOUBTFUL_CONFIDENCE:
        return text, confidence, 0
    # Orientation detection costs half a read (0.3 s an A4 page): it runs only for a page that
    # reads as garbage. Tesseract reads lines turned 270 degrees by itself.
    turn = _orientation(image, options)
    if turn == 0:
        return text, confidence, 0  # upright, only a poor scan
    # Too little text to detect the orientation: upside down is the likeliest.
    turn = 180 if turn is None else turn
    again, better = _recognize(engine, image.rotate(turn, expand=True), options)
    if better is not None and better > confidence:
        return again, better, turn
    return text, confidence, 0


def _recognize(engine: Any, image: Image.Image,
               options: OcrOptions) -> tuple[str | None, float | None]:
    """Return the page's text and mean word confidence; None for text past the time limit."""
    engine.SetImage(image)
    # Recognize takes milliseconds, and 0 would mean no limit at all.
    if not engine.Recognize(max(1, int(options.page_seconds * 1000))):
        engine.Clear()
        return None, None
    text = engine.GetUTF8Text()
    words = engine.AllWordConfidences()
    engine.Clear()
    if not text.strip():
        return text, None  # a photo's lone empty "word" comes with a confidence of 95
    return text, round(sum(words) / len(words), 1) if words else None


def _orientation(image: Image.Image, options: OcrOptions) -> int | None:
    """Return the degrees (counter-clockwise) to turn a page to read it, None when unsure."""
    folder = tessdata_dir(options.tessdata)
    if not (folder / "osd.traineddata").is_file():
        return None
    key = (str(folder), "osd")
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            tesserocr = _tesserocr()
            _ENGINES[key] = tesserocr.PyTessBaseAPI(path=str(folder), lang="osd",
                                                    psm=tesserocr.PSM.OSD_ONLY)
        osd = _ENGINES[key]
    osd.SetImage(image)
    found = osd.DetectOrientationScript()
    osd.Clear()
    if not found or found["orient_conf"] < MIN_ORIENTATION_CONFIDENCE:
        return None
    return int(found["orient_deg"]) % 360
