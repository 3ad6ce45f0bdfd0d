"""Scanned pages made on the spot: known words rendered at 300 dpi, saved as scanners save them.

Each page says `<word> line <n> ...` so a test can check the words came out, and in order.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter

A4_300_DPI = (2480, 3508)
A6_300_DPI = (1240, 1748)


def page(word: str, lines: int = 5, rotate: int = 0, size: tuple[int, int] = A4_300_DPI,
         ) -> Image.Image:
    """Return a grayscale page of `lines` lines naming `word`, turned `rotate` degrees."""
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=max(12, size[0] // 50))
    step = max(20, size[1] // 35)
    for number in range(lines):
        draw.text((size[0] // 12, size[1] // 12 + number * step),
                  f"{word} line {number} the quick brown fox", font=font, fill=0)
    return img.rotate(rotate, expand=True) if rotate else img


def blank(size: tuple[int, int] = A4_300_DPI) -> Image.Image:
    """Return an empty white page."""
    return Image.new("L", size, 255)


def image_pdf(path: Path, pages: Sequence[Image.Image]) -> Path:
    """Write pages as an image-only PDF (no text layer), as a scanner does."""
    pages[0].save(path, format="PDF", save_all=True, append_images=list(pages[1:]),
                  resolution=300)
    return path


def tiff(path: Path, pages: Sequence[Image.Image]) -> Path:
    """Write pages as one multi-page TIFF, as fax and scanner software do."""
    pages[0].save(path, format="TIFF", save_all=True, append_images=list(pages[1:]),
                  compression="group4" if pages[0].mode == "1" else "tiff_lzw")
    return path


def mixed_pdf(path: Path, text_pdf: Path, scan: Image.Image) -> Path:
    """Write a PDF whose first page has a text layer (from text_pdf) and whose second is a scan."""
    scanned = io.BytesIO()
    scan.save(scanned, format="PDF", resolution=300)
    writer = PdfWriter()
    writer.add_page(PdfReader(text_pdf).pages[0])
    writer.add_page(PdfReader(scanned).pages[0])
    with path.open("wb") as out:
        writer.write(out)
    return path


def damage_frame(path: Path, frame: int) -> Path:
    """Overwrite the start of one TIFF frame's compressed data, as a bad transfer would."""
    with Image.open(path) as img:
        img.seek(frame)
        start = img.tag_v2[273][0]  # StripOffsets
    data = bytearray(path.read_bytes())
    data[start + 10:start + 2000] = b"\xff" * 1990
    path.write_bytes(data)
    return path
